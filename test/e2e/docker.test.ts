// hako under the real Docker engine 20.10: a private dockerd (on its own
// containerd) with `--add-runtime hako=<wrapper>`, an image from `docker import`.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { BUSYBOX_ROOTFS, REPO } from '../helpers/env.js';
import { rootfsTar } from './clients/image.js';
import {
  clientDir,
  hakoWrapper,
  parseJsonLog,
  removeTree,
  skipReason,
  startContainerd,
  startDockerd,
  waitFor,
  type Containerd,
  type Dockerd,
} from './clients/daemons.js';

const skip = skipReason(['containerd', 'dockerd']);

/** The daemon.json of docs/clients.md, with the binary's path replaced by the test's wrapper. */
function docsDaemonJson(binary: string): Record<string, unknown> {
  const doc = fs.readFileSync(path.join(REPO, 'docs/clients.md'), 'utf8');
  const block = /## Docker[\s\S]*?```json\n([\s\S]*?)```/.exec(doc);
  if (!block) throw new Error('docs/clients.md has no daemon.json example under "## Docker"');
  return JSON.parse(block[1].replaceAll('/usr/local/bin/hako', binary));
}
const IMAGE = 'local/hako-busybox:test';

describe.skipIf(skip)(`dockerd 20.10 drives hako${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let dir = '';
  let ctd: Containerd;
  let dockerd: Dockerd;
  const docker = (args: string[], opts?: { input?: string; timeout?: number }) => dockerd.docker(args, opts);
  const runArgs = ['--runtime', 'hako', '--network', 'none'];
  const calls = () => fs.readFileSync(path.join(dir, 'hako-calls.log'), 'utf8').split('\n').filter(Boolean);
  const fullId = (name: string) => docker(['inspect', '-f', '{{.Id}}', name]).stdout.trim();
  const status = (name: string) => docker(['inspect', '-f', '{{.State.Status}}', name]).stdout.trim();

  beforeAll(async () => {
    dir = clientDir('docker');
    ctd = await startContainerd(dir);
    const wrapper = hakoWrapper(dir);
    // live-restore: containers keep running while dockerd restarts (the test restarts it).
    // hako-strict: the same hako with HAKO_CGROUP_STRICT=1, so limits it cannot apply are refused.
    const strict = hakoWrapper(dir, 'hako-strict', { HAKO_CGROUP_STRICT: '1' });
    // hako is registered the way docs/clients.md says (daemon.json "runtimes"), hako-strict with --add-runtime.
    dockerd = await startDockerd(dir, ctd.sock, { 'hako-strict': strict }, [], { ...docsDaemonJson(wrapper), 'live-restore': true });
    const imp = docker(['import', '-c', 'CMD ["/bin/sh"]', rootfsTar(BUSYBOX_ROOTFS, path.join(dir, 'rootfs.tar')), IMAGE]);
    expect(imp.status, imp.stderr).toBe(0);
  });

  afterAll(async () => {
    if (dockerd) await dockerd.stop();
    if (ctd) await ctd.stop();
    if (dir) removeTree(dir);
  });

  test('docker info lists hako as a runtime', () => {
    const r = docker(['info', '--format', '{{json .Runtimes}}']);
    expect(r.status, r.stderr).toBe(0);
    expect(Object.keys(JSON.parse(r.stdout))).toContain('hako');
  });

  test('docker run --runtime hako: output and exit code', () => {
    const r = docker(['run', '--rm', ...runArgs, IMAGE, 'sh', '-c', 'echo hello from docker; echo err >&2; exit 3']);
    expect(r.stdout).toBe('hello from docker\n');
    expect(r.stderr).toContain('err');
    expect(r.status).toBe(3);
    expect(calls().some((l) => l.includes('--log-format json') && / create --bundle /.test(l))).toBe(true);
  });

  test("docker exec, docker top, and no host fd or cwd in the exec'd process", () => {
    expect(docker(['run', '-d', '--name', 'ex1', ...runArgs, IMAGE, 'sleep', '600']).status).toBe(0);
    try {
      const e = docker(['exec', 'ex1', 'sh', '-c', 'echo in ex1; exit 4']);
      expect(e.stdout).toBe('in ex1\n');
      expect(e.status).toBe(4);
      const w = docker(['exec', '-w', '/tmp', 'ex1', 'sh', '-c', 'echo "cwd=$(pwd -P) $(readlink /proc/self/cwd)"; ls /proc/self/fd']);
      expect(w.status, w.stderr).toBe(0);
      expect(w.stdout).toContain('cwd=/tmp /tmp\n');
      // ls's own directory fd (3) and stdio, nothing else.
      expect(w.stdout.split('\n').slice(1).filter(Boolean).sort()).toEqual(['0', '1', '2', '3']);
      const top = docker(['top', 'ex1']);
      expect(top.status, top.stderr).toBe(0);
      expect(top.stdout).toContain('sleep 600');
    } finally {
      docker(['rm', '-f', 'ex1']);
    }
  });

  test('docker stop: SIGTERM first; a container that ignores it gets SIGKILL after the timeout', async () => {
    expect(
      docker(['run', '-d', '--name', 'st1', ...runArgs, IMAGE, 'sh', '-c', 'trap "exit 42" TERM; while :; do sleep 0.1; done']).status,
    ).toBe(0);
    expect(docker(['run', '-d', '--name', 'st2', ...runArgs, IMAGE, 'sleep', '600']).status).toBe(0);
    try {
      const id1 = fullId('st1');
      const id2 = fullId('st2');
      expect(docker(['stop', '-t', '10', 'st1']).status).toBe(0);
      expect(docker(['inspect', '-f', '{{.State.ExitCode}}', 'st1']).stdout.trim()).toBe('42');
      const t0 = Date.now();
      expect(docker(['stop', '-t', '1', 'st2']).status).toBe(0);
      expect(Date.now() - t0).toBeLessThan(15_000);
      expect(docker(['inspect', '-f', '{{.State.ExitCode}}', 'st2']).stdout.trim()).toBe('137');
      const kills = (id: string) => calls().filter((l) => / kill /.test(l) && (l.endsWith(` ${id} 15`) || l.endsWith(` ${id} 9`)));
      expect(kills(id1).some((l) => l.endsWith(' 15'))).toBe(true);
      expect(kills(id2).map((l) => l.split(' ').at(-1))).toEqual(expect.arrayContaining(['15', '9']));
    } finally {
      docker(['rm', '-f', 'st1', 'st2']);
    }
  });

  test('docker run -t: the container has a terminal', () => {
    const r = docker(['run', '--rm', '-t', ...runArgs, IMAGE, 'sh', '-c', 'tty; [ -t 1 ] && echo stdout-is-a-tty']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\/dev\/pts\/\d+\r?\n/);
    expect(r.stdout).toContain('stdout-is-a-tty');
  });

  test('docker run --memory: honoured, or refused with a clear reason (HAKO_CGROUP_STRICT=1)', () => {
    const r = docker([
      'run',
      '--rm',
      '--runtime',
      'hako-strict',
      '--network',
      'none',
      '--memory',
      '64m',
      IMAGE,
      'sh',
      '-c',
      // v2: the container's own tree; v1 (root on this hybrid host): the host's tree, at the container's path.
      'cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory$(grep :memory: /proc/self/cgroup | cut -d: -f3)/memory.limit_in_bytes 2>/dev/null || echo none',
    ]);
    if (r.status === 0) {
      expect(r.stdout.trim()).toBe(String(64 * 1024 * 1024));
    } else {
      // This hybrid host: the v2 tree has no memory controller.
      expect(r.stderr).toMatch(
        /OCI runtime create failed: cannot apply the container's limits: linux\.resources\.memory\.\w+: the memory controller is not available/,
      );
    }
    // Without strict mode the container runs, and the log says the limit was not applied.
    const w = docker(['run', '-d', '--name', 'mem2', ...runArgs, '--memory', '64m', IMAGE, 'sleep', '600']);
    try {
      expect(w.status, w.stderr).toBe(0);
      const log = path.join(dir, 'ctd-state/io.containerd.runtime.v2.task/moby', fullId('mem2'), 'log.json');
      if (r.status !== 0)
        expect(parseJsonLog(log).some((l) => l.level === 'warn' && l.msg.includes('memory limits are not applied'))).toBe(true);
    } finally {
      docker(['rm', '-f', 'mem2']);
    }
  });

  test("docker pause: paused, or refused with hako's reason", () => {
    expect(docker(['run', '-d', '--name', 'pa1', ...runArgs, IMAGE, 'sleep', '600']).status).toBe(0);
    try {
      const p = docker(['pause', 'pa1']);
      if (p.status === 0) {
        expect(status('pa1')).toBe('paused');
        expect(docker(['unpause', 'pa1']).status).toBe(0);
      } else {
        expect(p.stderr).toContain('pausing needs a cgroup freezer');
      }
      // docker update → hako update --resources - (LinuxResources on stdin).
      const u = docker(['update', '--pids-limit', '100', 'pa1']);
      if (u.status !== 0) expect(u.stderr).toMatch(/cannot update container "[0-9a-f]+": .*(cgroup|controller)/);
      else expect(calls().some((l) => / update --resources - /.test(l))).toBe(true);
    } finally {
      docker(['rm', '-f', 'pa1']);
    }
  });

  test('dockerd restarts (live-restore) and comes back to a running hako container', async () => {
    expect(docker(['run', '-d', '--name', 'lr1', ...runArgs, IMAGE, 'sleep', '600']).status).toBe(0);
    try {
      const pid = docker(['inspect', '-f', '{{.State.Pid}}', 'lr1']).stdout.trim();
      await dockerd.restart();
      expect(status('lr1')).toBe('running');
      expect(docker(['inspect', '-f', '{{.State.Pid}}', 'lr1']).stdout.trim()).toBe(pid);
      const e = docker(['exec', 'lr1', 'echo', 'still here']);
      expect(e.stdout).toBe('still here\n');
      expect(docker(['stop', '-t', '1', 'lr1']).status).toBe(0);
      await waitFor('lr1 to exit', () => status('lr1') === 'exited');
    } finally {
      docker(['rm', '-f', 'lr1']);
    }
  });

  test("--pid host: when the init exits, the shim's kill --all reaches the processes it left behind", async () => {
    const r = docker(['run', '-d', '--name', 'ph1', '--pid', 'host', ...runArgs, IMAGE, 'sh', '-c', 'sleep 31337 & sleep 1; exit 0']);
    expect(r.status, r.stderr).toBe(0);
    try {
      await waitFor('ph1 to exit', () => status('ph1') === 'exited', 30_000);
      const left = () =>
        fs
          .readdirSync('/proc')
          .filter((d) => /^\d+$/.test(d))
          .filter((d) => {
            try {
              return fs.readFileSync(`/proc/${d}/cmdline`, 'utf8') === 'sleep\x0031337\x00';
            } catch {
              return false;
            }
          });
      await waitFor('the orphaned sleep to be killed', () => left().length === 0, 15_000);
      expect(calls().some((l) => / kill --all \S+ 9$/.test(l))).toBe(true);
    } finally {
      docker(['rm', '-f', 'ph1']);
    }
  });

  test("a command that does not exist: exit code 127 and hako's sentence", () => {
    const r = docker(['run', '--rm', ...runArgs, IMAGE, 'no-such-program']);
    expect(r.status).toBe(127);
    expect(r.stderr).toContain('no-such-program');
    expect(r.stderr).not.toContain('unable to retrieve OCI runtime error');
  });

  test('every JSON log hako wrote for docker parses strictly', () => {
    const base = path.join(dir, 'ctd-state/io.containerd.runtime.v2.task/moby');
    const files = fs.existsSync(base)
      ? fs
          .readdirSync(base)
          .map((d) => path.join(base, d, 'log.json'))
          .filter((f) => fs.existsSync(f))
      : [];
    for (const f of files) expect(() => parseJsonLog(f)).not.toThrow();
  });
});
