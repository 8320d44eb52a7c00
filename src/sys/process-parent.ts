// The "process parent": who clones, reaps and waits for a container's processes.
// By default this process (the addon). In a planner call (src/planner/) it is
// the front, the caller's own process: the container stays the caller's
// descendant, as containerd's shim and conmon (subreapers) rely on.
import { native, type ExitStatus, type Native } from './native.js';

export interface ProcessParent {
  spawn: Native['spawn'];
  reapNow(pid: number): ExitStatus | null;
  waitPid(pid: number): Promise<ExitStatus>;
  setSubreaper(): void;
}

const ownProcess: ProcessParent = {
  spawn: (...a) => native.spawn(...a),
  reapNow: (pid) => native.reapNow(pid),
  waitPid: (pid) => native.waitPid(pid),
  setSubreaper: () => native.setSubreaper(),
};

const errnoOf = (e: unknown) => Number((e as { errno?: number }).errno) || 5; // EIO

/** The front connected on conn does the process work of this call. A front that is gone has
 *  killed and reaped what it started (native/front/protocol.h): reaping and waiting then say
 *  so as an error status, so the verb's own cleanup (state dir, cgroup) still runs. */
export function frontParent(conn: number): ProcessParent {
  return {
    spawn: (...a) => native.spawnVia(conn, ...a),
    reapNow: (pid) => {
      try {
        return native.reapVia(conn, pid);
      } catch (e) {
        return { error: errnoOf(e) };
      }
    },
    waitPid: (pid) => native.waitVia(conn, pid).catch((e: unknown) => ({ error: errnoOf(e) })),
    setSubreaper: () => native.subreaperVia(conn),
  };
}

// One call at a time per thread (a planner worker serves one call): module state is per thread.
let current: ProcessParent = ownProcess;

export function processParent(): ProcessParent {
  return current;
}

/** Sets the parent for the calls to come; undefined: this process again. */
export function useProcessParent(p: ProcessParent | undefined): void {
  current = p ?? ownProcess;
}
