// hako under the real containerd 1.6 (containerd-shim-runc-v2 with
// `ctr run --runc-binary`): a private daemon, an image imported from a local
// OCI archive, and the calls the shim makes.
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { BUSYBOX_ROOTFS, CLI, REPO } from '../helpers/env.js';
import { buildOciArchive } from './clients/image.js';
import {
  clientDir,
  hakoWrapper,
  parseJsonLog,
  removeTree,
  skipReason,
  startContainerd,
  waitFor,
  type Containerd,
} from './clients/daemons.js';

const skip = skipReason(['containerd', 'ctr']);
const IMAGE = 'docker.io/library/hako-busybox:test';

describe.skipIf(skip)(`containerd 1.6 drives hako${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let dir = '';
  let ctd: Containerd;
  let wrapper = '';
  let runcRoot = '';
  let fifoDir = '';
  const taskDir = (id: string) => path.join(dir, 'ctd-state/io.containerd.runtime.v2.task/hakotest', id);
  /** ctr run with hako as the shim's runtime binary; every flag the shim adds comes from containerd. */
  const run = (args: string[], opts: { timeout?: number } = {}) =>
    ctd.ctr(['run', '--runc-binary', wrapper, '--runc-root', runcRoot, '--fifo-dir', fifoDir, ...args], opts);
  const calls = () => fs.readFileSync(path.join(dir, 'hako-calls.log'), 'utf8').split('\n').filter(Boolean);

  beforeAll(async () => {
    dir = clientDir('containerd');
    runcRoot = path.join(dir, 'hako-root');
    fifoDir = path.join(dir, 'fifo');
    ctd = await startContainerd(dir);
    wrapper = hakoWrapper(dir);
    const tar = buildOciArchive(BUSYBOX_ROOTFS, IMAGE, path.join(dir, 'image.tar'));
    const r = ctd.ctr(['images', 'import', tar]);
    expect(r.status, r.stderr).toBe(0);
  });

  afterAll(async () => {
    if (ctd) await ctd.stop();
    if (dir) removeTree(dir);
  });

  test('the runtime entry of docs/clients.md (the handler a RuntimeClass names) is a valid containerd config', () => {
    const doc = fs.readFileSync(path.join(REPO, 'docs/clients.md'), 'utf8');
    const toml = /## containerd[\s\S]*?```toml\n([\s\S]*?)```/.exec(doc)![1];
    const file = path.join(dir, 'docs-config.toml');
    fs.writeFileSync(file, toml);
    const r = spawnSync('containerd', ['--config', file, 'config', 'dump'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const entry = r.stdout.slice(r.stdout.indexOf('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.hako]'));
    expect(entry).toContain('runtime_type = "io.containerd.runc.v2"');
    expect(entry).toMatch(/BinaryName = "\/usr\/local\/bin\/hako"/);
  });

  test('ctr run: output and exit code come through; the shim passes --root, --log and --log-format json', () => {
    const r = run(['--rm', IMAGE, 'out1', 'sh', '-c', 'echo hello from hako; echo to stderr >&2; exit 3']);
    expect(r.stdout).toBe('hello from hako\n');
    expect(r.stderr).toContain('to stderr');
    expect(r.status).toBe(3);
    const create = calls().find((l) => l.includes(' create ') && l.endsWith(' out1'))!;
    expect(create).toContain(`--root ${runcRoot}/hakotest`);
    expect(create).toContain('--log-format json');
    expect(create).toMatch(/--pid-file \S+\/init\.pid/);
    // Nothing of the container is left in hako's state dir after --rm.
    expect(fs.readdirSync(path.join(runcRoot, 'hakotest')).filter((e) => e.startsWith('out1'))).toEqual([]);
  });

  test('--runc-systemd-cgroup: hako accepts the global --systemd-cgroup flag', () => {
    const r = run(['--rm', '--runc-systemd-cgroup', '--cgroup', 'system.slice:hakotest:sd1', IMAGE, 'sd1', 'sh', '-c', 'echo ok']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('ok\n');
    expect(calls().some((l) => l.includes('--systemd-cgroup') && l.endsWith(' sd1'))).toBe(true);
  });

  test('ctr task exec, ps and kill on a running container', async () => {
    // The init traps SIGTERM (a pid 1 without a handler ignores it), so kill 15 is observable.
    const init = spawn(
      'ctr',
      [
        '--address',
        ctd.sock,
        '--namespace',
        'hakotest',
        'run',
        '--runc-binary',
        wrapper,
        '--runc-root',
        runcRoot,
        '--fifo-dir',
        fifoDir,
        '--rm',
        IMAGE,
        'k1',
        'sh',
        '-c',
        'trap "echo got TERM; exit 42" TERM; echo ready; while :; do sleep 0.1; done',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    init.stdout.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((res) => init.on('exit', (code) => res(code)));
    await waitFor('the container to print ready', () => out.includes('ready'), 30_000);

    const e = ctd.ctr([
      'task',
      'exec',
      '--exec-id',
      'e1',
      'k1',
      'sh',
      '-c',
      'echo in the container; cat /proc/1/cmdline | tr "\\0" " "; exit 5',
    ]);
    expect(e.stdout).toContain('in the container\nsh -c trap');
    expect(e.status).toBe(5);
    expect(calls().some((l) => /\bexec --process \S+ --detach --pid-file \S+ k1$/.test(l))).toBe(true);

    // ctr task ps calls `hako ps --format json k1`.
    const ps = ctd.ctr(['task', 'ps', 'k1']);
    expect(ps.status, ps.stderr).toBe(0);
    const pid = Number(fs.readFileSync(path.join(taskDir('k1'), 'init.pid'), 'utf8'));
    expect(ps.stdout).toContain(String(pid));

    const k = ctd.ctr(['task', 'kill', 'k1']);
    expect(k.status, k.stderr).toBe(0);
    expect(await exited).toBe(42);
    expect(out).toContain('got TERM');
  });

  test('an exec carries no host fd and no host cwd into the container (CVE-2024-21626 class)', async () => {
    const r0 = run(['-d', IMAGE, 'fd1', 'sleep', '600']);
    expect(r0.status, r0.stderr).toBe(0);
    try {
      const e = ctd.ctr([
        'task',
        'exec',
        '--exec-id',
        'e2',
        '--cwd',
        '/tmp',
        'fd1',
        'sh',
        '-c',
        'cd -P .; echo "cwd=$(pwd)"; for f in /proc/self/fd/*; do echo "fd ${f##*/} $(readlink $f)"; done',
      ]);
      expect(e.status, e.stderr).toBe(0);
      expect(e.stdout).toContain('cwd=/tmp\n');
      const fds = e.stdout
        .split('\n')
        .filter((l) => l.startsWith('fd '))
        .map((l) => l.split(' ')[1]);
      // 0-2 are the shim's pipes; the glob's own directory fd may show; nothing else.
      expect(fds.filter((f) => !['0', '1', '2'].includes(f)).length).toBeLessThanOrEqual(1);
      // (it is gone by the time readlink runs in its own process, or points at /proc/N/fd).
      for (const l of e.stdout.split('\n').filter((x) => x.startsWith('fd ') && !/^fd [012] /.test(x)))
        expect(l).toMatch(/^fd \d+ (\/proc\/\d+\/fd)?$/);
      for (const l of e.stdout.split('\n').filter((x) => /^fd [012] /.test(x))) expect(l).toMatch(/^fd [012] (pipe:|\/dev\/null)/);
      // The exec'd process's cwd, seen from the host, is inside the container's rootfs.
      const cwd = ctd.ctr(['task', 'exec', '--exec-id', 'e3', 'fd1', 'sh', '-c', 'readlink /proc/self/cwd; ls /proc/self/fd | wc -l']);
      expect(cwd.stdout.split('\n')[0]).toBe('/');
    } finally {
      ctd.ctr(['task', 'kill', '-s', 'SIGKILL', 'fd1']);
      await waitFor('fd1 to stop', () => !/fd1\s+\d+\s+RUNNING/.test(ctd.ctr(['task', 'ls']).stdout));
      ctd.ctr(['task', 'delete', 'fd1']);
      ctd.ctr(['containers', 'delete', 'fd1']);
    }
  });

  test("ctr task pause/resume: frozen through cgroup.freeze, or refused with hako's reason when there is no cgroup v2", async () => {
    const r0 = run(['-d', IMAGE, 'p1', 'sleep', '600']);
    expect(r0.status, r0.stderr).toBe(0);
    try {
      const p = ctd.ctr(['task', 'pause', 'p1']);
      if (p.status === 0) {
        // A cgroup v2 host: the container really freezes and thaws.
        expect(ctd.ctr(['task', 'ls']).stdout).toMatch(/p1\s+\d+\s+PAUSED/);
        expect(ctd.ctr(['task', 'resume', 'p1']).status).toBe(0);
      } else {
        expect(p.stderr).toContain('pausing needs a cgroup freezer');
      }
    } finally {
      ctd.ctr(['task', 'kill', '-s', 'SIGKILL', 'p1']);
      await waitFor('p1 to stop', () => !/p1\s+\d+\s+RUNNING/.test(ctd.ctr(['task', 'ls']).stdout));
      ctd.ctr(['task', 'delete', 'p1']);
      ctd.ctr(['containers', 'delete', 'p1']);
    }
  });

  test('ctr run --tty: the container gets a pty from hako over the console socket', () => {
    // ctr wants a terminal of its own: script(1) gives it one.
    const cmd = [
      'ctr',
      '--address',
      ctd.sock,
      '--namespace',
      'hakotest',
      'run',
      '--runc-binary',
      wrapper,
      '--runc-root',
      runcRoot,
      '--fifo-dir',
      fifoDir,
      '--rm',
      '-t',
      IMAGE,
      'tty1',
      'sh',
      '-c',
      'tty; [ -t 0 ] && echo stdin-is-a-tty; exit 7',
    ].join(' ');
    const r = spawnSync('script', ['-qefc', cmd, '/dev/null'], { encoding: 'utf8', timeout: 60_000, input: '' });
    expect(r.stdout).toMatch(/\/dev\/pts\/\d+/);
    expect(r.stdout).toContain('stdin-is-a-tty');
    expect(r.status).toBe(7);
    expect(calls().some((l) => / create .*--console-socket \S+.* tty1$/.test(l))).toBe(true);
  });

  test("ctr task exec --tty: the exec'd process gets its own pty through --console-socket", async () => {
    const r0 = run(['-d', IMAGE, 'tty2', 'sleep', '600']);
    expect(r0.status, r0.stderr).toBe(0);
    try {
      const cmd = [
        'ctr',
        '--address',
        ctd.sock,
        '--namespace',
        'hakotest',
        'task',
        'exec',
        '-t',
        '--exec-id',
        'et',
        'tty2',
        'sh',
        '-c',
        '"tty; [ -t 0 ] && echo stdin-is-a-tty; exit 9"',
      ].join(' ');
      const r = spawnSync('script', ['-qefc', cmd, '/dev/null'], { encoding: 'utf8', timeout: 60_000, input: '' });
      expect(r.stdout).toMatch(/\/dev\/pts\/\d+/);
      expect(r.stdout).toContain('stdin-is-a-tty');
      expect(r.status).toBe(9);
      expect(calls().some((l) => / exec .*--console-socket \S+.* tty2$/.test(l))).toBe(true);
    } finally {
      ctd.ctr(['task', 'kill', '-s', 'SIGKILL', 'tty2']);
      await waitFor('tty2 to stop', () => !/tty2\s+\d+\s+RUNNING/.test(ctd.ctr(['task', 'ls']).stdout));
      ctd.ctr(['task', 'delete', 'tty2']);
      ctd.ctr(['containers', 'delete', 'tty2']);
    }
  });

  test("a container that fails to start: ctr shows hako's error, read from the JSON --log", () => {
    // A wrapper that keeps a copy of --log after a failed call (containerd removes the bundle, log.json with it).
    const keeper = path.join(dir, 'hako-keep-log');
    fs.writeFileSync(
      keeper,
      `#!/bin/sh
'${CLI}' "$@"
rc=$?
prev=
for a in "$@"; do [ "$prev" = --log ] && log="$a"; prev="$a"; done
[ $rc -ne 0 ] && [ -n "$log" ] && cp "$log" '${dir}/failed-log.json'
exit $rc
`,
      { mode: 0o755 },
    );
    const r = ctd.ctr([
      'run',
      '--rm',
      '--runc-binary',
      keeper,
      '--runc-root',
      runcRoot,
      '--fifo-dir',
      fifoDir,
      IMAGE,
      'bad1',
      '/no/such/program',
    ]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/OCI runtime (create|start) failed: .*\/no\/such\/program/);
    expect(r.stderr).not.toContain('unable to retrieve OCI runtime error');
    // The log the shim read: strict JSON lines, RFC 3339 times, and the last error is hako's sentence.
    const logs = parseJsonLog(path.join(dir, 'failed-log.json'));
    const last = logs.filter((l) => l.level === 'error').at(-1)!;
    expect(last.msg).toContain('/no/such/program');
    expect(r.stderr).toContain(last.msg);
    expect(last.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/);
  });

  test('every JSON log hako wrote for containerd parses strictly', () => {
    const base = path.join(dir, 'ctd-state/io.containerd.runtime.v2.task/hakotest');
    const files = fs.existsSync(base)
      ? fs
          .readdirSync(base)
          .map((d) => path.join(base, d, 'log.json'))
          .filter((f) => fs.existsSync(f))
      : [];
    for (const f of files) expect(() => parseJsonLog(f)).not.toThrow();
  });
});
