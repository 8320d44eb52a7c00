// Starts a launch plan in a new child and walks it through setup over the
// sync socket: id maps and cgroup before the go-ahead, hooks when it pauses,
// a failed step turned into one sentence. Anything that goes wrong kills the
// child: nothing is left running.
import fs from 'node:fs';
import { encodeSteps } from '../plan/encode.js';
import { MSG, HOOK_POINT } from '../plan/ops.js';
import type { BuiltPlan } from '../plan/build.js';
import { HakoError } from '../errors.js';
import { native, INIT_PATH, CHILD, type Native } from '../sys/native.js';
import { CLONE } from '../plan/namespaces.js';
import { errnoName, E } from '../sys/errno.js';
import { sleepMs } from '../sys/proc.js';
import { processParent } from '../sys/process-parent.js';
import { callerProc } from '../sys/caller.js';
import { writeIdMaps } from './idmap-writer.js';
import type { IdMapPlan } from '../plan/idmap.js';

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
  /** A pidfd on it: from clone, or sent by our direct child with the fork's pid; signal through this. */
  pidfd: number;
  /** The sync socket, still open: it reports an exec failure, and EOF when exec succeeded. */
  syncFd: number;
  /** The pid of our direct child (differs from pid after a fork, and is reaped then). */
  childPid: number;
}

const SETUP_TIMEOUT_MS = 60_000;

/** Kills a process we gave up on through its pidfd, and reaps it when it is ours to reap. */
export function killAndReap(
  pid: number,
  pidfd: number,
  sys: Pick<Native, 'pidfdSignal' | 'reapNow'> = {
    pidfdSignal: (fd, s) => native.pidfdSignal(fd, s),
    reapNow: (p) => processParent().reapNow(p),
  },
): void {
  sys.pidfdSignal(pidfd, 9);
  for (let i = 0; i < 500 && !sys.reapNow(pid); i++) sleepMs(2);
}

let initLoaded = false;
function loadInit(): void {
  if (initLoaded) return;
  try {
    native.loadInit(INIT_PATH);
  } catch (e) {
    throw new HakoError(
      `cannot load hako-init (${INIT_PATH}), which every container process runs first: ${(e as Error).message}; run \`npm run build\``,
    );
  }
  initLoaded = true;
}

/** The pid a pidfd names, in our pid namespace (/proc/self/fdinfo). */
function pidOfPidfd(fd: number): number {
  const m = /^Pid:\s*(-?\d+)$/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  return m ? Number(m[1]) : -1;
}

/** The runtime's own hard limit for an RLIMIT_* resource number, from /proc/self/limits. */
function hardLimit(resource: number): string | null {
  const label = ({ 6: 'Max processes', 7: 'Max open files', 8: 'Max locked memory' } as Record<number, string>)[resource];
  if (!label) return null;
  try {
    const line = fs
      .readFileSync(`${callerProc()}/limits`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith(label));
    return line ? (line.slice(label.length).trim().split(/\s+/)[1] ?? null) : null;
  } catch {
    return null;
  }
}

export function describeFailure(plan: BuiltPlan, step: number, err: number): string {
  const s = plan.steps[step];
  if (!s) return `container setup failed: ${errnoName(err)}`;
  if (s.op === 'FIND_EXEC' && (err === E.ENOENT || err === E.ENOTDIR)) {
    const name = String(plan.steps.find((x) => x.op === 'EXEC')?.args[1] ?? s.args[0]);
    return `exec: "${name}": executable file not found in $PATH`;
  }
  if ((s.op === 'MKDIR_IN_ROOT' || s.op === 'MKFILE_IN_ROOT') && err === E.ENOLINK)
    return `${s.what} failed: a path component is a symlink whose target is not inside the rootfs (step ${step + 1} of ${plan.steps.length})`;
  const at = `(step ${step + 1} of ${plan.steps.length})`;
  if (s.op === 'MOUNT' && err === E.ELOOP)
    return `${s.what} failed: the mount point ${s.args[1]} is a symlink in the rootfs, or leads back to the rootfs itself: hako refuses to follow it there ${at}`;
  if (s.op === 'MASK_PATH' && err === E.ENXIO)
    return `${s.what} failed: /dev/null in the container is not the null device (1:3), or is a symlink: hako masks only with the real one ${at}`;
  if (s.op === 'MKNOD_IN_ROOT' && err === E.EEXIST)
    return `${s.what} failed: the rootfs already has something else there (a symlink, a file or another device) ${at}`;
  if (s.op === 'CHDIR' && (err === E.ENOENT || err === E.ELOOP || err === E.EXDEV))
    return `${s.what} failed: it does not exist inside the container, or leads outside it (${errnoName(err)}) ${at}`;
  if (s.op === 'RUN_HOOK')
    return `${s.what} failed: ${err === E.ETIME ? `timed out after ${s.args[0]} s` : err === E.ENOENT ? 'not found in the container' : err === E.ECHILD ? 'non-zero exit status' : errnoName(err)}`;
  if (s.op === 'RLIMIT' && err === E.EPERM) {
    // Raising a hard limit needs CAP_SYS_RESOURCE (Podman asks nofile 1048576 by default).
    const hard = hardLimit(Number(s.args[0]));
    return (
      `${s.what} to ${s.args[1]}:${s.args[2]} failed: EPERM: a hard limit can only be raised with CAP_SYS_RESOURCE` +
      `${hard ? `, and it is ${hard} here` : ''}; ask for no more (Podman: default_ulimits in containers.conf, or --ulimit) (step ${step + 1} of ${plan.steps.length})`
    );
  }
  if (s.op === 'OOM_SCORE_ADJ' && (err === E.EACCES || err === E.EPERM))
    // Lowering it below the current value needs CAP_SYS_RESOURCE (kubelet asks -998 for a pod's sandbox).
    return `${s.what} failed: ${errnoName(err)}: lowering oom_score_adj needs CAP_SYS_RESOURCE, which this process does not have in its namespace; ask for ${currentOomScoreAdj()} or more (containerd's CRI: restrict_oom_score_adj = true) ${at}`;
  if (s.op === 'JOIN_SESSION_KEYRING')
    return `${s.what} failed: ${errnoName(err)}: the kernel refused the container a session keyring of its own (create and run take --no-new-keyring to keep the caller's, as runc's do) ${at}`;
  if (s.op === 'PARENT_DEATH_SIGNAL' && err === E.EPERM)
    return `${s.what} failed: EPERM: without no_new_privs the seccomp filter is loaded before this step, and it refuses prctl or ppoll ${at}`;
  if (s.op === 'CHECK_PRELOAD')
    return `${s.what} failed: ${errnoName(err)}: the dynamic loader would skip it without a word and the run.hako.shim.* limits would not hold (a Landlock rule, a seccomp filter or the process's user may keep it from reading ${s.args[0]} or mapping ${s.args[1]}) ${at}`;
  if (s.op === 'MKFILE_IN_ROOT' && s.args[0] === '/etc/ld.so.preload')
    return `${s.what} failed: ${errnoName(err)}: the preload shim is bound over /etc/ld.so.preload, and this rootfs has none that hako may create: add an empty /etc/ld.so.preload to it ${at}`;
  if (s.op === 'EXEC') {
    const what = err === E.ENOENT ? 'no such file or directory' : err === E.EACCES ? 'permission denied' : errnoName(err);
    return `exec ${s.args[1]} failed: ${what}`;
  }
  return `${s.what} failed: ${errnoName(err)} (step ${step + 1} of ${plan.steps.length})`;
}

/** This process's oom_score_adj: the least a container may ask without CAP_SYS_RESOURCE. */
function currentOomScoreAdj(): string {
  try {
    return fs.readFileSync(`${callerProc()}/oom_score_adj`, 'utf8').trim();
  } catch {
    return 'the runtime’s own value';
  }
}

/** A failed step as an error: describeFailure's sentence, and the step, errno and path a
 *  library caller can branch on. */
export function stepFailure(plan: BuiltPlan, step: number, err: number): HakoError {
  const s = plan.steps[step];
  const path =
    s?.op === 'FIND_EXEC'
      ? String(plan.steps.find((x) => x.op === 'EXEC')?.args[1] ?? s.args[0])
      : s?.op === 'EXEC' || s?.op === 'MOUNT'
        ? String(s.args[1])
        : s && typeof s.args[0] === 'string'
          ? s.args[0]
          : undefined;
  return new HakoError(describeFailure(plan, step, err), 1, { step: s?.what ?? 'container setup', errno: errnoName(err), path });
}

/** An fd on the cgroup directory for clone3, or -1 (then the child is moved after clone). */
function openCgroupDir(dir: string): number {
  try {
    return fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  } catch {
    return -1;
  }
}

function childFlags(plan: BuiltPlan): number {
  return (plan.dumpableWhileMapped ? CHILD.DUMPABLE_WHILE_WAITING : 0) | (plan.cloneFlags & CLONE.NEWUSER ? CHILD.BECOME_ROOT : 0);
}

/** What launch() asks of the system: the native calls it drives the child with, and the fd
 *  and /proc operations around them. The default is the real thing; a unit test passes a fake
 *  that plays the child over the sync socket (test/unit/launch-sync.test.ts). */
export interface LaunchSys extends Pick<Native, 'spawn' | 'sendMsg' | 'recvMsg' | 'reapNow' | 'pidfdSignal'> {
  /** Loads hako-init (once per process). */
  loadInit(): void;
  /** The pid a pidfd names, in our pid namespace. */
  pidOfPidfd(fd: number): number;
  closeFd(fd: number): void;
  writeIdMaps(pid: number, idmap: IdMapPlan): void;
}

const system: LaunchSys = {
  spawn: (...a) => processParent().spawn(...a),
  sendMsg: (...a) => native.sendMsg(...a),
  recvMsg: (...a) => native.recvMsg(...a),
  reapNow: (pid) => processParent().reapNow(pid),
  pidfdSignal: (pidfd, signal) => native.pidfdSignal(pidfd, signal),
  loadInit,
  pidOfPidfd,
  closeFd,
  writeIdMaps,
};

export function launch(plan: BuiltPlan, hooks: LaunchHooks = {}, sys: LaunchSys = system): Launched {
  const buf = encodeSteps(plan.steps);
  sys.loadInit();
  let child: { pid: number; pidfd: number; fd: number; cgroupErrno: number };
  const cgroupFd = hooks.cgroup ? openCgroupDir(hooks.cgroup.dir) : -1;
  try {
    child = sys.spawn(
      buf,
      plan.cloneFlags,
      plan.parentNamespaces.map((path, i) => ({ path, type: plan.parentNamespaceTypes[i]! })),
      plan.fds.map((f) => f.from),
      plan.fds.map((f) => f.to),
      cgroupFd,
      childFlags(plan),
    );
  } catch (e) {
    throw new HakoError(`creating the container process failed: ${(e as Error).message}`);
  } finally {
    if (cgroupFd >= 0) closeFd(cgroupFd);
  }
  let pid = child.pid;
  let pidfd = child.pidfd;
  // After a FORK step the intermediate (PID) and the grandchild (READY) write to
  // the same socket: READY can arrive first. Return only once both are in, or
  // the pid file would name the intermediate (which exits 0 at once).
  let awaitingPid = plan.steps.some((s) => s.op === 'FORK');
  let ready = false;
  // The listener fd can come from the grandchild before the intermediate names it:
  // hold it until the pid is known (the grandchild waits for GO meanwhile).
  let pendingSeccompFd = -1;
  const done = (): Launched => {
    if (pidfd !== child.pidfd) sys.closeFd(child.pidfd);
    return { pid, pidfd, syncFd: child.fd, childPid: child.pid };
  };
  try {
    if (plan.dumpableWhileMapped) {
      // The child opens /proc/PID to us only once it is dumpable: it says when.
      const m = sys.recvMsg(child.fd, SETUP_TIMEOUT_MS);
      if (!m || m.type !== MSG.MAPS_PLEASE || m.sender !== child.pid) {
        if (m && m.fd >= 0) sys.closeFd(m.fd);
        throw new HakoError(
          m?.type === MSG.ERROR
            ? `preparing the container process failed: ${errnoName(m.err)}`
            : 'the container process exited before its id maps were written',
        );
      }
    }
    if (plan.idmap) sys.writeIdMaps(child.pid, plan.idmap);
    hooks.cgroup?.placed(child.pid, child.cgroupErrno);
    sys.sendMsg(child.fd, MSG.GO, 0);
    for (;;) {
      const m = sys.recvMsg(child.fd, SETUP_TIMEOUT_MS);
      if (!m) throw new HakoError('the container process exited during setup without saying why');
      if (m.type === MSG.ERROR) {
        if (m.fd >= 0) sys.closeFd(m.fd);
        throw stepFailure(plan, m.step, m.err);
      }
      if (m.type === MSG.PID) {
        // Only our direct child may name the process that goes on, and only as a
        // pidfd: a pid number from the socket is never trusted (the kernel's
        // SCM_CREDENTIALS says who sent it; the pidfd says whom it names).
        if (!awaitingPid || m.sender !== child.pid || m.fd < 0) {
          if (m.fd >= 0) sys.closeFd(m.fd);
          throw new HakoError("the container process sent a message it may not send (a pid not from the runtime's own child)");
        }
        const named = sys.pidOfPidfd(m.fd);
        if (named <= 0) {
          // Gone already (-1): keep pid and pidfd our child's, so the failure path kills and
          // reaps that, never waitpid(-1), which would reap any child of this process.
          sys.closeFd(m.fd);
          throw new HakoError('the forked container process exited during setup');
        }
        pidfd = m.fd;
        pid = named;
        // The intermediate leaves at once; reaping it hands the grandchild to
        // the nearest subreaper.
        for (let i = 0; i < 500 && !sys.reapNow(child.pid); i++) sleepMs(1);
        awaitingPid = false;
        if (pendingSeccompFd >= 0) {
          const fd = pendingSeccompFd;
          pendingSeccompFd = -1;
          hooks.onSeccompFd?.(fd, pid);
          sys.sendMsg(child.fd, MSG.GO, 0);
        }
        if (ready) return done();
      } else if (m.fd >= 0 && m.type !== MSG.SECCOMP_FD) {
        sys.closeFd(m.fd);
        throw new HakoError('the container process sent an fd with a message that carries none');
      } else if (m.type === MSG.HOOKS) {
        if (m.value === HOOK_POINT.CREATE_RUNTIME) hooks.onHooks?.(pid);
        sys.sendMsg(child.fd, MSG.GO, 0);
      } else if (m.type === MSG.SECCOMP_FD) {
        if (awaitingPid) {
          pendingSeccompFd = m.fd;
          continue;
        }
        if (hooks.onSeccompFd) hooks.onSeccompFd(m.fd, pid);
        else sys.closeFd(m.fd);
        sys.sendMsg(child.fd, MSG.GO, 0);
      } else if (m.type === MSG.READY) {
        ready = true;
        if (!awaitingPid) return done();
      }
    }
  } catch (e) {
    if (pendingSeccompFd >= 0) sys.closeFd(pendingSeccompFd);
    killAndReap(pid, pidfd, sys);
    if (pidfd !== child.pidfd) {
      killAndReap(child.pid, child.pidfd, sys);
      sys.closeFd(pidfd);
    }
    sys.closeFd(child.pidfd);
    sys.closeFd(child.fd);
    throw e;
  }
}

export function closeFd(fd: number): void {
  // close(2) itself: in a worker thread (the planner's) node's fs warns about an fd it did not open.
  native.closeFd(fd);
}
