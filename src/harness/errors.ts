// Every error out of the library is a HakoError naming the step that failed: the runtime's
// own keep their step (a plan step's sentence), others get the library's phase.
import { HakoError } from '../errors.js';

export function asHakoError(e: unknown, step: string): HakoError {
  if (e instanceof HakoError) {
    e.step ??= step;
    return e;
  }
  const err = e as NodeJS.ErrnoException;
  const wrapped = new HakoError(`${step}: ${err?.message ?? String(e)}`, 1, { step, errno: err?.code, path: err?.path });
  wrapped.cause = e;
  return wrapped;
}
