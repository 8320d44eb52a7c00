// What every verb needs: the store, whether we run rootless, a logger.
import { Store } from './store.js';

/** The part of a logger the runtime uses: a pino Logger is one. */
export interface Log {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export interface RuntimeContext {
  store: Store;
  rootless: boolean;
  log: Log;
}

export function rootlessDefault(): boolean {
  return process.geteuid!() !== 0;
}

/** root: --root, or undefined for the default root, decided (and checked) when first used. */
export function makeStore(root?: string): Store {
  return new Store(root);
}
