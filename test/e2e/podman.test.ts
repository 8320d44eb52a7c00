// hako under the real Podman 4.3 (through conmon): `--runtime <hako>` and
// `--rootfs DIR` (no image), as root and rootless (as the hakotest user).
//
// RLIMIT_NOFILE: Podman asks for nofile 1048576 by default, above this machine's hard
// limit (20000); runc fails there as hako does ("set RLIMIT_NOFILE to 1048576:1048576 failed: EPERM: a hard limit can only be raised with CAP_SYS_RESOURCE, and it is 20000 here").
// hako does not clamp silently: the test's containers.conf sets default_ulimits to what
// the host allows (docs/clients.md says the same for users).
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { BUSYBOX_ROOTFS, TEST_USER } from '../helpers/env.js';
import { clientDir, hakoWrapper, hostDirsGuard, parseJsonLog, pidsMentioning, removeTree, skipReason, waitFor } from './clients/daemons.js';

const skip = skipReason(['podman', 'conmon']);
const HARD_NOFILE = Number(execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim()) || 1024;
// conmon runs the runtime with nproc lowered to 32768 here, whatever the host allows: stay below.
const hardNproc = String(Math.min(Number(execFileSync('bash', ['-c', 'ulimit -Hu'], { encoding: 'utf8' }).trim()) || 16384, 16384));

for (const who of ['root', 'rootless'] as const) {
  describe.skipIf(skip)(`podman 4.3 drives hako as ${who}${skip ? ` (skipped: ${skip})` : ''}`, () => {
    let dir = '';
    let uid = 0;
    let gid = 0;
    let env: NodeJS.ProcessEnv = {};
    let wrapper = '';
    let cleanHost = () => {};
    const podmanArgs = () => [
      '--root',
      path.join(dir, 'storage'),
      '--runroot',
      path.join(dir, 'run'),
      '--tmpdir',
      path.join(dir, 'tmp'),
      // root: the runtime comes from containers.conf ([engine] runtime = "hako", as docs/clients.md says); rootless: --runtime PATH.
      ...(who === 'rootless' ? ['--runtime', wrapper] : []),
      '--cgroup-manager',
      'cgroupfs',
      '--events-backend',
      'file',
      '--storage-driver',
      'vfs',
    ];
    const podman = (args: string[], timeout = 60_000) => {
      const argv = [...podmanArgs(), ...args];
      return who === 'root'
        ? spawnSync('podman', argv, { encoding: 'utf8', env, timeout, cwd: dir })
        : spawnSync('setpriv', ['--reuid', String(uid), '--regid', String(gid), '--init-groups', 'podman', ...argv], {
            encoding: 'utf8',
            env,
            timeout,
            cwd: dir,
          });
    };
    const runArgs = () => ['--network', 'none', '--rootfs', BUSYBOX_ROOTFS];
    const calls = () => fs.readFileSync(path.join(dir, 'hako-calls.log'), 'utf8').split('\n').filter(Boolean);

    beforeAll(() => {
      cleanHost = hostDirsGuard(['/run/containers']);
      dir = clientDir(`podman-${who}`);
      if (who === 'rootless') {
        uid = Number(execFileSync('id', ['-u', TEST_USER], { encoding: 'utf8' }).trim());
        gid = Number(execFileSync('id', ['-g', TEST_USER], { encoding: 'utf8' }).trim());
      }
      const xdg = path.join(dir, 'xdg');
      fs.mkdirSync(xdg, { mode: 0o700 });
      const conf = path.join(dir, 'containers.conf');
      fs.writeFileSync(
        conf,
        [
          '[containers]',
          `default_ulimits = ["nofile=${HARD_NOFILE}:${HARD_NOFILE}"${/^\d+$/.test(hardNproc) ? `, "nproc=${hardNproc}:${hardNproc}"` : ''}]`,
          '[engine]',
          // The runtime's basename: conmon then passes --log-format=json --log <file>.
          'runtime_supports_json = ["hako"]',
          ...(who === 'root' ? ['runtime = "hako"', '[engine.runtimes]', `hako = ["${path.join(dir, 'hako')}"]`] : []),
          '',
        ].join('\n'),
      );
      wrapper = hakoWrapper(dir);
      env = {
        PATH: process.env.PATH,
        HOME: who === 'root' ? dir : execFileSync('getent', ['passwd', TEST_USER], { encoding: 'utf8' }).split(':')[5],
        CONTAINERS_CONF: conf,
        XDG_RUNTIME_DIR: xdg,
        XDG_CONFIG_HOME: path.join(dir, 'config'),
        XDG_DATA_HOME: path.join(dir, 'data'),
      };
      fs.mkdirSync(path.join(dir, 'config'));
      fs.mkdirSync(path.join(dir, 'data'));
      fs.writeFileSync(path.join(dir, 'hako-calls.log'), '');
      if (who === 'rootless') {
        for (const d of ['xdg', 'config', 'data']) fs.chownSync(path.join(dir, d), uid, gid);
        fs.chownSync(dir, uid, gid);
        fs.chownSync(path.join(dir, 'hako-calls.log'), uid, gid);
      }
    });

    afterAll(async () => {
      if (!dir) return;
      podman(['rm', '-af', '-t', '0']);
      // Rootless podman leaves its pause process (holding the user namespace) behind: ours, by its runroot.
      podman(['system', 'migrate']);
      for (const p of pidsMentioning(dir)) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // gone
        }
      }
      removeTree(dir);
      cleanHost();
    });

    test('podman run --rootfs: output and exit code', () => {
      const r = podman(['run', '--rm', ...runArgs(), 'sh', '-c', 'echo hello from podman; exit 3']);
      // hako's warnings (e.g. limits not applied) go to --log, never to stderr (conmon would hand them on as the container's).
      expect(r.stderr).not.toMatch(/level=warn |hako:/);
      expect(r.stdout).toBe('hello from podman\n');
      expect(r.status).toBe(3);
      expect(calls().some((l) => / create --bundle /.test(l) && l.includes('--log-format=json'))).toBe(true);
    });

    test("podman exec, top, stop, and no host fd or cwd in the exec'd process", async () => {
      const r0 = podman(['run', '-d', '--name', 'pe1', ...runArgs(), 'sh', '-c', 'trap "exit 42" TERM; while :; do sleep 0.1; done']);
      expect(r0.status, r0.stderr).toBe(0);
      try {
        const e = podman(['exec', 'pe1', 'sh', '-c', 'echo in pe1; exit 4']);
        expect(e.stdout).toBe('in pe1\n');
        expect(e.status).toBe(4);
        const w = podman(['exec', '-w', '/tmp', 'pe1', 'sh', '-c', 'echo "cwd=$(pwd -P) $(readlink /proc/self/cwd)"; ls /proc/self/fd']);
        expect(w.status, w.stderr).toBe(0);
        expect(w.stdout).toContain('cwd=/tmp /tmp\n');
        expect(w.stdout.split('\n').slice(1).filter(Boolean).sort()).toEqual(['0', '1', '2', '3']);
        expect(calls().some((l) => / exec .*--process \S+/.test(l) && l.includes('--detach'))).toBe(true);
        const st = podman(['inspect', '-f', '{{.State.Status}}', 'pe1']);
        expect(st.stdout.trim()).toBe('running');
        const stop = podman(['stop', '-t', '10', 'pe1']);
        expect(stop.status, stop.stderr).toBe(0);
        await waitFor('pe1 to exit', () => podman(['inspect', '-f', '{{.State.Status}}', 'pe1']).stdout.trim() === 'exited');
        expect(podman(['inspect', '-f', '{{.State.ExitCode}}', 'pe1']).stdout.trim()).toBe('42');
      } finally {
        podman(['rm', '-f', '-t', '0', 'pe1']);
      }
    });

    test('podman run -t: the container has a terminal (conmon takes the pty master from hako)', () => {
      const r = podman(['run', '--rm', '-t', ...runArgs(), 'sh', '-c', 'tty; [ -t 1 ] && echo stdout-is-a-tty']);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/\/dev\/pts\/\d+/);
      expect(r.stdout).toContain('stdout-is-a-tty');
    });

    test.runIf(who === 'root')('podman pause/unpause and update: through the cgroup v2 driver, or refused with the reason', () => {
      const r0 = podman(['run', '-d', '--name', 'pp1', ...runArgs(), 'sleep', '600']);
      expect(r0.status, r0.stderr).toBe(0);
      try {
        const p = podman(['pause', 'pp1']);
        if (p.status === 0) {
          expect(podman(['inspect', '-f', '{{.State.Status}}', 'pp1']).stdout.trim()).toBe('paused');
          expect(podman(['unpause', 'pp1']).status).toBe(0);
          expect(podman(['inspect', '-f', '{{.State.Status}}', 'pp1']).stdout.trim()).toBe('running');
        } else {
          expect(p.stderr).toMatch(/freezer|cgroup/);
        }
        // podman update → hako update --resources=FILE: applied, or refused naming the field and the reason.
        const u = podman(['update', '--memory', '128m', 'pp1']);
        if (u.status !== 0)
          expect(u.stderr).toMatch(
            /cannot update container "[0-9a-f]+": linux\.resources\.memory\.\w+: the memory controller is not available/,
          );
        else expect(u.stderr).not.toContain('not applied');
        expect(calls().some((l) => /(^| )update --resources[ =]\S+ /.test(l))).toBe(true);
      } finally {
        podman(['rm', '-f', '-t', '0', 'pp1']);
      }
    });

    test('socket activation: podman started with LISTEN_FDS=1 hands the socket to the container at fd 3, LISTEN_PID=1', async () => {
      const server = net.createServer();
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      try {
        const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
        const inode = fs.readlinkSync(`/proc/self/fd/${fd}`);
        const probe = 'echo "fds=$LISTEN_FDS pid=$LISTEN_PID me=$$ sock=$(readlink /proc/self/fd/3)"';
        const quoted = [...podmanArgs(), 'run', '--rm', ...runArgs(), 'sh', '-c', probe].map((a) => `'${a}'`).join(' ');
        const script = `LISTEN_FDS=1 LISTEN_PID=$$ exec podman ${quoted}`;
        const argv =
          who === 'root'
            ? ['sh', '-c', script]
            : ['setpriv', '--reuid', String(uid), '--regid', String(gid), '--init-groups', 'sh', '-c', script];
        const p = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe', fd], env, cwd: dir });
        let out = '';
        let err = '';
        p.stdout!.on('data', (d) => (out += d));
        p.stderr!.on('data', (d) => (err += d));
        const code = await new Promise<number | null>((res) => p.on('close', res));
        expect(code, err).toBe(0);
        expect(out).toContain(`fds=1 pid=1 me=1 sock=${inode}`);
        expect(calls().some((l) => / create .*--preserve-fds 1/.test(l))).toBe(true);
      } finally {
        server.close();
      }
    });

    test("a program that does not exist: hako's sentence reaches the podman user", () => {
      const r = podman(['run', '--rm', ...runArgs(), '/no/such/program']);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain('/no/such/program');
    });

    test("without the containers.conf ulimit, Podman's nofile request fails with a sentence naming RLIMIT_NOFILE", () => {
      const r = podman(['run', '--rm', '--ulimit', `nofile=${HARD_NOFILE * 50}:${HARD_NOFILE * 50}`, ...runArgs(), 'true']);
      if (r.status === 0) return; // a host whose limits allow it
      expect(r.stderr).toMatch(
        /set RLIMIT_NOFILE to \d+:\d+ failed: EPERM: a hard limit can only be raised with CAP_SYS_RESOURCE, and it is \d+ here; ask for no more/,
      );
    });

    test('hako logs for conmon parse strictly', () => {
      const logs = spawnSync('sh', ['-c', `find '${dir}/run' -name oci-log 2>/dev/null`], { encoding: 'utf8' })
        .stdout.split('\n')
        .filter(Boolean);
      for (const f of logs) expect(() => parseJsonLog(f)).not.toThrow();
    });
  });
}
