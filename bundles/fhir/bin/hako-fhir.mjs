#!/usr/bin/env node
// hako-fhir: the FHIR bundle's administration command (clients, users, tokens, the audit trail).
// Its source is TypeScript (server/auth/cli.ts, sharing the server's auth code); esbuild bundles it
// into .cache/ the first time and whenever the sources change, then it runs.
import { build } from 'esbuild';
import { mkdirSync, readdirSync, renameSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const bundleDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const serverDir = join(bundleDir, 'server');
const out = join(bundleDir, '.cache', 'hako-fhir-cli.mjs');

const sources = [
  ...readdirSync(join(serverDir, 'auth')).map((n) => join(serverDir, 'auth', n)),
  join(serverDir, 'match.ts'),
  join(serverDir, 'search.ts'),
  fileURLToPath(import.meta.url),
];
const built = statSync(out, { throwIfNoEntry: false })?.mtimeMs ?? 0;
if (sources.some((f) => statSync(f).mtimeMs > built)) {
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  await build({
    entryPoints: [join(serverDir, 'auth', 'cli.ts')],
    outfile: tmp,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // The packages load from node_modules at run time; the patient compartment's JSON is bundled.
    external: ['jose', 'otpauth', '@medplum/*'],
    logLevel: 'error',
  });
  renameSync(tmp, out);
}
const { main } = await import(pathToFileURL(out).href);
process.exitCode = await main(process.argv.slice(2), join(bundleDir, 'data'));
