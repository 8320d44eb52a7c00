// Shared by every subcommand: the global flags turned into a runtime context.
import type { Command } from 'commander';
import { makeLogger } from './log.js';
import { makeStore, rootlessDefault, type RuntimeContext } from '../runtime/context.js';

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
  return { store: makeStore(g.root), rootless, log: makeLogger(g) };
}

/** Parses a non-negative integer flag. */
export function intOption(v: string): number {
  if (!/^\d+$/.test(v)) throw new Error(`"${v}" is not a non-negative integer`);
  return Number(v);
}
