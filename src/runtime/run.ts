// run: create + start, then (unless detached) wait, forward signals, delete,
// and give back the container's exit code. A process with a terminal and no
// --console-socket gets hako's own relay (as `runc run` does).
import fs from 'node:fs';
import { create, loadBundleConfig, type CreateOptions, type Created } from './create.js';
import { start } from './start.js';
import { deleteContainer } from './delete.js';
import { waitAndForward, checkExec } from './wait.js';
import { closeFd, killAndReap, type Launched } from './launch.js';
import { native } from '../sys/native.js';
import { processParent } from '../sys/process-parent.js';
import { fromCwd } from '../sys/caller.js';
import { listenForConsole, relay, type ConsoleListener } from './terminal.js';
import { HakoError } from '../errors.js';
import type { RuntimeContext } from './context.js';
import { hasShim, watchShimDenials, type DenialWatch } from './shim.js';

/** The relay needs a terminal of ours: without one the container's shell would wait forever
 *  for input nobody can type. runc fails the same way, opening /dev/tty. */
function requireTerminal(): void {
  try {
    fs.closeSync(fs.openSync('/dev/tty', fs.constants.O_RDWR | fs.constants.O_NOCTTY));
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENXIO' ? 'no such device or address' : (e as Error).message;
    throw new HakoError(
      `config.json: process.terminal: hako has no terminal to give the container (open /dev/tty: ${why}): run it from a terminal, set terminal to false, or pass --console-socket`,
    );
  }
}

export async function run(ctx: RuntimeContext, o: CreateOptions & { detach?: boolean; keep?: boolean }): Promise<number> {
  const config = o.config ?? loadBundleConfig(fromCwd(o.bundle));
  let tty: ConsoleListener | undefined;
  if (config.process?.terminal && !o.consoleSocket) {
    if (o.detach) throw new HakoError('config.json: process.terminal: a detached container with a terminal needs --console-socket');
    requireTerminal();
    tty = listenForConsole();
  }
  // When the plan forks into a joined pid namespace the init is our
  // grandchild: as its subreaper we can still wait for it.
  if (!o.detach) processParent().setSubreaper();
  let created;
  try {
    created = create(ctx, { ...o, config, consoleSocket: o.consoleSocket ?? tty?.path });
  } catch (e) {
    tty?.close();
    throw e;
  }
  const { container, plan, launched } = created;
  const master = tty ? await tty.master.finally(() => tty!.close()) : undefined;
  // Relay (and size the window) before start, so the process never sees a 0x0 terminal.
  const relayed = master !== undefined ? relay(master) : undefined;
  try {
    start(ctx, container.id);
  } catch (e) {
    relayed?.stop();
    deleteContainer(ctx, container.id, true);
    throw e;
  }
  if (o.detach) {
    closeFd(launched.syncFd);
    closeFd(launched.pidfd);
    return 0;
  }
  let code: number;
  // The preload shim's denials are logged as they come, not only at delete.
  const denials: DenialWatch | undefined = hasShim(container.dir) ? watchShimDenials(ctx.log, container.id, container.dir) : undefined;
  try {
    checkExec(plan, launched.syncFd);
    code = await waitAndForward(launched.pid, launched.pidfd);
    await relayed?.done;
  } finally {
    denials?.stop();
    relayed?.stop();
    if (!o.keep) deleteContainer(ctx, container.id, true);
  }
  return code;
}

/** start and the exec check of a created container, the one home of "create, start, check,
 *  and leave nothing on failure" (the library and `hako up` use it; run relays a terminal in
 *  between and keeps its own). On failure the init is killed through its pidfd (and reaped when
 *  it is our child) and the container deleted; on success the caller owns launched.pidfd. */
export function startCreated(ctx: RuntimeContext, created: Created): Launched {
  const { container, plan, launched } = created;
  let syncOpen = true;
  try {
    start(ctx, container.id);
    syncOpen = false; // checkExec closes it, whatever it finds
    checkExec(plan, launched.syncFd);
    return launched;
  } catch (e) {
    if (syncOpen) closeFd(launched.syncFd);
    if (launched.pid === launched.childPid) killAndReap(launched.pid, launched.pidfd);
    else native.pidfdSignal(launched.pidfd, 9);
    closeFd(launched.pidfd);
    try {
      deleteContainer(ctx, container.id, true);
    } catch (err) {
      ctx.log.warn(`removing container "${container.id}" after its failed start: ${(err as Error).message}`);
    }
    throw e;
  }
}
