#!/usr/bin/env node
// Rollouts under load (issue 18): `hako up` serves the FHIR bundle (a copy, authorization off) as
// root; bench/rollout/load.mjs sends reads and writes on 4 keep-alive connections throughout;
// after a steady period, ROLLOUTS consecutive `hako rollout`s alternate between two copies that
// differ in their version. Printed: failed requests (by kind), the longest a request waited
// (the handover pause), p99 of request time in the rollout windows against steady state, the
// handover times up reported, and whether every acknowledged write is still there.
//
// usage: node bench/rollout.mjs [rollouts=20] [steady seconds=15] [scratch=.cache/bench-rollout]
//   BENCH_FHIR_TREE=DIR: the FHIR bundle tree to copy (default bundles/fhir)
// (inside the repository: the FHIR build hook finds its packages from there; not under
// test/.work*, which a test run's teardown empties)
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const rollouts = Number(process.argv[2] ?? 20);
const steadyS = Number(process.argv[3] ?? 15);
const work = path.resolve(process.argv[4] ?? path.join(repo, '.cache/bench-rollout'));
const tree = process.env.BENCH_FHIR_TREE ?? path.join(repo, 'bundles/fhir');
const hakoBin = path.join(repo, 'bin/hako');
const PORT = 18880;
const ID = 'roll-bench';
const url = `http://127.0.0.1:${PORT}/`;
if (process.getuid() !== 0) throw new Error('run as root');
fs.rmSync(work, { recursive: true, force: true });
fs.mkdirSync(work, { recursive: true, mode: 0o755 });

function copy(version) {
  const dir = path.join(work, `fhir-${version}`);
  fs.mkdirSync(dir);
  for (const name of ['config.json', 'package.json', 'build', 'server'])
    fs.cpSync(path.join(tree, name), path.join(dir, name), { recursive: true });
  fs.writeFileSync(path.join(dir, 'server/version.ts'), `export const VERSION = '${version}';\n`);
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  cfg.process.env.push('HAKO_FHIR_AUTH=off');
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg, null, 2));
  fs.mkdirSync(path.join(dir, 'data'), { mode: 0o700 });
  return dir;
}
const v1 = copy('1.0.0');
const v2 = copy('2.0.0');
const root = path.join(work, 'state');
const hako = (args) => spawnSync(hakoBin, ['--root', root, ...args], { encoding: 'utf8', timeout: 300_000 });

// v2's rootfs is built first: the bench measures handovers, not builds.
const built = spawnSync(process.execPath, [path.join(v2, 'build/index.mjs'), v2], { stdio: ['ignore', 'ignore', 'inherit'] });
if (built.status !== 0) throw new Error('building v2 failed');

const up = spawn(hakoBin, ['--root', root, 'up', v1, '--listen', `127.0.0.1:${PORT}`, '--id', ID], {
  stdio: ['ignore', 'pipe', 'pipe'],
});
let upOut = '';
let upErr = '';
up.stdout.on('data', (d) => (upOut += d));
up.stderr.on('data', (d) => (upErr += d));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
for (let t = Date.now(); !/FHIR server at/.test(upOut); await sleep(100))
  if (up.exitCode !== null || Date.now() - t > 180_000) throw new Error(`up did not serve: ${upErr}`);
// The new version is deployed with the store's key (BUNDLE/secrets, made by v1's first build).
fs.rmSync(path.join(v2, 'secrets'), { recursive: true, force: true });
if (fs.existsSync(path.join(v1, 'secrets'))) spawnSync('cp', ['-a', path.join(v1, 'secrets'), v2]);

const out = path.join(work, 'load.json');
const load = spawn(process.execPath, [path.join(repo, 'bench/rollout/load.mjs'), url, '4', out], {
  stdio: ['ignore', 'ignore', 'inherit'],
});
const loadDone = new Promise((r) => load.once('exit', r));
const t0 = Date.now();
await sleep(steadyS * 1000);
const windows = [];
const handovers = [];
const rolloutAsync = (to) =>
  new Promise((resolve) => {
    const c = spawn(hakoBin, ['--root', root, 'rollout', ID, '--bundle', to, '--timeout', '120'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let so = '';
    let se = '';
    c.stdout.on('data', (d) => (so += d));
    c.stderr.on('data', (d) => (se += d));
    c.once('close', (status) => resolve({ status, stdout: so, stderr: se }));
  });
for (let i = 1; i <= rollouts; i++) {
  const from = Date.now() - t0;
  const r = await rolloutAsync(i % 2 ? v2 : v1);
  windows.push([from, Date.now() - t0]);
  if (r.status !== 0) throw new Error(`rollout ${i} failed: ${r.stderr}`);
  handovers.push(Number(/handover (\d+) ms/.exec(r.stdout)[1]));
  process.stderr.write(`rollout ${i}: ${r.stdout}`);
}
await sleep(3_000);
load.kill('SIGTERM');
await loadDone;
const seen = JSON.parse(fs.readFileSync(out, 'utf8'));

// Every acknowledged write, read back (8 at a time: a search by many _ids is slow on 40 000 patients).
let lost = 0;
for (let i = 0; i < seen.acked.length; i += 8)
  await Promise.all(
    seen.acked.slice(i, i + 8).map(async (id) => {
      const res = await fetch(`${url}Patient/${id}`);
      await res.arrayBuffer();
      if (res.status !== 200) lost++;
    }),
  );
up.kill('SIGTERM');
await new Promise((r) => up.once('exit', r));

const inRollout = (s) => windows.some(([a, b]) => s[0] >= a && s[0] <= b);
const steady = seen.samples.filter((s) => s[0] < windows[0][0]).map((s) => s[1]);
const rolling = seen.samples.filter(inRollout).map((s) => s[1]);
const q = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};
const fmt = (ms) => `${ms.toFixed(1)} ms`;
const failed = Object.values(seen.failures).reduce((a, b) => a + b, 0);
console.log(`rollouts: ${rollouts} (alternating 1.0.0 / 2.0.0), load: 4 keep-alive connections, write then read`);
console.log(
  `requests: ${seen.samples.length}; failed: ${failed} ${JSON.stringify(seen.failures)}; acknowledged writes: ${seen.acked.length}, missing afterwards: ${lost}`,
);
console.log(
  `steady state (${steadyS} s, ${steady.length} requests): median ${fmt(q(steady, 0.5))}, p99 ${fmt(q(steady, 0.99))}, max ${fmt(Math.max(...steady))}`,
);
console.log(
  `rollout windows (${((windows.at(-1)[1] - windows[0][0]) / 1000).toFixed(1)} s, ${rolling.length} requests): median ${fmt(q(rolling, 0.5))}, p99 ${fmt(q(rolling, 0.99))}, max (the handover pause) ${fmt(Math.max(...rolling))}`,
);
console.log(
  `p99 rollout / steady: ${(q(rolling, 0.99) / q(steady, 0.99)).toFixed(1)}x; max rollout / steady p99: ${(Math.max(...rolling) / q(steady, 0.99)).toFixed(1)}x`,
);
console.log(`handover up reported (old one gone -> new one answers): median ${q(handovers, 0.5)} ms, max ${Math.max(...handovers)} ms`);
