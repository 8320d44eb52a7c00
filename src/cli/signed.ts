// The signing code for sign, verify and --require-signed on run and create: loaded only when
// asked for, from its own bundle beside the CLI's (dist/cli/sign.cjs, tools/bundle-cli.mjs),
// so every other verb keeps the CLI bundle, and its start-up, as small as before.
import { createRequire } from 'node:module';
import type { Config } from '../oci/config.js';
import type { SignedOptions } from '../sign/index.js';

type Signing = typeof import('../sign/index.js');

/** This file and the CLI's bundle both live in dist/cli: the path holds for either. */
export function signing(): Signing {
  return createRequire(import.meta.url)('./sign.cjs') as Signing;
}

/** The verified config, or undefined when no signature is asked for. */
export function checkSigned(bundle: string, o: SignedOptions): Config | undefined {
  if (!o.requireSigned && o.trust === undefined) return undefined;
  return signing().requireSigned(bundle, o);
}
