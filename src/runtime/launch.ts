// Starts a launch plan in a new child and walks it through setup over the
// sync socket: id maps and cgroup before the go-ahead, hooks when it pauses,
// a failed step turned into one sentence. Anything that goes wrong kills the
// child: nothing is left running.
import fs from 'node:fs';
import { encodeSteps } from '../plan/encode.js';
import { MSG, HOOK_POINT } from '../plan/ops.js';
import type { BuiltPlan } from '../plan/build.js';
import { HakoError } from '../errors.js';
import { native } from './native.js';
import { errnoName } from './errno.js';
import { writeIdMaps } from './idmap-writer.js';

export interface LaunchHooks {
  /** The cgroup the child belongs in: it is born there when the kernel allows
   *  (cgroup v2, clone3). placed() is called once the child exists and waits:
   *  with cloneErrno 0 it is in already; otherwise (clone3's errno, or -1 when
   *  the directory could not be opened) placed() must move it. */
  cgroup?: { dir: string; placed: (pid: number, cloneErrno: number) => void };
  /** The child paused for createRuntime/createContainer hooks. */
  onHooks?: (pid: number) => void;
  /** A seccomp listener fd arrived from the child. */
  onSeccompFd?: (fd: number, pid: number) => void;
}

export interface Launched {
  /** The process that goes on to exec (after a fork, the grandchild). */
  pid: number;
  /** The sync socket, still open: it reports an exec failure, and EOF when exec succeeded. */
  syncFd: number;
  /** The pid of our direct child (differs from pid after a fork, and is reaped then). */
  childPid: number;
}

const SETUP_TIMEOUT_MS = 60_000;
const ENOLINK = 67;

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Kills and reaps a child we gave up on. */
export function killAndReap(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
  for (let i = 0; i < 500 && !native.reapNow(pid); i++) sleep(2);
}

/** The runtime's own hard limit for an RLIMIT_* resource number, from /proc/self/limits. */
function hardLimit(resource: number): string | null {
  const label = ({ 6: 'Max processes', 7: 'Max open files', 8: 'Max locked memory' } as Record<number, string>)[resource];
  if (!label) return null;
  try {
    const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith(label));
    return line ? line.slice(label.length).trim().split(/\s+/)[1] ?? null : null;
  } catch {
    return null;
  }
}

export function describeFailure(plan: BuiltPlan, step: number, err: number): string {
  const s = plan.steps[step];
  if (!s) return `container setup failed: ${errnoName(err)}`;
  if (s.op === 'FIND_EXEC' && (err === 2 || err === 20)) {
    const name = String(plan.steps.find((x) => x.op === 'EXEC')?.args[1] ?? s.args[0]);
    return `exec: "${name}": executable file not found in $PATH`;
  }
  if ((s.op === 'MKDIR_IN_ROOT' || s.op === 'MKFILE_IN_ROOT') && err === ENOLINK)
    return `${s.what} failed: a path component is a symlink whose target is not inside the rootfs (step ${step + 1} of ${plan.steps.length})`;
  if (s.op === 'RUN_HOOK')
    return `${s.what} failed: ${err === 62 ? `timed out after ${s.args[0]} s` : err === 2 ? 'not found in the container' : 'non-zero exit status'}`;
  if (s.op === 'RLIMIT' && err === 1) {
    // Raising a hard limit needs CAP_SYS_RESOURCE (Podman asks nofile 1048576 by default).
    const hard = hardLimit(Number(s.args[0]));
    return `${s.what} to ${s.args[1]}:${s.args[2]} failed: EPERM: a hard limit can only be raised with CAP_SYS_RESOURCE` +
      `${hard ? `, and it is ${hard} here` : ''}; ask for no more (Podman: default_ulimits in containers.conf, or --ulimit) (step ${step + 1} of ${plan.steps.length})`;
  }
  if (s.op === 'EXEC') {
    const what = err === 2 ? 'no such file or directory' : err === 13 ? 'permission denied' : errnoName(err);
    return `exec ${s.args[1]} failed: ${what}`;
  }
  return `${s.what} failed: ${errnoName(err)} (step ${step + 1} of ${plan.steps.length})`;
}

/** An fd on the cgroup directory for clone3, or -1 (then the child is moved after clone). */
function openCgroupDir(dir: string): number {
  try {
    return fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  } catch {
    return -1;
  }
}

export function launch(plan: BuiltPlan, hooks: LaunchHooks = {}): Launched {
  const buf = encodeSteps(plan.steps);
  let child: { pid: number; fd: number; cgroupErrno: number };
  const cgroupFd = hooks.cgroup ? openCgroupDir(hooks.cgroup.dir) : -1;
  try {
    child = native.spawn(buf, plan.cloneFlags, plan.parentNamespaces, plan.fds.map((f) => f.from), plan.fds.map((f) => f.to), cgroupFd);
  } catch (e) {
    throw new HakoError(`creating the container process failed: ${(e as Error).message}`);
  } finally {
    if (cgroupFd >= 0) closeFd(cgroupFd);
  }
  let pid = child.pid;
  // After a FORK step the intermediate (PID) and the grandchild (READY) write to
  // the same socket: READY can arrive first. Return only once both are in, or
  // the pid file would name the intermediate (which exits 0 at once).
  let awaitingPid = plan.steps.some((s) => s.op === 'FORK');
  let ready = false;
  // The listener fd can come from the grandchild before the intermediate names it:
  // hold it until the pid is known (the grandchild waits for GO meanwhile).
  let pendingSeccompFd = -1;
  try {
    if (plan.idmap) writeIdMaps(child.pid, plan.idmap);
    hooks.cgroup?.placed(child.pid, child.cgroupErrno);
    native.sendMsg(child.fd, MSG.GO, 0);
    for (;;) {
      const m = native.recvMsg(child.fd, SETUP_TIMEOUT_MS);
      if (!m) throw new HakoError('the container process exited during setup without saying why');
      if (m.type === MSG.ERROR) throw new HakoError(describeFailure(plan, m.step, m.err));
      if (m.type === MSG.PID) {
        pid = m.value;
        // The intermediate leaves at once; reaping it hands the grandchild to
        // the nearest subreaper.
        for (let i = 0; i < 500 && !native.reapNow(child.pid); i++) sleep(1);
        awaitingPid = false;
        if (pendingSeccompFd >= 0) {
          const fd = pendingSeccompFd;
          pendingSeccompFd = -1;
          hooks.onSeccompFd?.(fd, pid);
          native.sendMsg(child.fd, MSG.GO, 0);
        }
        if (ready) return { pid, syncFd: child.fd, childPid: child.pid };
      } else if (m.type === MSG.HOOKS) {
        if (m.value === HOOK_POINT.CREATE_RUNTIME) hooks.onHooks?.(pid);
        native.sendMsg(child.fd, MSG.GO, 0);
      } else if (m.type === MSG.SECCOMP_FD) {
        if (awaitingPid) {
          pendingSeccompFd = m.fd;
          continue;
        }
        if (hooks.onSeccompFd) hooks.onSeccompFd(m.fd, pid);
        else closeFd(m.fd);
        native.sendMsg(child.fd, MSG.GO, 0);
      } else if (m.type === MSG.READY) {
        ready = true;
        if (!awaitingPid) return { pid, syncFd: child.fd, childPid: child.pid };
      }
    }
  } catch (e) {
    if (pendingSeccompFd >= 0) closeFd(pendingSeccompFd);
    killAndReap(pid);
    if (pid !== child.pid) killAndReap(child.pid);
    closeFd(child.fd);
    throw e;
  }
}

export function closeFd(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // already closed
  }
}
