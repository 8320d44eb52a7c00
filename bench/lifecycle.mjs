#!/usr/bin/env node
// `run` of a bundle whose process is /bin/true: hako against runc and crun on
// the same bundle, interleaved (hako runc crun hako runc crun ...), medians
// and ratios. As root. crun refuses this hybrid-cgroup host, so it runs in a
// private mount namespace with a tmpfs over /sys/fs/cgroup and
// --cgroup-manager=disabled (as MACHINE.md says); the cost of that wrapper
// (unshare + mount, measured alone in the same rounds) is subtracted.
//
// The in-process harness (src/harness) runs the same bundle in the same rounds.
//
// bin/hako is the C front (issue 20): measured with its planner warm, cold (a root with no
// planner yet: today's path runs the call, and the planner starts once it has ended; it is
// stopped again outside the timing), and with HAKO_PLANNER=off (today's path behind the front).
//
// usage: node bench/lifecycle.mjs [rounds=30]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const rounds = Number(process.argv[2] ?? 30);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-bench-'));
const bundle = path.join(work, 'bundle');
const rootfs = path.join(bundle, 'rootfs');
fs.mkdirSync(path.join(rootfs, 'bin'), { recursive: true });
fs.copyFileSync('/bin/busybox', path.join(rootfs, 'bin/busybox'));
fs.chmodSync(path.join(rootfs, 'bin/busybox'), 0o755);
fs.symlinkSync('busybox', path.join(rootfs, 'bin/true'));
for (const d of ['proc', 'dev', 'sys', 'tmp']) fs.mkdirSync(path.join(rootfs, d));
execFileSync(process.execPath, [path.join(repo, 'dist/cli/main.js'), 'spec', '-b', bundle]);
const cfg = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8'));
cfg.process.terminal = false;
cfg.process.args = ['/bin/true'];
cfg.ociVersion = '1.0.2'; // crun 1.8 refuses newer versions
fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(cfg, null, 2));

const hide = 'mount -t tmpfs none /sys/fs/cgroup && exec "$@"';
const hakoBin = path.join(repo, 'bin/hako');
const coldRoot = path.join(work, 'hako-cold');
const runners = {
  'hako (planner warm)': (id) => [hakoBin, '--root', path.join(work, 'hako'), 'run', '-b', bundle, id],
  'hako (cold)': (id) => [hakoBin, '--root', coldRoot, 'run', '-b', bundle, id],
  'hako (planner off)': (id) => [hakoBin, '--root', path.join(work, 'hako-off'), 'run', '-b', bundle, id],
  // Before the front: node running the CLI bundle, as bin/hako did.
  'hako before (node bin/hako.cjs)': (id) => [
    process.execPath,
    path.join(repo, 'bin/hako.cjs'),
    '--root',
    path.join(work, 'hako-node'),
    'run',
    '-b',
    bundle,
    id,
  ],
  runc: (id) => ['runc', '--root', path.join(work, 'runc'), 'run', '-b', bundle, id],
  crun: (id) => [
    'unshare',
    '-m',
    'sh',
    '-c',
    hide,
    'sh',
    'crun',
    '--root',
    path.join(work, 'crun'),
    '--cgroup-manager=disabled',
    'run',
    '-b',
    bundle,
    id,
  ],
  'crun wrapper alone': () => ['unshare', '-m', 'sh', '-c', hide, 'sh', 'true'],
};

// The in-process path: the harness in this process, no CLI start-up per run.
const { Hako } = await import(path.join(repo, 'dist/harness/index.js'));
const harness = new Hako({ root: path.join(work, 'harness'), rootless: false });

const envOf = { 'hako (planner off)': { ...process.env, HAKO_PLANNER: 'off' } };
/** Cold: the same root every round, its planner (started once the call ended) stopped again. */
const beforeRun = {};
const afterRun = {
  'hako (cold)': () => {
    const sock = path.join(coldRoot, '.planner.sock');
    const planner = ['-f', `planner.cjs --root ${coldRoot}$`];
    for (let i = 0; i < 300 && spawnSync('pgrep', planner).status !== 0; i++) spawnSync('sleep', ['0.01']);
    for (let i = 0; i < 300 && !fs.existsSync(sock); i++) spawnSync('sleep', ['0.01']);
    spawnSync('pkill', planner);
    for (let i = 0; i < 300 && spawnSync('pgrep', planner).status === 0; i++) spawnSync('sleep', ['0.01']);
  },
};

const times = Object.fromEntries([...Object.keys(runners), 'hako in-process'].map((k) => [k, []]));
const usable = {};
for (const [name, argv] of Object.entries(runners)) {
  beforeRun[name]?.('probe');
  const r = spawnSync(argv('probe')[0], argv('probe').slice(1), { encoding: 'utf8', env: envOf[name] });
  afterRun[name]?.('probe');
  usable[name] = r.status === 0;
  if (!usable[name]) console.error(`${name}: not measured (${(r.stderr || r.error?.message || '').trim().split('\n').pop()})`);
}
// The warm planner is up once a call it must serve succeeds (HAKO_PLANNER=require: no fallback).
for (let i = 0; i < 300; i++) {
  const a = runners['hako (planner warm)'](`warmup${i}`);
  if (spawnSync(a[0], a.slice(1), { env: { ...process.env, HAKO_PLANNER: 'require' } }).status === 0) break;
  spawnSync('sleep', ['0.05']);
}
for (let i = 0; i < rounds; i++) {
  for (const [name, argv] of Object.entries(runners)) {
    if (!usable[name]) continue;
    const a = argv(`b${i}`);
    beforeRun[name]?.(`b${i}`);
    const t0 = process.hrtime.bigint();
    const r = spawnSync(a[0], a.slice(1), { stdio: 'ignore', env: envOf[name] });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    afterRun[name]?.(`b${i}`);
    if (r.status !== 0) throw new Error(`${name} failed in round ${i}`);
    times[name].push(ms);
  }
  const t0 = process.hrtime.bigint();
  const r = await harness.run({ bundle, id: `h${i}` });
  if (r.code !== 0) throw new Error(`harness run failed in round ${i}: ${r.stderr}`);
  times['hako in-process'].push(Number(process.hrtime.bigint() - t0) / 1e6);
}
spawnSync('pkill', ['-f', `planner.cjs --root ${work}/`]);
fs.rmSync(work, { recursive: true, force: true });

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const m = Object.fromEntries(
  Object.entries(times)
    .filter(([, v]) => v.length)
    .map(([k, v]) => [k, median(v)]),
);
if (m.crun !== undefined) m['crun (wrapper subtracted)'] = m.crun - m['crun wrapper alone'];
const node = median(
  Array.from({ length: 10 }, () => {
    const t0 = process.hrtime.bigint();
    spawnSync(process.execPath, ['-e', '0']);
    return Number(process.hrtime.bigint() - t0) / 1e6;
  }),
);
console.log(`run of /bin/true, ${rounds} interleaved rounds, medians (ms):`);
for (const [k, v] of Object.entries(m)) console.log(`  ${k.padEnd(28)} ${v.toFixed(1)}`);
console.log(`  ${'node -e 0 (for scale)'.padEnd(28)} ${node.toFixed(1)}`);
const ratios = (base, label) => {
  if (!m[base]) return;
  const parts = ['hako (planner warm)', 'hako (cold)', 'hako (planner off)', 'hako before (node bin/hako.cjs)', 'hako in-process']
    .filter((k) => m[k] !== undefined)
    .map((k) => `${k.replace('hako ', '')} ${(m[k] / m[base]).toFixed(2)}`);
  console.log(`ratio hako/${label}: ${parts.join(', ')}`);
};
ratios('runc', 'runc');
ratios('crun (wrapper subtracted)', 'crun');
