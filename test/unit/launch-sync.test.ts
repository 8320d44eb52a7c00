// launch()'s sync state machine, driven by a fake system that plays the child on the sync
// socket: no process is created, no fd touched. Each test scripts what the child sends and
// asserts what the runtime did in answer, in order (GO, id maps, kills, reaps, closes).
import os from 'node:os';
import { describe, it, expect } from 'vitest';
import { launch, describeFailure, type LaunchSys, type LaunchHooks } from '../../src/runtime/launch.js';
import type { SyncMessage } from '../../src/sys/native.js';
import { buildCreatePlan, type BuiltPlan } from '../../src/plan/build.js';
import { MSG, HOOK_POINT } from '../../src/plan/ops.js';
import { defaultSpec } from '../../src/oci/default.js';
import { validateConfig } from '../../src/oci/validate.js';
import { E } from '../../src/sys/errno.js';
import type { HostFacts } from '../../src/host/facts.js';
import type { Config } from '../../src/oci/config.js';

const host: HostFacts = { uid: 1000, gid: 1000, user: 'alice', lastCap: 40, landlockAbi: 7, cgroup2Unified: true };

function plan(rootless: boolean, edit: (c: Config) => void = () => {}): BuiltPlan {
  const c = defaultSpec(rootless);
  c.root = { path: '/nonexistent-rootfs', readonly: true };
  c.process!.terminal = false;
  if (rootless) {
    c.linux!.uidMappings = [{ containerID: 0, hostID: host.uid, size: 1 }];
    c.linux!.gidMappings = [{ containerID: 0, hostID: host.gid, size: 1 }];
  }
  edit(c);
  return buildCreatePlan({ cfg: validateConfig(JSON.parse(JSON.stringify(c))), bundle: '/b', rootless, host, fifoPath: '/s/exec.fifo' });
}

/** As root, joining a pid namespace by path: the child forks, and the grandchild goes on. */
const forkPlan = () =>
  plan(
    false,
    (c) => (c.linux!.namespaces = c.linux!.namespaces!.map((n) => (n.type === 'pid' ? { type: 'pid', path: '/proc/1/ns/pid' } : n))),
  );

// The cast of the fake: our direct child, and after a FORK the grandchild and its pidfd.
const CHILD = { pid: 100, pidfd: 10, fd: 11 };
const GRANDCHILD = { pid: 200, pidfd: 20 };
const NAMES = Object.fromEntries(Object.entries(MSG).map(([k, v]) => [v, k])) as Record<number, string>;

function msg(type: number, o: Partial<SyncMessage> = {}): SyncMessage {
  return { type, step: 0, err: 0, value: 0, fd: -1, sender: CHILD.pid, ...o };
}

/** The child's side of the socket, scripted; every call the runtime makes, logged in order.
 *  When the script runs out the socket reads EOF (the child exited). */
class FakeSys implements LaunchSys {
  readonly log: string[] = [];
  cgroupFd = -2;
  constructor(private readonly script: SyncMessage[]) {}

  loadInit(): void {
    this.log.push('loadInit');
  }
  spawn(
    _plan: Buffer,
    _flags: number,
    _ns: unknown,
    _from: number[],
    _to: number[],
    cgroupFd: number,
  ): { pid: number; pidfd: number; fd: number; cgroupErrno: number } {
    this.cgroupFd = cgroupFd;
    this.log.push('spawn');
    return { pid: CHILD.pid, pidfd: CHILD.pidfd, fd: CHILD.fd, cgroupErrno: 0 };
  }
  recvMsg(fd: number): SyncMessage | null {
    expect(fd).toBe(CHILD.fd);
    const m = this.script.shift() ?? null;
    this.log.push(m ? `recv ${NAMES[m.type]}` : 'recv EOF');
    return m;
  }
  sendMsg(fd: number, type: number): void {
    expect(fd).toBe(CHILD.fd);
    this.log.push(`send ${NAMES[type]}`);
  }
  reapNow(pid: number) {
    this.log.push(`reap ${pid}`);
    return { code: 0 };
  }
  pidfdSignal(pidfd: number, signal: number): number {
    this.log.push(`signal ${signal} via pidfd ${pidfd}`);
    return 0;
  }
  pidOfPidfd(fd: number): number {
    return fd === GRANDCHILD.pidfd ? GRANDCHILD.pid : -1;
  }
  closeFd(fd: number): void {
    this.log.push(`close ${fd}`);
  }
  writeIdMaps(pid: number): void {
    this.log.push(`id maps of ${pid}`);
  }
}

/** Runs launch() against the script; hooks may log into the same log as the fake. */
function run(p: BuiltPlan, script: SyncMessage[], hooks: LaunchHooks | ((log: string[]) => LaunchHooks) = {}) {
  const sys = new FakeSys(script);
  let result: ReturnType<typeof launch> | undefined;
  let error: Error | undefined;
  try {
    result = launch(p, typeof hooks === 'function' ? hooks(sys.log) : hooks, sys);
  } catch (e) {
    error = e as Error;
  }
  return { sys, log: sys.log, result, error };
}

/** What a failed launch does last: kill our child through its pidfd, reap it, close its fds. */
const KILLED_CHILD = [`signal 9 via pidfd ${CHILD.pidfd}`, `reap ${CHILD.pid}`, `close ${CHILD.pidfd}`, `close ${CHILD.fd}`];

describe('launch: the sync state machine', () => {
  it('without a fork: GO, the hooks pause answered with GO, READY returns the child', () => {
    const onHooks: number[] = [];
    const { log, result, error } = run(
      plan(false),
      [msg(MSG.HOOKS, { value: HOOK_POINT.CREATE_RUNTIME }), msg(MSG.HOOKS, { value: HOOK_POINT.CREATE_CONTAINER }), msg(MSG.READY)],
      {
        onHooks: (pid) => onHooks.push(pid),
      },
    );
    expect(error).toBeUndefined();
    expect(result).toEqual({ pid: CHILD.pid, pidfd: CHILD.pidfd, syncFd: CHILD.fd, childPid: CHILD.pid });
    expect(log).toEqual(['loadInit', 'spawn', 'send GO', 'recv HOOKS', 'send GO', 'recv HOOKS', 'send GO', 'recv READY']);
    // The runtime's createRuntime/createContainer hooks run once, at the first pause.
    expect(onHooks).toEqual([CHILD.pid]);
  });

  it('places the child in its cgroup before GO', () => {
    const placed: Array<[number, number]> = [];
    const { sys, log, error } = run(plan(false), [msg(MSG.READY)], (log) => ({
      cgroup: { dir: os.tmpdir(), placed: (pid, errno) => (placed.push([pid, errno]), log.push('placed')) },
    }));
    expect(error).toBeUndefined();
    expect(sys.cgroupFd).toBeGreaterThanOrEqual(0); // a real fd on the directory, for clone3, closed by launch
    expect(placed).toEqual([[CHILD.pid, 0]]);
    expect(log).toEqual(['loadInit', 'spawn', 'placed', 'send GO', 'recv READY']);
  });

  it('after a FORK, READY before PID: returns only once the PID is in, naming the grandchild', () => {
    const p = forkPlan();
    expect(p.steps.some((s) => s.op === 'FORK')).toBe(true);
    const { log, result, error } = run(p, [msg(MSG.READY, { sender: GRANDCHILD.pid }), msg(MSG.PID, { fd: GRANDCHILD.pidfd })]);
    expect(error).toBeUndefined();
    expect(result).toEqual({ pid: GRANDCHILD.pid, pidfd: GRANDCHILD.pidfd, syncFd: CHILD.fd, childPid: CHILD.pid });
    // The intermediate is reaped, and its pidfd closed: the grandchild's is the one kept.
    expect(log).toEqual(['loadInit', 'spawn', 'send GO', 'recv READY', 'recv PID', `reap ${CHILD.pid}`, `close ${CHILD.pidfd}`]);
  });

  it('after a FORK, PID before READY: waits for READY', () => {
    const { log, result, error } = run(forkPlan(), [msg(MSG.PID, { fd: GRANDCHILD.pidfd }), msg(MSG.READY, { sender: GRANDCHILD.pid })]);
    expect(error).toBeUndefined();
    expect(result).toMatchObject({ pid: GRANDCHILD.pid, pidfd: GRANDCHILD.pidfd });
    expect(log).toEqual(['loadInit', 'spawn', 'send GO', 'recv PID', `reap ${CHILD.pid}`, 'recv READY', `close ${CHILD.pidfd}`]);
  });

  it('after a FORK, a seccomp listener fd that comes before the PID is held until the pid is known', () => {
    const got: Array<[number, number]> = [];
    const { log, result, error } = run(
      forkPlan(),
      [
        msg(MSG.SECCOMP_FD, { fd: 30, sender: GRANDCHILD.pid }),
        msg(MSG.PID, { fd: GRANDCHILD.pidfd }),
        msg(MSG.READY, { sender: GRANDCHILD.pid }),
      ],
      (log) => ({ onSeccompFd: (fd, pid) => (got.push([fd, pid]), log.push('listener')) }),
    );
    expect(error).toBeUndefined();
    expect(result?.pid).toBe(GRANDCHILD.pid);
    expect(got).toEqual([[30, GRANDCHILD.pid]]);
    // No GO for the listener until it has gone to the listener, with the grandchild's pid.
    expect(log).toEqual([
      'loadInit',
      'spawn',
      'send GO',
      'recv SECCOMP_FD',
      'recv PID',
      `reap ${CHILD.pid}`,
      'listener',
      'send GO',
      'recv READY',
      `close ${CHILD.pidfd}`,
    ]);
  });

  it('a seccomp listener fd with no one to take it is closed, and the child goes on', () => {
    const { log, error } = run(plan(false), [msg(MSG.SECCOMP_FD, { fd: 30 }), msg(MSG.READY)]);
    expect(error).toBeUndefined();
    expect(log).toEqual(['loadInit', 'spawn', 'send GO', 'recv SECCOMP_FD', 'close 30', 'send GO', 'recv READY']);
  });

  it('an ERROR mid-way: the sentence from describeFailure, the child killed through its pidfd and reaped', () => {
    const p = plan(false);
    const step = p.steps.findIndex((s) => s.op === 'MOUNT');
    const { log, result, error } = run(p, [msg(MSG.HOOKS, { value: HOOK_POINT.CREATE_RUNTIME }), msg(MSG.ERROR, { step, err: E.EPERM })]);
    expect(result).toBeUndefined();
    expect(error?.message).toBe(describeFailure(p, step, E.EPERM));
    expect(error?.message).toBe(`${p.steps[step]!.what} failed: EPERM (step ${step + 1} of ${p.steps.length})`);
    expect(log).toEqual(['loadInit', 'spawn', 'send GO', 'recv HOOKS', 'send GO', 'recv ERROR', ...KILLED_CHILD]);
  });

  it('an ERROR after a FORK kills the grandchild and the child, each through its pidfd', () => {
    const p = forkPlan();
    const step = p.steps.length - 1;
    const { log, error } = run(p, [
      msg(MSG.PID, { fd: GRANDCHILD.pidfd }),
      msg(MSG.ERROR, { step, err: E.ENOENT, sender: GRANDCHILD.pid, fd: 31 }),
    ]);
    expect(error?.message).toBe(describeFailure(p, step, E.ENOENT));
    expect(log).toEqual([
      'loadInit',
      'spawn',
      'send GO',
      'recv PID',
      `reap ${CHILD.pid}`,
      'recv ERROR',
      'close 31', // an fd riding on the error is not kept either
      `signal 9 via pidfd ${GRANDCHILD.pidfd}`,
      `reap ${GRANDCHILD.pid}`,
      `signal 9 via pidfd ${CHILD.pidfd}`,
      `reap ${CHILD.pid}`,
      `close ${GRANDCHILD.pidfd}`,
      `close ${CHILD.pidfd}`,
      `close ${CHILD.fd}`,
    ]);
  });

  it('refuses a PID from anyone but our own child, and closes the fd it carried', () => {
    const { log, error } = run(forkPlan(), [
      msg(MSG.READY, { sender: GRANDCHILD.pid }),
      msg(MSG.PID, { fd: GRANDCHILD.pidfd, sender: GRANDCHILD.pid }),
    ]);
    expect(error?.message).toMatch(/sent a message it may not send \(a pid not from the runtime's own child\)/);
    expect(log).toEqual(['loadInit', 'spawn', 'send GO', 'recv READY', 'recv PID', `close ${GRANDCHILD.pidfd}`, ...KILLED_CHILD]);
  });

  it('refuses a PID when the plan has no FORK, and a PID without a pidfd', () => {
    const a = run(plan(false), [msg(MSG.PID, { fd: GRANDCHILD.pidfd })]);
    expect(a.error?.message).toMatch(/may not send/);
    expect(a.log).toEqual(['loadInit', 'spawn', 'send GO', 'recv PID', `close ${GRANDCHILD.pidfd}`, ...KILLED_CHILD]);
    // A bare number is never trusted: only a pidfd names the process.
    const b = run(forkPlan(), [msg(MSG.PID, { value: GRANDCHILD.pid })]);
    expect(b.error?.message).toMatch(/may not send/);
    expect(b.log).toEqual(['loadInit', 'spawn', 'send GO', 'recv PID', ...KILLED_CHILD]);
  });

  it('a PID whose pidfd names no process (the grandchild died): our child is killed and reaped, never "pid -1"', () => {
    // waitpid(-1) would reap any child of this process: another container's init, in a harness or `hako up`.
    const { log, error } = run(forkPlan(), [msg(MSG.PID, { fd: 21 })]);
    expect(error?.message).toBe('the forked container process exited during setup');
    expect(log).toEqual(['loadInit', 'spawn', 'send GO', 'recv PID', 'close 21', ...KILLED_CHILD]);
  });

  it('closes and refuses an fd riding on a message that carries none', () => {
    for (const type of [MSG.HOOKS, MSG.READY, MSG.GO, MSG.MAPS_PLEASE]) {
      const { log, error } = run(plan(false), [msg(type, { fd: 40 })]);
      expect(error?.message).toBe('the container process sent an fd with a message that carries none');
      expect(log).toEqual(['loadInit', 'spawn', 'send GO', `recv ${NAMES[type]}`, 'close 40', ...KILLED_CHILD]);
    }
  });

  it('EOF during setup: the child exited without saying why', () => {
    const a = run(plan(false), [msg(MSG.HOOKS, { value: HOOK_POINT.CREATE_RUNTIME })]);
    expect(a.error?.message).toBe('the container process exited during setup without saying why');
    expect(a.log).toEqual(['loadInit', 'spawn', 'send GO', 'recv HOOKS', 'send GO', 'recv EOF', ...KILLED_CHILD]);
    // After a FORK, READY alone is not enough: EOF before the PID fails too.
    const b = run(forkPlan(), [msg(MSG.READY, { sender: GRANDCHILD.pid })]);
    expect(b.error?.message).toBe('the container process exited during setup without saying why');
    expect(b.log).toEqual(['loadInit', 'spawn', 'send GO', 'recv READY', 'recv EOF', ...KILLED_CHILD]);
  });

  it('rootless: writes the id maps only after the child asks (MAPS_PLEASE), then GO', () => {
    const p = plan(true);
    expect(p.dumpableWhileMapped).toBe(true);
    const { log, result, error } = run(p, [msg(MSG.MAPS_PLEASE), msg(MSG.READY)]);
    expect(error).toBeUndefined();
    expect(result?.pid).toBe(CHILD.pid);
    expect(log).toEqual(['loadInit', 'spawn', 'recv MAPS_PLEASE', `id maps of ${CHILD.pid}`, 'send GO', 'recv READY']);
  });

  it('as root the id maps (if any) are written without waiting for MAPS_PLEASE', () => {
    const p = plan(false, (c) => {
      c.linux!.namespaces!.push({ type: 'user' });
      c.linux!.uidMappings = [{ containerID: 0, hostID: 0, size: 65536 }];
      c.linux!.gidMappings = [{ containerID: 0, hostID: 0, size: 65536 }];
    });
    expect(p.idmap).not.toBeNull();
    expect(p.dumpableWhileMapped).toBe(false);
    const { log, error } = run(p, [msg(MSG.READY)]);
    expect(error).toBeUndefined();
    expect(log).toEqual(['loadInit', 'spawn', `id maps of ${CHILD.pid}`, 'send GO', 'recv READY']);
  });

  it('rootless: no id maps are written for anything but MAPS_PLEASE from our own child', () => {
    const p = plan(true);
    const early = run(p, [msg(MSG.READY)]);
    expect(early.error?.message).toBe('the container process exited before its id maps were written');
    expect(early.log).toEqual(['loadInit', 'spawn', 'recv READY', ...KILLED_CHILD]);

    const eof = run(p, []);
    expect(eof.error?.message).toBe('the container process exited before its id maps were written');
    expect(eof.log).toEqual(['loadInit', 'spawn', 'recv EOF', ...KILLED_CHILD]);

    const failed = run(p, [msg(MSG.ERROR, { err: E.EPERM })]);
    expect(failed.error?.message).toBe('preparing the container process failed: EPERM');
    expect(failed.log).toEqual(['loadInit', 'spawn', 'recv ERROR', ...KILLED_CHILD]);

    const stranger = run(p, [msg(MSG.MAPS_PLEASE, { sender: 4242, fd: 41 })]);
    expect(stranger.error?.message).toBe('the container process exited before its id maps were written');
    expect(stranger.log).toEqual(['loadInit', 'spawn', 'recv MAPS_PLEASE', 'close 41', ...KILLED_CHILD]);
  });
});
