// --require-signed on run and create. The signing code (Ed25519, the manifest walk) is loaded
// only when asked for, from dist/sign beside the CLI's bundle (as `up` is): every other run
// and create keeps the bundle, and its start-up, as small as before.
import { createRequire } from 'node:module';
import type { Config } from '../runtime/index.js';
import type { SignedOptions } from '../sign/index.js';

/** The verified config, or undefined when no signature is asked for. */
export function checkSigned(bundle: string, o: SignedOptions): Config | undefined {
  if (!o.requireSigned && o.trust === undefined) return undefined;
  // This file and the bundle both live in dist/cli: the path holds for either.
  const sign = createRequire(import.meta.url)('../sign/index.js') as typeof import('../sign/index.js');
  return sign.requireSigned(bundle, o);
}
