// state and list: what the store says about containers, as runc prints it.
import { Container } from './container.js';
import type { OciState } from '../oci/state.js';
import type { RuntimeContext } from './context.js';

export function state(ctx: RuntimeContext, id: string): OciState {
  return Container.load(ctx.store, id).ociState();
}

export interface ListEntry extends OciState {
  created: string;
  owner: string;
}

/** Every container whose state hako trusts; one it refuses is left out (`state ID` says why). */
export function list(ctx: RuntimeContext): ListEntry[] {
  return ctx.store.ids().flatMap((id) => {
    try {
      const c = Container.load(ctx.store, id);
      return [{ ...c.ociState(), created: c.record.created, owner: String(c.record.owner) }];
    } catch {
      return [];
    }
  });
}
