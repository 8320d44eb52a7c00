#!/usr/bin/env node
// The FHIR bundle's build hook (package.json "hako.build"): `hako up` runs it before serving,
// and it runs alone as `node bundles/fhir/build/index.mjs [BUNDLE_DIR]`. It builds
// BUNDLE_DIR/rootfs from the server sources; esbuild compiles just build/rootfs.ts and its
// imports first (Node 20 runs no TypeScript). Does nothing when the tree is up to date.
import { build, stop } from 'esbuild';
import { readFileSync } from 'node:fs';
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
  let failed = false;
  try {
    await buildFhirRootfs({ bundleDir, log: (s) => console.error(s) });
  } catch (err) {
    console.error(err.message);
    failed = true;
  }
  // esbuild's service process is our child: end it and wait until node has reaped it. Left to
  // exit on its own after us, it is an orphan, and `hako up` (a subreaper, for its containers)
  // would be left holding its zombie. stop() kills it without waiting.
  await stop();
  await noChildren();
  if (failed) process.exit(1);
}

/** Resolves once this process has no child left (/proc's list of the main thread's), or after ms. */
async function noChildren(ms = 2_000) {
  const file = `/proc/self/task/${process.pid}/children`;
  for (const until = Date.now() + ms; Date.now() < until; ) {
    try {
      if (!readFileSync(file, 'utf8').trim()) return;
    } catch {
      return; // no such list on this kernel: nothing to wait for
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
