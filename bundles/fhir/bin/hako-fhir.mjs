#!/usr/bin/env node
// hako-fhir: the FHIR bundle's administration command (clients, users, tokens, the audit trail;
// backup and restore of the store). Its sources are TypeScript (server/auth/cli.ts, sharing the
// server's auth code; server/backup.ts for backup and restore); esbuild bundles the one a command
// needs into .cache/ the first time and whenever the sources change, then it runs.
import { build } from 'esbuild';
import { mkdirSync, readdirSync, renameSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const bundleDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const serverDir = join(bundleDir, 'server');
const args = process.argv.slice(2);
// The first word that is not an option or its value: backup and restore have their own entry.
const verb = args.find((a, i) => !a.startsWith('-') && !(args[i - 1] ?? '').startsWith('-'));
const store = verb === 'backup' || verb === 'restore';
const entry = store ? join(serverDir, 'backup.ts') : join(serverDir, 'auth', 'cli.ts');
const out = join(bundleDir, '.cache', store ? 'hako-fhir-backup.mjs' : 'hako-fhir-cli.mjs');

const sources = [
  ...readdirSync(join(serverDir, 'auth')).map((n) => join(serverDir, 'auth', n)),
  ...readdirSync(serverDir)
    .filter((n) => n.endsWith('.ts'))
    .map((n) => join(serverDir, n)),
  fileURLToPath(import.meta.url),
];
const built = statSync(out, { throwIfNoEntry: false })?.mtimeMs ?? 0;
if (sources.some((f) => statSync(f).mtimeMs > built)) {
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  await build({
    entryPoints: [entry],
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
process.exitCode = await main(args, join(bundleDir, 'data'));
