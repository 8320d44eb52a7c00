#!/usr/bin/env node
// Signed bundles (issue 15): `hako sign` and `hako verify` of the FHIR bundle after its build
// (a copy, built by its own hook), against the floor, sha256sum of the same files; and what
// --require-signed adds to `hako run` of /bin/true in a busybox bundle. Interleaved rounds,
// medians and ratios. As root (run needs a container; root keeps it simple).
//
// usage: node bench/sign.mjs [rounds=7] [scratch=.cache/bench-sign]
// (inside the repository: the FHIR build hook finds its packages from there; not under
// test/.work*, which a test run's teardown empties)
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const rounds = Number(process.argv[2] ?? 7);
const work = path.resolve(process.argv[3] ?? path.join(repo, '.cache/bench-sign'));
const hakoBin = path.join(repo, 'bin/hako');
fs.rmSync(work, { recursive: true, force: true });
fs.mkdirSync(work, { recursive: true, mode: 0o755 });

// The FHIR bundle, copied without its data and built rootfs, then built by its own hook.
const fhir = path.join(work, 'fhir');
fs.mkdirSync(fhir);
for (const name of fs.readdirSync(path.join(repo, 'bundles/fhir')))
  if (!['node_modules', 'rootfs', 'data', '.cache'].includes(name))
    fs.cpSync(path.join(repo, 'bundles/fhir', name), path.join(fhir, name), { recursive: true, verbatimSymlinks: true });
execFileSync(process.execPath, [path.join(fhir, 'build/index.mjs'), fhir], { stdio: ['ignore', 'ignore', 'inherit'] });

// A busybox bundle running /bin/true.
const bb = path.join(work, 'busybox');
const bbRoot = path.join(bb, 'rootfs');
for (const d of ['bin', 'proc', 'dev', 'sys', 'tmp', 'etc']) fs.mkdirSync(path.join(bbRoot, d), { recursive: true });
fs.copyFileSync('/bin/busybox', path.join(bbRoot, 'bin/busybox'));
fs.chmodSync(path.join(bbRoot, 'bin/busybox'), 0o755);
for (const a of execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean))
  if (a !== 'busybox') fs.symlinkSync('busybox', path.join(bbRoot, 'bin', a));
execFileSync(hakoBin, ['spec', '-b', bb]);
const cfg = JSON.parse(fs.readFileSync(path.join(bb, 'config.json'), 'utf8'));
Object.assign(cfg.process, { terminal: false, args: ['/bin/true'] });
cfg.root = { path: 'rootfs', readonly: true };
fs.writeFileSync(path.join(bb, 'config.json'), JSON.stringify(cfg, null, 2));

// Keys: alice signs, the trust dir holds her identity.
const { newKeys } = await import(path.join(repo, 'dist/seal/keys.js'));
const keys = path.join(work, 'keys');
const trust = path.join(work, 'trust');
fs.mkdirSync(keys, { mode: 0o700 });
fs.mkdirSync(trust, { mode: 0o755 });
newKeys('alice', keys);
fs.copyFileSync(path.join(keys, 'alice.id.json'), path.join(trust, 'alice.id.json'));
const key = path.join(keys, 'alice.key');

function timed(argv) {
  const t = process.hrtime.bigint();
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr.trim()}`);
  return ms;
}

const hako = (...args) => [hakoBin, '--root', path.join(work, 'state'), ...args];
const files = (dir) =>
  fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => path.join(d.parentPath, d.name));
const fhirFiles = files(path.join(fhir, 'rootfs'));
const bytes = fhirFiles.reduce((n, f) => n + fs.statSync(f).size, 0);
execFileSync(process.execPath, hako('sign', '-b', bb, '--key', key).slice(1));

const cases = {
  'sha256sum of the FHIR rootfs files (floor)': () => ['sha256sum', ...fhirFiles],
  'hako sign (FHIR bundle)': () => hako('sign', '-b', fhir, '--key', key),
  'hako verify (FHIR bundle)': () => hako('verify', '-b', fhir, '--trust', trust),
  'hako spec (node + CLI start-up)': () => {
    fs.rmSync(path.join(work, 'spec'), { recursive: true, force: true });
    fs.mkdirSync(path.join(work, 'spec'));
    return hako('spec', '-b', path.join(work, 'spec'));
  },
  'hako run /bin/true (busybox)': (i) => hako('run', '-b', bb, `sgn-bench-${i}`),
  'hako run --require-signed /bin/true (busybox)': (i) => hako('run', '-b', bb, '--require-signed', '--trust', trust, `sgn-bench-s${i}`),
};
const times = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
for (let i = 0; i < rounds + 1; i++)
  for (const [name, argv] of Object.entries(cases)) {
    const ms = timed(argv(i));
    if (i > 0) times[name].push(ms); // round 0 warms the page cache
  }

const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const m = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
const entries = JSON.parse(fs.readFileSync(path.join(fhir, 'hako.sig.json'), 'utf8')).rootfs.entries.length;
console.log(`FHIR rootfs: ${entries} paths, ${fhirFiles.length} files, ${(bytes / 1e6).toFixed(1)} MB; ${rounds} rounds, medians (ms)`);
for (const [k, v] of Object.entries(m)) console.log(`  ${k.padEnd(48)} ${v.toFixed(1)}`);
const floor = m['sha256sum of the FHIR rootfs files (floor)'];
const startup = m['hako spec (node + CLI start-up)'];
console.log(`verify / sha256sum:                 x${(m['hako verify (FHIR bundle)'] / floor).toFixed(2)}`);
console.log(`sign / sha256sum:                   x${(m['hako sign (FHIR bundle)'] / floor).toFixed(2)}`);
console.log(`verify less CLI start-up / sha256sum: x${((m['hako verify (FHIR bundle)'] - startup) / floor).toFixed(2)}`);
console.log(
  `run --require-signed / run:         x${(m['hako run --require-signed /bin/true (busybox)'] / m['hako run /bin/true (busybox)']).toFixed(2)}` +
    ` (+${(m['hako run --require-signed /bin/true (busybox)'] - m['hako run /bin/true (busybox)']).toFixed(1)} ms)`,
);
console.log(
  `FHIR verify throughput: ${(bytes / 1e6 / ((m['hako verify (FHIR bundle)'] - startup) / 1000)).toFixed(0)} MB/s after start-up`,
);
fs.rmSync(work, { recursive: true, force: true });
