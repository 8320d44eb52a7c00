// The library (`import { Hako } from 'hako'`), as a test suite uses it: in this process
// through the vitest fixture, and each scenario again in a process of its own, rootless (as
// the test user) and as root, with what it leaves checked from outside.
import fs from 'node:fs';
import net from 'node:net';
import { describe, expect, afterAll } from 'vitest';
import { withContainer } from '../../src/harness/vitest.js';
import { BUSYBOX_ROOTFS, IS_ROOT } from '../helpers/env.js';
import { scratchForThisFile, WHO } from '../helpers/hako.js';
import { runScenario, leftovers, snapshot, hostToolsRootfs, NOTHING_LEFT } from '../harness/scenario.js';

const { scratch } = scratchForThisFile();
const text = (s: NodeJS.ReadableStream) =>
  new Promise<string>((resolve) => {
    let t = '';
    s.on('data', (d: Buffer) => (t += d)).on('end', () => resolve(t));
  });
const root = scratch(IS_ROOT ? 'root' : 'rootless', 'hrn-inproc-');

// A fresh container per test, in this process: the one-line fixture.
const it = withContainer({ rootfs: BUSYBOX_ROOTFS, args: ['sh', '-c', 'echo ready; exec sleep 600'], hostname: 'hrn' }, { root });

describe('the library in this process (vitest fixture)', () => {
  afterAll(() => expect(fs.readdirSync(root).filter((f) => !f.startsWith('.'))).toEqual([]));

  it('gives each test a running container to exec into', async ({ container }) => {
    expect(container.state().status).toBe('running');
    const r = await container.exec(['sh', '-c', 'hostname; echo $$; id -u; echo err >&2; exit 4']);
    expect(r).toEqual({ code: 4, signal: null, stdout: expect.stringMatching(/^hrn\n([2-9]|\d\d+)\n0\n$/), stderr: 'err\n' });
  });

  it('streams the container output and reports its exit', async ({ container }) => {
    const first = await new Promise<string>((resolve) => container.stdout.once('data', (d: Buffer) => resolve(String(d))));
    expect(first).toBe('ready\n');
    expect(container.kill('KILL')).toBe(true);
    expect(await container.wait()).toEqual({ code: 137, signal: 'SIGKILL' });
    // Stopped, not closed: exec says so.
    await expect(container.exec(['true'])).rejects.toThrow(`cannot exec in container "${container.id}": it is stopped`);
  });

  it('runs one-shot containers from the same Hako', async ({ hako }) => {
    const rs = await Promise.all([1, 2, 3].map((i) => hako.run({ rootfs: BUSYBOX_ROOTFS, args: ['sh', '-c', `echo ${i}`] })));
    expect(rs.map((r) => r.stdout)).toEqual(['1\n', '2\n', '3\n']);
  });

  it.skipIf(!IS_ROOT)('applies limits, user and cwd (the pids limit holds: a control without it forks freely)', async ({ hako }) => {
    const forks = 'ulimit -n; id -u; pwd; for i in $(seq 20); do sleep 1 & done; wait; echo forked';
    const limited = await hako.start({
      rootfs: BUSYBOX_ROOTFS,
      args: ['sh', '-c', forks],
      limits: { pids: 9, memory: 64 << 20, nofile: 77 },
      user: 1000,
      cwd: '/tmp',
    });
    // On this host the limits go to cgroup v1 hierarchies (hybrid mode), under hako/<id>.
    expect(fs.readFileSync(`/sys/fs/cgroup/pids/hako/${limited.id}/pids.max`, 'utf8').trim()).toBe('9');
    expect(fs.readFileSync(`/sys/fs/cgroup/memory/hako/${limited.id}/memory.limit_in_bytes`, 'utf8').trim()).toBe(String(64 << 20));
    const [out, err, exit] = await Promise.all([text(limited.stdout), text(limited.stderr), limited.wait()]);
    await limited.close();
    // sh gives up at the fork the pids limit refuses.
    expect({ out, err, exit }).toEqual({
      out: '77\n1000\n/tmp\n',
      err: expect.stringMatching(/can't fork/),
      exit: { code: 2, signal: null },
    });
    const control = await hako.run({ rootfs: BUSYBOX_ROOTFS, args: ['sh', '-c', forks], limits: { nofile: 77 }, user: 1000, cwd: '/tmp' });
    expect(control).toEqual({ code: 0, signal: null, stdout: '77\n1000\n/tmp\nforked\n', stderr: '' });
  });

  it('publishes a port through a handed-in socket', async ({ hako }) => {
    const server = `require('net').createServer((s) => s.end('served')).listen({ fd: 3 })`;
    const hostTools = hostToolsRootfs(scratch(IS_ROOT ? 'root' : 'rootless', 'hrn-tools-'));
    await using c = await hako.start({
      ...hostTools,
      args: [process.execPath, '-e', server],
      ports: [{ container: 8080 }],
      network: 'none',
    });
    const [host, port] = c.address(8080).split(':');
    const reply = await new Promise<string>((resolve, reject) => {
      let text = '';
      net
        .connect(Number(port), host)
        .on('data', (d) => (text += d))
        .on('end', () => resolve(text))
        .on('error', reject);
    });
    expect(reply).toBe('served');
  });
});

describe.skipIf(!IS_ROOT).each(WHO)('the library in a process of its own (%s)', (who) => {
  const root = scratch(who, 'hrn-root-');

  it('starts, streams, execs into, signals and closes real containers', () => {
    const before = snapshot();
    const r = runScenario(who, 'basics', { root, rootfs: BUSYBOX_ROOTFS });
    expect(r.stderr).toBe('');
    const res = r.result as Record<string, unknown> & { pids: number[] };
    expect(res.run).toEqual({ code: 3, signal: null, stdout: 'hello\n', stderr: 'oops\n' });
    expect(res.up).toBe('up');
    expect(res.status).toBe('running');
    // A pid of the container's namespace (small, not the init's 1), its env, its hostname.
    expect(res.exec).toEqual({ code: 7, signal: null, stdout: expect.stringMatching(/^([2-9]|\d\d+) hi there\nhako\n$/), stderr: 'err\n' });
    expect(res.streamed).toEqual({ lines: 'one\ntwo\n', exit: { code: 0, signal: null } });
    expect(res.exit).toEqual({ code: 5, signal: null });
    expect(res.afterExit).toEqual({ bye: 'bye', kill: false });
    expect(res.execStopped).toMatchObject({ name: 'HakoError', message: expect.stringMatching(/it is stopped$/), step: 'exec' });
    expect(res.execClosed).toMatchObject({ name: 'HakoError', message: expect.stringMatching(/: it is closed$/), step: 'exec' });
    expect(res.killed).toEqual({ code: 137, signal: 'SIGKILL' });
    expect(leftovers(root, [`hako-${r.pid}-`], res.pids, before)).toEqual(NOTHING_LEFT);
  });

  it('bad input: one sentence with the step, errno and path, and nothing left', () => {
    const before = snapshot();
    const r = runScenario(who, 'bad', { root, rootfs: BUSYBOX_ROOTFS });
    expect(r.stderr).toBe('');
    const res = r.result;
    expect(res.missingRootfs).toEqual({
      name: 'HakoError',
      message: `start: rootfs: "${BUSYBOX_ROOTFS}-not-there" does not exist`,
      step: 'rootfs',
      errno: 'ENOENT',
      path: `${BUSYBOX_ROOTFS}-not-there`,
    });
    expect(res.notFound).toEqual({
      name: 'HakoError',
      message: 'exec: "/bin/no-such-program": executable file not found in $PATH',
      step: 'find the executable "/bin/no-such-program"',
      errno: 'ENOENT',
      path: '/bin/no-such-program',
    });
    expect(res.notFoundInPath).toMatchObject({
      message: 'exec: "no-such-program": executable file not found in $PATH',
      path: 'no-such-program',
    });
    expect(res.emptyArgs).toMatchObject({ message: 'start: args: expected a non-empty array of strings', step: 'options' });
    expect(res.badEnv).toMatchObject({ message: 'start: env.A=B: a variable name has no "=" and is not empty', step: 'options' });
    expect(res.twoSources).toMatchObject({ message: 'start: rootfs | bundle | image: give exactly one (got rootfs, bundle)' });
    expect(res.image).toMatchObject({
      message: expect.stringMatching(/^start: image: OCI images are not supported/),
      path: '/some/oci-layout',
    });
    expect(res.badConfig).toMatchObject({ message: 'start: config: process.cwd: "relative" must be an absolute path', step: 'options' });
    expect(res.badMountSource).toMatchObject({ message: 'start: mounts[0].source: "/no/such/dir" does not exist', path: '/no/such/dir' });
    expect(res.badCwd).toMatchObject({
      message: expect.stringMatching(/does not exist inside the container/),
      errno: 'ENOENT',
      path: '/no/such/dir',
    });
    expect(leftovers(root, [`hako-${r.pid}-`], [], before)).toEqual(NOTHING_LEFT);
  });

  it("network 'none' has not even lo up, 'loopback' has; a published port serves from inside", () => {
    const before = snapshot();
    const hostTools = hostToolsRootfs(scratch(who, 'hrn-tools-'));
    const r = runScenario(who, 'network', { root, rootfs: BUSYBOX_ROOTFS, hostTools, node: process.execPath });
    expect(r.stderr).toBe('');
    const res = r.result as Record<string, { stdout: string }> & { pids: number[]; address: { port: number } };
    expect(res.none!.stdout).toMatch(/^1: lo: <LOOPBACK> .*qdisc noop/);
    expect(res.loopback!.stdout).toMatch(/^1: lo: <LOOPBACK,UP,LOWER_UP>/);
    expect(res.listening).toBe('listening');
    expect(res.address.port).toBeGreaterThan(0);
    // The container's own process answered: pid 1 of its namespace, with the port's name.
    expect(res.reply).toBe('8080 from pid 1');
    expect(res.refused).toBe('ECONNREFUSED');
    expect(leftovers(root, [`hako-${r.pid}-`], res.pids, before)).toEqual(NOTHING_LEFT);
  });
});
