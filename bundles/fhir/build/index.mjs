#!/usr/bin/env node
// The FHIR bundle's build hook (package.json "hako.build"): `hako up` runs it before serving,
// and it runs alone as `node bundles/fhir/build/index.mjs [BUNDLE_DIR]`. It builds
// BUNDLE_DIR/rootfs from the server sources; esbuild compiles just build/rootfs.ts and its
// imports first (Node 20 runs no TypeScript). Does nothing when the tree is up to date.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const bundle = fileURLToPath(new URL('..', import.meta.url));
// Inside the bundle, so the compiled builder resolves packages the way build/ does.
const out = `${bundle}.cache/build/rootfs.mjs`;

export async function loadBuilder() {
  await build({
    entryPoints: [`${bundle}build/rootfs.ts`],
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
  const bundleDir = process.argv[2] ?? bundle;
  const { buildFhirRootfs } = await loadBuilder();
  try {
    await buildFhirRootfs({ bundleDir, log: (s) => console.error(s) });
  } catch (err) {
    console.error(err.message);
    process.exit(1);
  }
}
