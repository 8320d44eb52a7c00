// Bundles the CLI into one file (dist/cli/hako.mjs): every `hako` call pays
// node's start-up plus module loading, and one file loads several times
// faster than hundreds. Packages that must stay files of their own (esbuild
// finds its binary beside itself; the FHIR engine and tar load only in `up`)
// are left external.
import { build } from 'esbuild';

await build({
  entryPoints: ['src/cli/main.ts'],
  outfile: 'dist/cli/hako.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['esbuild', '@medplum/*', 'tar', 'fhir-kit-client'],
  // Bundled CommonJS packages call require(): give the ESM bundle one.
  banner: { js: "import { createRequire as __hakoRequire } from 'node:module'; const require = __hakoRequire(import.meta.url);" },
  minify: true,
  logLevel: 'warning',
});
