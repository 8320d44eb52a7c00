// The process-exit guard: whatever containers the test process still has when it exits (a
// test that threw past its cleanup, process.exit(), SIGINT or SIGTERM) are killed, reaped and
// removed synchronously on the way out. Against SIGKILL nothing runs in this process: the
// containers die with it (their init has PR_SET_PDEATHSIG) and their state dirs are swept by
// the next Hako on the same root (sweepStale), found by the annotation naming their creator.
import { native } from '../sys/native.js';
import { procStat, sleepMs } from '../sys/proc.js';
import { deleteContainer, Container, type RuntimeContext } from '../runtime/index.js';
import { reapNowIfWaited } from './reaper.js';

/** Set on every container the library starts: "pid:start time" of the process that did. */
export const CREATOR_ANNOTATION = 'run.hako.harness.creator';

let mark: string | undefined;
/** This process's pid and start time: read once, they never change. */
export function creatorMark(): string {
  mark ??= `${process.pid}:${procStat(process.pid)?.startTime ?? '?'}`;
  return mark;
}

export interface Guarded {
  ctx: RuntimeContext;
  id: string;
  /** The init and the exec'd processes not reaped yet: all ours to reap. */
  pids: Set<number>;
  pidfd: number;
}

const live = new Map<string, Guarded>();
let installed = false;

/** Kills, reaps and deletes one container without the event loop (exit, signals). */
export function removeNow(g: Guarded): void {
  native.pidfdSignal(g.pidfd, 9);
  // A pid namespace's init exits only after its other processes are reaped: reap all.
  for (let i = 0; i < 2000 && g.pids.size; i++) {
    for (const pid of g.pids) if (reapNowIfWaited(pid) || !procStat(pid)) g.pids.delete(pid);
    if (g.pids.size) sleepMs(1);
  }
  try {
    deleteContainer(g.ctx, g.id, true);
  } catch (e) {
    process.stderr.write(`hako: removing container "${g.id}" at exit: ${(e as Error).message}\n`);
  }
  native.closeFd(g.pidfd);
  live.delete(g.id);
}

function removeAll(): void {
  for (const g of [...live.values()]) removeNow(g);
}

function onSignal(sig: NodeJS.Signals): void {
  removeAll();
  // Only ours: the default action (termination) is what the process would have had.
  if (process.listenerCount(sig) === 1) {
    process.removeAllListeners(sig);
    process.kill(process.pid, sig);
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', removeAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);
}

export function guard(g: Guarded): void {
  install();
  live.set(g.id, g);
}

export function unguard(id: string): void {
  live.delete(id);
}

/** Containers in ctx's root left by a library process that is gone (SIGKILLed): their
 *  processes died with it; their state dirs and cgroups go now. Others' are not touched. */
export function sweepStale(ctx: RuntimeContext): void {
  let ids: string[];
  try {
    ids = ctx.store.ids();
  } catch {
    return;
  }
  for (const id of ids) {
    try {
      const mark = Container.load(ctx.store, id).record.annotations?.[CREATOR_ANNOTATION];
      if (!mark) continue;
      const [pid, startTime] = mark.split(':');
      const creator = procStat(Number(pid));
      if (creator && creator.startTime === startTime) continue;
      deleteContainer(ctx, id, true);
      ctx.log.warn(`removed container "${id}", left by library process ${pid} which is gone`);
    } catch {
      // not ours to judge (another user's, half-made): left alone
    }
  }
}
