// run: create + start, then (unless detached) wait, forward signals, delete,
// and give back the container's exit code.
import { create, type CreateOptions } from './create.js';
import { start } from './start.js';
import { deleteContainer } from './delete.js';
import { waitAndForward, checkExec } from './wait.js';
import { closeFd } from './launch.js';
import { native } from './native.js';
import type { RuntimeContext } from './context.js';

export async function run(ctx: RuntimeContext, o: CreateOptions & { detach?: boolean; keep?: boolean }): Promise<number> {
  // When the plan forks into a joined pid namespace the init is our
  // grandchild: as its subreaper we can still wait for it.
  if (!o.detach) native.setSubreaper();
  const { container, plan, launched } = create(ctx, o);
  try {
    start(ctx, container.id);
  } catch (e) {
    deleteContainer(ctx, container.id, true);
    throw e;
  }
  if (o.detach) {
    closeFd(launched.syncFd);
    return 0;
  }
  let code: number;
  try {
    checkExec(plan, launched.syncFd);
    code = await waitAndForward(launched.pid);
  } finally {
    if (!o.keep) deleteContainer(ctx, container.id, true);
  }
  return code;
}
