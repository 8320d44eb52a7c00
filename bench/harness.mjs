#!/usr/bin/env node
// The library (`import { Hako } from 'hako'`) against the runtimes a test suite would
// otherwise drive: start-to-exit of /bin/true through `await hako.run(...)` (create, start,
// wait, output, delete) against `runc run` and `crun run` of the same bundle, interleaved
// (api runc crun api …), medians and ratios, with the runtime's own create-start-wait-delete
// called directly in this process in the same rounds (the library's overhead), and the API with a
// limit (a cgroup of its own); then containers started and removed per second
// by one process, one after another and 8 at a time. As root. crun refuses this
// hybrid-cgroup host: it runs in a private mount namespace with a tmpfs over /sys/fs/cgroup
// and --cgroup-manager=disabled (MACHINE.md), and that wrapper's cost, measured alone in the
// same rounds, is subtracted.
//
// usage: node bench/harness.mjs [rounds=30] [throughput containers=200]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const rounds = Number(process.argv[2] ?? 30);
const many = Number(process.argv[3] ?? 200);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-bench-harness-'));
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
const runners = {
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

const loadBefore = os.loadavg()[0].toFixed(1);
const { Hako } = await import(path.join(repo, 'dist/index.js'));
const hako = new Hako({ root: path.join(work, 'hako') });
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const api = async (extra = {}) => {
  const r = await hako.run({ bundle, ...extra });
  if (r.code !== 0) throw new Error(`hako.run failed: ${r.stderr}`);
};
// With a limit the container gets its cgroup (every v1 hierarchy here); without, none of its own
// (a root container without a user namespace keeps the v1 devices cgroup): what that costs.
const limited = { limits: { pids: 1000 } };
await api(); // loads hako-init and the launcher thread once, as a test suite's first container does

// The runtime underneath, without the library: the same calls on this thread, output to /dev/null,
// with the config the library makes (no cgroup of its own).
const rt = await import(path.join(repo, 'dist/runtime/index.js'));
const { buildConfig } = await import(path.join(repo, 'dist/harness/options.js'));
const { config: libraryConfig } = buildConfig('bench', { bundle }, false);
const { native } = await import(path.join(repo, 'dist/sys/native.js'));
const quiet = { debug() {}, info() {}, warn: console.warn, error: console.error };
const ctx = { store: new rt.Store(path.join(work, 'direct')), rootless: false, log: quiet };
const devNull = fs.openSync('/dev/null', 'r+');
const direct = async (i) => {
  const created = rt.create(ctx, { id: `d${i}`, bundle, config: libraryConfig, extraFds: [0, 1, 2].map((to) => ({ from: devNull, to })) });
  const l = rt.startCreated(ctx, created);
  await native.waitPid(l.pid);
  rt.closeFd(l.pidfd);
  rt.deleteContainer(ctx, `d${i}`, true);
};
await direct('warm');

const times = {
  'hako API (hako.run)': [],
  'hako API, with a limit': [],
  'runtime called directly': [],
  ...Object.fromEntries(Object.keys(runners).map((k) => [k, []])),
};
const usable = {};
for (const [name, argv] of Object.entries(runners)) {
  const r = spawnSync(argv('probe')[0], argv('probe').slice(1), { encoding: 'utf8' });
  usable[name] = r.status === 0;
  if (!usable[name]) console.error(`${name}: not measured (${(r.stderr || r.error?.message || '').trim().split('\n').pop()})`);
}
for (let i = 0; i < rounds; i++) {
  // The two API runs swap places every round: the first after runc and crun pays for their
  // namespaces' teardown, which the kernel finishes in the background.
  for (const [name, extra] of i % 2
    ? [
        ['hako API, with a limit', limited],
        ['hako API (hako.run)', {}],
      ]
    : [
        ['hako API (hako.run)', {}],
        ['hako API, with a limit', limited],
      ]) {
    const t0 = process.hrtime.bigint();
    await api(extra);
    times[name].push(ms(t0));
  }
  const t1 = process.hrtime.bigint();
  await direct(i);
  times['runtime called directly'].push(ms(t1));
  for (const [name, argv] of Object.entries(runners)) {
    if (!usable[name]) continue;
    const a = argv(`b${i}`);
    const t = process.hrtime.bigint();
    const r = spawnSync(a[0], a.slice(1), { stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`${name} failed in round ${i}`);
    times[name].push(ms(t));
  }
}

// CPU time (ms) of this process's threads and of its reaped children (the containers), from
// /proc/self/stat: on a busy machine wall time is mostly waiting for a core, CPU time is not.
const cpu = () => {
  const f = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  const tick = 1000 / 100; // USER_HZ
  return { node: (Number(f[11]) + Number(f[12])) * tick, containers: (Number(f[13]) + Number(f[14])) * tick };
};
// Throughput: `many` containers started, run to their end and removed, by this one process.
async function throughput(parallel) {
  let next = 0;
  const t0 = process.hrtime.bigint();
  const c0 = cpu();
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next++ < many) await api();
    }),
  );
  const c1 = cpu();
  return { rate: many / (ms(t0) / 1000), node: (c1.node - c0.node) / many, containers: (c1.containers - c0.containers) / many };
}
const sequential = await throughput(1);
const eight = await throughput(8);
await hako.close();
const left = fs.readdirSync(path.join(work, 'hako')).filter((f) => !f.startsWith('.'));
fs.rmSync(work, { recursive: true, force: true });
if (left.length) throw new Error(`state dirs left behind: ${left.join(' ')}`);

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
const apiMs = m['hako API (hako.run)'];
console.log(
  `start-to-exit of /bin/true, ${rounds} interleaved rounds, medians (ms), load ${loadBefore} before, ${os.loadavg()[0].toFixed(1)} after:`,
);
for (const [k, v] of Object.entries(m)) console.log(`  ${k.padEnd(28)} ${v.toFixed(1)}`);
console.log(`ratio API/runtime called directly: ${(apiMs / m['runtime called directly']).toFixed(2)} (the library's own cost)`);
console.log(`ratio API with a limit/API: ${(m['hako API, with a limit'] / apiMs).toFixed(2)} (a cgroup of its own)`);
if (m.runc) console.log(`ratio API/runc run: ${(apiMs / m.runc).toFixed(2)}`);
if (m['crun (wrapper subtracted)']) console.log(`ratio API/crun run: ${(apiMs / m['crun (wrapper subtracted)']).toFixed(2)} (aim: <= 0.5)`);
console.log(`containers started and removed per second by one process (${many} each):`);
const per = (t) => `CPU per container: node ${t.node.toFixed(1)} ms, the container's processes ${t.containers.toFixed(1)} ms`;
console.log(`  one after another: ${sequential.rate.toFixed(1)}/s (${per(sequential)})`);
console.log(`  8 at a time:       ${eight.rate.toFixed(1)}/s (aim: >= 50/s) (${per(eight)})`);
