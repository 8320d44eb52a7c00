// Bundles the CLI into one CommonJS file (dist/cli/hako.cjs) and writes a V8
// code cache for it (dist/cli/hako.cjs.v8cache), which bin/hako.cjs hands to V8:
// every `hako` call pays node's start-up plus loading the CLI, and one file
// whose functions are already compiled loads several times faster than
// hundreds of modules. pino stays a file of its own: it loads only when
// something is logged.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { build } from 'esbuild';

const repo = path.resolve(import.meta.dirname, '..');
const outfile = path.join(repo, 'dist/cli/hako.cjs');

await build({
  entryPoints: [path.join(repo, 'src/cli/main.ts')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['pino'],
  // The sources are ES modules that find files beside themselves.
  define: { 'import.meta.url': '__hakoUrl' },
  banner: { js: "const __hakoUrl = require('node:url').pathToFileURL(__filename).href;" },
  minify: true,
  logLevel: 'warning',
});

// The signing code (Ed25519, TypeBox's checks, the manifest walk) is a bundle of its own,
// loaded only by sign, verify and --require-signed (src/cli/signed.ts): the other verbs do
// not carry it, and those three do not load hundreds of modules.
await build({
  entryPoints: [path.join(repo, 'src/sign/index.ts')],
  outfile: path.join(repo, 'dist/cli/sign.cjs'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  minify: true,
  logLevel: 'warning',
});

// The planner (issue 20, src/planner/): its main thread and its workers, each a bundle of
// its own beside the CLI's (the workers carry the whole CLI; the main thread only the pool).
for (const [entry, out] of [
  ['src/planner/main.ts', 'dist/cli/planner.cjs'],
  ['src/planner/worker.ts', 'dist/cli/planner-worker.cjs'],
])
  await build({
    entryPoints: [path.join(repo, entry)],
    outfile: path.join(repo, out),
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['pino'],
    define: { 'import.meta.url': '__hakoUrl' },
    banner: { js: "const __hakoUrl = require('node:url').pathToFileURL(__filename).href;" },
    minify: true,
    logLevel: 'warning',
  });

// The cache holds the functions a call compiled: make it from calls that run
// the decision path (spec, then plan of that bundle). Without the native
// addon (not built yet) there is no cache, and bin/hako.cjs compiles as it goes.
const cache = `${outfile}.v8cache`;
fs.rmSync(cache, { force: true });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-cache-'));
try {
  const hako = (args, env = {}) =>
    spawnSync(process.execPath, [path.join(repo, 'bin/hako.cjs'), ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  fs.mkdirSync(path.join(tmp, 'rootfs'));
  const spec = hako(['spec', '-b', tmp, ...(process.geteuid() === 0 ? [] : ['--rootless'])]);
  const plan = spec.status === 0 ? hako(['plan', '-b', tmp], { HAKO_WRITE_CODE_CACHE: cache }) : spec;
  if (plan.status !== 0 || !fs.existsSync(cache))
    console.warn(`bundle-cli: no code cache (${(plan.stderr || '').trim().split('\n').pop() || 'no output'})`);
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
