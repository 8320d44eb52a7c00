// Shared by every subcommand: the global flags turned into a runtime context.
import { InvalidArgumentError, type Command } from 'commander';
import { makeLogger } from './log.js';
import { makeStore, rootlessDefault, type RuntimeContext } from '../runtime/index.js';
import { fromCwd } from '../sys/caller.js';

export interface GlobalOptions {
  root?: string;
  log?: string;
  logFormat?: string;
  debug?: boolean;
  rootless?: string;
  systemdCgroup?: boolean;
}

export function globals(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals() as GlobalOptions;
}

export function context(cmd: Command): RuntimeContext {
  const g = globals(cmd);
  const rootless = g.rootless === undefined || g.rootless === 'auto' ? rootlessDefault() : g.rootless === 'true';
  return { store: makeStore(g.root === undefined ? undefined : fromCwd(g.root)), rootless, log: makeLogger(g) };
}

/** Parses a non-negative integer flag. commander's own error names the flag (a plain Error
 *  here was an "internal error" with a stack). */
export function intOption(v: string): number {
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`"${v}" is not a non-negative integer.`);
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`"${v}" is too large.`);
  return n;
}

/** A command's options with every path it takes made absolute against the caller's working
 *  directory (a planner call's cwd is not the process's): the bundle, the pid file, the
 *  console socket and --trust. */
export function callerPaths<T extends Record<string, unknown>>(o: T): T {
  const out: Record<string, unknown> = { ...o };
  for (const k of ['bundle', 'pidFile', 'consoleSocket', 'trust'])
    if (typeof out[k] === 'string' && out[k] !== '') out[k] = fromCwd(out[k]);
  return out as T;
}
