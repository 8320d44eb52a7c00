// OCI hooks: each runs with the container's state on stdin; a non-zero exit
// or a timeout fails the operation (poststart/poststop only warn, per spec).
// A hook need not read its stdin: when it exits first, writing the state meets
// EPIPE, which says nothing about the hook (runc ignores it too).
import { spawnSync } from 'node:child_process';
import type { Hook } from '../oci/config.js';
import type { OciState } from '../oci/state.js';
import { HakoError } from '../errors.js';
import { fromCwd } from '../sys/caller.js';

export function runHooks(kind: string, hooks: Hook[] | undefined, state: OciState): void {
  for (const h of hooks ?? []) {
    const args = h.args?.length ? h.args : [h.path];
    const r = spawnSync(h.path, args.slice(1), {
      argv0: args[0],
      // The caller's working directory, as runc's hooks get (a planner's own cwd is not the caller's).
      cwd: fromCwd('.'),
      input: JSON.stringify(state),
      env: Object.fromEntries((h.env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])),
      timeout: h.timeout ? h.timeout * 1000 : undefined,
      killSignal: 'SIGKILL',
      stdio: ['pipe', 'ignore', 'pipe'],
      encoding: 'utf8',
    });
    if (r.error && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT')
      throw new HakoError(`${kind} hook ${h.path} timed out after ${h.timeout} s`);
    // EPIPE: the hook exited (or closed stdin) before reading the state; its exit status still counts.
    const epipe = (r.error as NodeJS.ErrnoException | undefined)?.code === 'EPIPE';
    if (r.error && !epipe) throw new HakoError(`${kind} hook ${h.path} could not run: ${r.error.message}`);
    if (r.status !== 0) {
      const why = r.signal ? `killed by ${r.signal}` : `exit status ${r.status}`;
      const err = r.stderr?.trim() ? `: ${r.stderr.trim().split('\n').pop()}` : '';
      throw new HakoError(`${kind} hook ${h.path} failed (${why})${err}`);
    }
  }
}
