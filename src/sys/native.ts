// The C core's N-API addon, typed.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface SyncMessage {
  type: number;
  step: number;
  err: number;
  value: number;
  /** An fd that rode along (SCM_RIGHTS), or -1. */
  fd: number;
  /** The sender's pid as the kernel saw it (SCM_CREDENTIALS), in our pid namespace. */
  sender: number;
}

export interface ExitStatus {
  code?: number;
  signal?: number;
  error?: number;
}

export interface Native {
  /** cgroupFd: a cgroup v2 directory to start the child in (clone3 CLONE_INTO_CGROUP), or -1.
   *  cgroupErrno: 0 when the child was born there, else why clone3 could not (-1: no fd). */
  /** Copies hako-init into the sealed memfd every spawned child executes (once per process). */
  loadInit(path: string): void;
  /** A child that runs the plan in hako-init. pidfd: the child's, from clone (CLONE_PIDFD). */
  spawn(
    plan: Buffer,
    cloneFlags: number,
    parentNamespaces: Array<{ path: string; type: 'pid' | 'time' }>,
    fdFrom: number[],
    fdTo: number[],
    cgroupFd: number,
    childFlags: number,
  ): { pid: number; pidfd: number; fd: number; cgroupErrno: number };
  sendMsg(fd: number, type: number, value: number): void;
  recvMsg(fd: number, timeoutMs: number): SyncMessage | null;
  waitPid(pid: number): Promise<ExitStatus>;
  reapNow(pid: number): ExitStatus | null;
  setSubreaper(): void;
  mkfifo(path: string, mode: number): void;
  sendFdTo(socketPath: string, fd: number, data: string): void;
  listenUnix(path: string): number;
  recvFd(listenFd: number, timeoutMs: number): Promise<{ fd: number; data: string }>;
  flock(fd: number, op: number): void;
  setWinsize(fd: number, rows: number, cols: number): void;
  landlockAbi(): number;
  /** umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW): 0 or the errno. */
  detachMount(path: string): number;
  /** The id of the mount path is on (statx STATX_MNT_ID), or -1. */
  mountId(path: string): number;
  /** A close-on-exec pidfd on pid; throws (errno ESRCH) when there is no such process. */
  pidfdOpen(pid: number): number;
  /** pidfd_send_signal: 0, or the errno (ESRCH once the process has exited). */
  pidfdSignal(pidfd: number, signal: number): number;
  /** close(2), for the addon's own fds in a worker thread. */
  closeFd(fd: number): void;
  /** poll(POLLIN) on several fds: each one's revents, or null on timeout. */
  pollIn(fds: number[], timeoutMs: number): number[] | null;
  /** Accept one connection on a listening unix socket and take the fd it carries. */
  acceptFd(listenFd: number): { fd: number; data: string };
  /** SECCOMP_IOCTL_NOTIF_RECV: the call's number and registers, or null when its caller died first. */
  notifRecv(fd: number): SeccompNotification | null;
  /** SECCOMP_IOCTL_NOTIF_SEND: refuse with errno, or let the call run (cont); false when the caller is gone. */
  notifRespond(fd: number, id: bigint, errno: number, cont: boolean): boolean;

  // The planner's link to the front (native/planner_link.cc, native/front/protocol.h).
  /** Binds and listens on the planner's SOCK_SEQPACKET socket (mode 0600), replacing a stale one: call it under the planner lock. */
  plannerListen(path: string): number;
  /** shutdown(2) of the listening socket: every acceptCall blocked on it returns null. 0 or the errno. */
  plannerShutdown(listenFd: number): number;
  /** Blocks this thread until a front of our own uid sends a whole request; null once the socket is shut down. */
  acceptCall(listenFd: number): PlannerCall | null;
  /** Tells the front to run today's path itself (only before any spawn). */
  callFallback(conn: number): void;
  /** TAKEN: the planner acts on the call; the front will not run it again on today's path. */
  callTaken(conn: number): void;
  /** Tells the front to exit with code. */
  callExit(conn: number, code: number): void;
  /** spawn(), with the front cloning the child: the container is the caller's descendant. */
  spawnVia(
    conn: number,
    plan: Buffer,
    cloneFlags: number,
    parentNamespaces: Array<{ path: string; type: 'pid' | 'time' }>,
    fdFrom: number[],
    fdTo: number[],
    cgroupFd: number,
    childFlags: number,
  ): { pid: number; pidfd: number; fd: number; cgroupErrno: number };
  /** reapNow() in the front. */
  reapVia(conn: number, pid: number): ExitStatus | null;
  /** waitPid() in the front, which forwards the signals it gets to pid meanwhile. */
  waitVia(conn: number, pid: number): Promise<ExitStatus>;
  /** setSubreaper() in the front. */
  subreaperVia(conn: number): void;
}

/** One call a front made to the planner: what it sent, and the fds it brought (ours to close). */
export interface PlannerCall {
  conn: number;
  pid: number;
  uid: number;
  umask: number;
  argv: string[];
  env: string[];
  /** O_PATH of the caller's working directory. */
  cwdFd: number;
  /** The caller's 0, 1, 2. */
  stdio: [number, number, number];
}

/** One intercepted system call, as the kernel reports it: registers only, never the caller's memory. */
export interface SeccompNotification {
  id: bigint;
  pid: number;
  nr: number;
  /** AUDIT_ARCH_* of the call. */
  arch: number;
  args: bigint[];
}

const require = createRequire(import.meta.url);
export const native: Native = require('../../build/Release/hako_native.node');

/** The static program every container process runs before its own (native/init.c). */
export const INIT_PATH = fileURLToPath(new URL('../../build/Release/hako-init', import.meta.url));

/** spawn()'s childFlags (native/child.h). */
export const CHILD = { DUMPABLE_WHILE_WAITING: 1, BECOME_ROOT: 2 } as const;

export const LOCK_EX = 2;
export const LOCK_UN = 8;
