#!/usr/bin/env node
// Builds bundles/fhir/rootfs (or BUNDLE_DIR/rootfs) without a full project build: esbuild
// compiles just src/rootfs/fhir.ts and its imports. Does nothing when the tree is up to date.
//   node rootfs/build-fhir.mjs [BUNDLE_DIR]
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
// Two levels below the repo, like src/rootfs, so the builder finds node_modules the same way.
const out = `${repo}.cache/rootfs/build-fhir.mjs`;

export async function loadBuilder() {
  await build({
    entryPoints: [`${repo}src/rootfs/fhir.ts`],
    outfile: out,
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    logLevel: 'error',
  });
  return import(out);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const bundleDir = process.argv[2] ?? `${repo}bundles/fhir`;
  const { buildFhirRootfs } = await loadBuilder();
  try {
    await buildFhirRootfs({ bundleDir, log: (s) => console.error(`build-fhir: ${s}`) });
  } catch (err) {
    console.error(`build-fhir: ${err.message}`);
    process.exit(1);
  }
}
