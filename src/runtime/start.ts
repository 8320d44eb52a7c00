// start: release the init waiting on the exec fifo.
import fs from 'node:fs';
import path from 'node:path';
import { HakoError } from '../errors.js';
import { Container } from './container.js';
import { runHooks } from './hooks.js';
import type { RuntimeContext } from './context.js';
import { hasShim, waitShimLoaded } from './shim.js';
import { signalContainer } from './kill.js';

export function start(ctx: RuntimeContext, id: string): Container {
  return ctx.store.withLock(id, () => {
    const c = Container.load(ctx.store, id);
    const status = c.status();
    if (status !== 'created') throw new HakoError(`cannot start container "${id}": it is ${status}, not created`);
    let fd: number;
    try {
      // Non-blocking: if the init died, there is no reader and this fails (ENXIO).
      fd = fs.openSync(c.fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    } catch {
      throw new HakoError(`cannot start container "${id}": its init is not waiting any more`);
    }
    try {
      // The init reads it as the state for startContainer hooks (one write, under PIPE_BUF).
      fs.writeSync(fd, JSON.stringify(c.ociState('running')));
    } finally {
      fs.closeSync(fd);
    }
    fs.rmSync(c.fifo, { force: true });
    // The run.hako.shim.* limits hold only if the first process loaded the shim: else stop it.
    if (hasShim(c.dir)) {
      const r = waitShimLoaded(path.join(c.dir, 'shim'), c.record.pid);
      if ('loaded' in r && r.loaded === false) {
        try {
          signalContainer(c, 9, true);
        } catch (e) {
          ctx.log.warn(`stopping container "${id}": ${(e as Error).message}`);
        }
        throw new HakoError(
          `container "${id}" was stopped: the preload shim did not load in its first process (${r.why}), so its run.hako.shim.* limits cannot be kept`,
        );
      }
    }
    try {
      runHooks('poststart', c.config().hooks?.poststart, c.ociState('running'));
    } catch (e) {
      ctx.log.warn((e as Error).message);
    }
    return c;
  });
}
