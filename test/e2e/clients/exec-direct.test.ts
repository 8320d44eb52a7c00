// `hako exec` as the clients call it, without a client in between: --process with a
// full OCI Process, --detach, --pid-file, older conmon's --tty/-d combos, --preserve-fds,
// and the CVE-2024-21626 class: no host fd and no host cwd reaches the exec'd process.
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CLI, IS_ROOT, TEST_USER, WORK } from '../../helpers/env.js';
import { hako, scratchForThisFile, type Who } from '../../helpers/hako.js';
import { waitFor } from './daemons.js';

const { scratch, makeBundle } = scratchForThisFile();

for (const who of (IS_ROOT ? ['rootless', 'root'] : ['rootless']) as Who[]) {
  describe(`hako exec details the clients rely on (${who})`, () => {
    let root = '';
    let bundle = '';
    const id = `ex-${who}`;

    beforeAll(async () => {
      ({ bundle } = makeBundle(who, (c) => {
        c.process!.args = ['sleep', '600'];
        c.process!.cwd = '/';
        c.mounts = [
          ...(c.mounts ?? []),
          { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777'] },
        ];
      }));
      root = scratch(who, 'root-');
      // The detached init keeps the stdio it was given: give it none we wait on.
      const argv = [CLI, '--root', root, 'run', '-d', '-b', bundle, id];
      const cmd = who === 'root' ? argv : ['setpriv', '--reuid', TEST_USER, '--regid', TEST_USER, '--init-groups', ...argv];
      const r = spawnSync(cmd[0], cmd.slice(1), { stdio: 'ignore', timeout: 30_000, env: { PATH: process.env.PATH } });
      expect(r.status).toBe(0);
      expect(JSON.parse(hako(who, root, ['state', id]).stdout).status).toBe('running');
    });

    afterAll(() => {
      hako(who, root, ['delete', '--force', id]);
    });

    /** hako exec with extra host fds open at 3.. (not close-on-exec), from a host cwd that is not in the container. */
    function execWithHostFds(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
      const hostDir = scratch(who, 'hostcwd-');
      const leak = fs.openSync(path.join(WORK, 'busybox-rootfs/bin/busybox'), 'r');
      const argv = [CLI, '--root', root, 'exec', ...args];
      const cmd = who === 'root' ? argv : ['setpriv', '--reuid', TEST_USER, '--regid', TEST_USER, '--init-groups', ...argv];
      const p = spawn(cmd[0], cmd.slice(1), {
        cwd: hostDir,
        stdio: ['ignore', 'pipe', 'pipe', leak, leak],
        env: { PATH: process.env.PATH },
      });
      let out = '';
      let err = '';
      p.stdout!.on('data', (d) => (out += d));
      p.stderr!.on('data', (d) => (err += d));
      return new Promise((res) =>
        p.on('close', (code) => {
          fs.closeSync(leak);
          res({ code, out, err });
        }),
      );
    }

    const PROBE = 'echo "cwd=$(readlink /proc/self/cwd)"; for f in /proc/self/fd/*; do l=$(readlink $f); echo "fd ${f##*/} $l"; done';

    test("host fds at 3 and 4 and the host cwd do not reach the exec'd process", async () => {
      const r = await execWithHostFds([id, 'sh', '-c', PROBE]);
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      expect(r.out).toContain('cwd=/\n');
      const fds = r.out.split('\n').filter((l) => l.startsWith('fd '));
      // 0-2, and the glob's own directory fd (closed by the time readlink runs: empty).
      for (const l of fds) expect(l).toMatch(/^fd [012] |^fd \d+ $/);
      expect(r.out).not.toContain('busybox');
    });

    test('--preserve-fds 1 hands on fd 3 and only fd 3', async () => {
      const r = await execWithHostFds(['--preserve-fds', '1', id, 'sh', '-c', PROBE]);
      expect(r.code, r.err).toBe(0);
      // A preserved fd is the host's on purpose: its path is the host's.
      expect(r.out).toMatch(/^fd 3 \S*\/bin\/busybox$/m);
      expect(r.out).not.toMatch(/^fd 4 \S*busybox$/m);
    });

    test("--process FILE (full OCI Process) --detach --pid-file, with older conmon's --tty and -d also given", async () => {
      const dir = scratch(who, 'proc-');
      const proc = {
        terminal: false,
        user: { uid: 0, gid: 0 },
        args: ['sh', '-c', 'echo "$FOO $(pwd)" > /tmp/out-$$; sleep 0.2; exit 6'],
        env: ['PATH=/bin', 'FOO=bar'],
        cwd: '/tmp',
        capabilities: { bounding: [], effective: [], permitted: [] },
        noNewPrivileges: true,
      };
      const file = path.join(dir, 'process.json');
      fs.writeFileSync(file, JSON.stringify(proc));
      const pidFile = path.join(dir, 'exec.pid');
      if (who === 'rootless') for (const f of [file, dir]) spawnSync('chown', [TEST_USER, f]);
      const r = hako(who, root, ['exec', '--pid-file', pidFile, '--process', file, '--detach', '--tty', '-d', id]);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const text = fs.readFileSync(pidFile, 'utf8');
      expect(text).toMatch(/^\d+$/);
      const pid = Number(text);
      // The pid file names the exec'd process itself (not an intermediate): it is in the container's pid namespace.
      const init = Number(JSON.parse(hako(who, root, ['state', id]).stdout).pid);
      expect(fs.readlinkSync(`/proc/${pid}/ns/pid`)).toBe(fs.readlinkSync(`/proc/${init}/ns/pid`));
      await waitFor(
        "the exec'd process to finish",
        () => !fs.existsSync(`/proc/${pid}`) || fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1][0] === 'Z',
        10_000,
      );
      const out = hako(who, root, ['exec', id, 'sh', '-c', 'cat /tmp/out-*']);
      expect(out.stdout).toBe('bar /tmp\n');
    });

    test("the exec'd process is in the init's cgroup (the container's, when it has one) and ps lists it", () => {
      const dir = scratch(who, 'cg-');
      const pidFile = path.join(dir, 'exec.pid');
      if (who === 'rootless') spawnSync('chown', [TEST_USER, dir]);
      const r = hako(who, root, ['--debug', 'exec', '-d', '--pid-file', pidFile, id, 'sleep', '30'], { detached: true });
      expect(r.status, r.stderr).toBe(0);
      const pid = Number(fs.readFileSync(pidFile, 'utf8'));
      const init = Number(JSON.parse(hako(who, root, ['state', id]).stdout).pid);
      const unified = (p: number) =>
        fs
          .readFileSync(`/proc/${p}/cgroup`, 'utf8')
          .split('\n')
          .find((l) => l.startsWith('0::'));
      const hasCgroup = JSON.parse(fs.readFileSync(path.join(root, id, 'state.json'), 'utf8')).cgroup;
      if (hasCgroup) expect(unified(init)).toMatch(new RegExp(`/${id}$`));
      // Born there (clone3 CLONE_INTO_CGROUP), not moved by a write to cgroup.procs — unless clone3
      // is filtered where this runs (Docker's default seccomp profile answers ENOSYS). The VM suite has no such excuse.
      if (hasCgroup)
        expect(r.stderr).toMatch(
          /process \d+ (started in \S+ \(clone3 CLONE_INTO_CGROUP\)|moved into \S+ through cgroup\.procs \(clone3 CLONE_INTO_CGROUP: ENOSYS\))/,
        );
      expect(unified(pid)).toBe(unified(init));
      if (hasCgroup) expect(JSON.parse(hako(who, root, ['ps', '--format', 'json', id]).stdout)).toContain(pid);
      process.kill(pid, 'SIGKILL');
    });

    test('ps, events --stats, pause/resume on the running container (through its cgroup when it has one)', () => {
      const init = Number(JSON.parse(hako(who, root, ['state', id]).stdout).pid);
      const ps = hako(who, root, ['ps', '--format', 'json', id]);
      expect(ps.status, ps.stderr).toBe(0);
      expect(JSON.parse(ps.stdout)).toContain(init);
      const table = hako(who, root, ['ps', id]);
      expect(table.stdout.split('\n')[0]).toMatch(/PID/);
      expect(table.stdout).toContain('sleep 600');
      const ev = hako(who, root, ['events', '--stats', id]);
      if (ev.status === 0) {
        const e = JSON.parse(ev.stdout);
        expect(e).toMatchObject({ type: 'stats', id });
        expect(e.data).toHaveProperty('pids');
      } else {
        expect(ev.stderr).toMatch(/cgroup/);
      }
      const p = hako(who, root, ['pause', id]);
      if (p.status === 0) {
        expect(JSON.parse(hako(who, root, ['state', id]).stdout).status).toBe('paused');
        expect(hako(who, root, ['resume', id]).status).toBe(0);
        expect(JSON.parse(hako(who, root, ['state', id]).stdout).status).toBe('running');
      } else {
        expect(p.stderr).toContain('pausing needs a cgroup freezer');
      }
    });

    test('exec --tty without a console socket in the foreground is refused with a sentence, not a hang', () => {
      const r = hako(who, root, ['exec', '--tty', '--detach', id, 'true']);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/console-socket/);
    });
  });
}
