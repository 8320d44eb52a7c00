// --require-signed --trust DIR on run, create and up: both or neither, and the check itself,
// made as late as the verb allows (right before the container is created), with the window
// after it narrowed (window.ts).
import { HakoError } from '../errors.js';
import type { Config } from '../oci/config.js';
import { verifyBundle } from './verify.js';
import { checkWindow } from './window.js';

export interface SignedOptions {
  requireSigned?: boolean;
  trust?: string;
}

/** The verified config when asked for a signed bundle (the caller runs it instead of
 *  reading config.json again), else undefined. Refusals start with the flag that asked. */
export function requireSigned(bundle: string, o: SignedOptions): Config | undefined {
  if (o.trust !== undefined && !o.requireSigned) throw new HakoError('--trust: only means something with --require-signed');
  if (!o.requireSigned) return undefined;
  if (o.trust === undefined) throw new HakoError('--require-signed: needs --trust DIR, the directory of trusted identities (*.id.json)');
  try {
    const v = verifyBundle(bundle, o.trust);
    checkWindow(v.config, v.rootfs, v.manifest, v.config.root!.path);
    return v.config;
  } catch (e) {
    if (e instanceof HakoError) throw new HakoError(`--require-signed: ${e.message}`, e.exitCode);
    throw e;
  }
}
