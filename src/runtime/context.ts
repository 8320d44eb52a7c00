// What every verb needs: the store, whether we run rootless, a logger.
import type { Logger } from 'pino';
import { Store, defaultRoot } from './store.js';

export interface RuntimeContext {
  store: Store;
  rootless: boolean;
  log: Logger;
}

export function rootlessDefault(): boolean {
  return process.geteuid!() !== 0;
}

export function makeStore(root?: string): Store {
  return new Store(root ?? defaultRoot());
}
