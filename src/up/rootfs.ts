// The bundle's root filesystem: built by its builder when hako knows one (idempotent,
// a no-op while the inputs are unchanged), otherwise it must already exist.
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../oci/config.js';
import { HakoError } from '../errors.js';

export interface RootfsBuilder {
  /** What the bundle serves, for the "serving at" line. */
  label: string;
  /** Whether the bundle holds what this builder builds from. */
  applies(bundle: string): boolean;
  build(bundle: string, log: (sentence: string) => void): Promise<void>;
}

// Loaded on use, and by a name the CLI bundler does not follow: the builder
// pulls in esbuild and the FHIR engine, which no other verb needs. It resolves
// to dist/rootfs/fhir.js from dist/up/ (`up` itself is never in the CLI bundle).
const FHIR_BUILDER: string = '../rootfs/fhir.js';

const BUILDERS: RootfsBuilder[] = [
  {
    label: 'FHIR server',
    // buildFhirRootfs builds from the server sources and the definition list in the bundle.
    applies: (bundle) => ['main.ts', 'definition-files.json'].every((f) => fs.existsSync(path.join(bundle, 'server', f))),
    build: async (bundleDir, log) => (await import(FHIR_BUILDER)).buildFhirRootfs({ bundleDir, log }),
  },
];

export function builderFor(bundle: string): RootfsBuilder | undefined {
  return BUILDERS.find((b) => b.applies(bundle));
}

/** Builds or checks the rootfs; returns what the bundle serves (for the URL line). */
export async function ensureRootfs(bundle: string, cfg: Config, log: (sentence: string) => void): Promise<string> {
  const builder = builderFor(bundle);
  if (builder) {
    try {
      await builder.build(bundle, log);
    } catch (e) {
      throw new HakoError((e as Error).message);
    }
  }
  const rootfs = path.resolve(bundle, cfg.root!.path);
  if (!fs.statSync(rootfs, { throwIfNoEntry: false })?.isDirectory())
    throw new HakoError(`config.json: root.path: "${rootfs}" is not a directory, and hako knows no builder for this bundle: build its root filesystem first`);
  return builder?.label ?? 'server';
}
