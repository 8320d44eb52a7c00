// delete: remove a stopped container (with --force, kill it first), run the
// poststop hooks, leave nothing behind.
import fs from 'node:fs';
import { HakoError } from '../errors.js';
import { Container, InvalidStateError } from './container.js';
import { signalContainer, containerPids } from './kill.js';
import { runHooks } from './hooks.js';
import { sleepMs } from '../sys/proc.js';
import type { RuntimeContext } from './context.js';
import { cgroupOf, removeEmptyCgroup } from './cgroup.js';
import { checkId } from './store.js';
import { detachRootfsMounts } from './create.js';
import { hasShim, logNewDenials } from './shim.js';

function waitGone(c: Container, ms: number): boolean {
  for (let t = 0; t < ms; t += 5) {
    if (containerPids(c).length === 0) return true;
    sleepMs(5);
  }
  return false;
}

export function removeContainer(ctx: RuntimeContext, c: Container, force: boolean): void {
  const status = c.status();
  // runc deletes a created container without --force: it never ran.
  if ((status === 'running' || status === 'paused') && !force)
    throw new HakoError(`cannot delete container "${c.id}" that is not stopped: it is ${status}`);
  if (status !== 'stopped' || containerPids(c).length) {
    signalContainer(c, 9, true);
    if (!waitGone(c, 10_000)) throw new HakoError(`container "${c.id}" did not die after SIGKILL`);
  }
  let cfgHooks;
  try {
    const cfg = c.config();
    cfgHooks = cfg.hooks?.poststop;
    detachRootfsMounts(cfg, c.record.rootfs, c.record.rootfsMountId);
  } catch (e) {
    // Hooks come only from the state dir's own config.json: none when it is unreadable.
    ctx.log.warn(`${(e as Error).message}: no poststop hook runs`);
    cfgHooks = undefined;
  }
  try {
    runHooks('poststop', cfgHooks, c.ociState('stopped'));
  } catch (e) {
    ctx.log.warn((e as Error).message);
  }
  // Denials not logged yet (a detached container's): logged before they go with the state dir.
  if (hasShim(c.dir)) {
    try {
      logNewDenials(ctx.log, c.id, c.dir);
    } catch (e) {
      ctx.log.warn(`reading the shim's denials of ${c.id}: ${(e as Error).message}`);
    }
  }
  removeEmptyCgroup(cgroupOf(c.record.cgroup));
  fs.rmSync(c.dir, { recursive: true, force: true });
  ctx.store.removeLock(c.id);
}

/** runc: `delete --force` of a container that does not exist succeeds (Podman calls it after
 *  a failed create). No lock is taken for an id with no directory, so none is left behind. */
export function deleteContainer(ctx: RuntimeContext, id: string, force: boolean): void {
  checkId(id);
  if (!ctx.store.has(id)) {
    if (force) return;
    throw new HakoError(`container "${id}" does not exist`);
  }
  ctx.store.withLock(id, () => {
    let c: Container;
    try {
      c = Container.load(ctx.store, id);
    } catch (e) {
      if (!force) throw e;
      // A state.json hako will not trust names nothing to signal or run: only the dir goes.
      if (e instanceof InvalidStateError) {
        ctx.log.warn(`${e.message.replace(/: remove .*$/, '')}: removed its directory without signalling anything or running hooks`);
        fs.rmSync(ctx.store.dir(id), { recursive: true, force: true });
        return;
      }
      // A dir without state.json is a create that died half-way; none at all, a delete that won the race.
      if (ctx.store.has(id)) fs.rmSync(ctx.store.dir(id), { recursive: true, force: true });
      return;
    }
    removeContainer(ctx, c, force);
  });
}
