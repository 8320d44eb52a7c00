#!/usr/bin/env node
// A pod to running through containerd 1.6's CRI, as the kubelet asks for it: RunPodSandbox
// (the pause container, CNI bridge), CreateContainer and StartContainer of a busybox
// `sleep`, until ContainerStatus says RUNNING. hako and runc are two runtime entries of one
// containerd (`runtime_handler` "hako" / "runc"), rounds interleaved (hako runc hako runc …),
// medians of each step and of the total, and hako's ratio to runc. Teardown (StopPodSandbox,
// RemovePodSandbox) is not timed. The CRI suite's own helpers (test/e2e/cri/) start the
// daemon and make the images; esbuild compiles them first (Node 20 runs no TypeScript).
//
// Usage (root): node bench/cri.mjs [rounds]   (default 10; BENCH_N too)
// Needs: containerd, ctr, runc, cc, containernetworking-plugins, `npm run build`, and the
// busybox rootfs the tests build (test/.work/busybox-rootfs, or $HAKO_TEST_WORK's).
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ROUNDS = Number(process.argv[2] ?? process.env.BENCH_N ?? 10);
const WORK = process.env.HAKO_TEST_WORK ? path.resolve(process.env.HAKO_TEST_WORK) : path.join(REPO, 'test/.work');
const ROOTFS = path.join(WORK, 'busybox-rootfs');

function fail(sentence) {
  console.error(`bench/cri: ${sentence}`);
  process.exit(1);
}
if (process.geteuid() !== 0) fail('run as root (containerd and its CRI run as root)');
for (const c of ['containerd', 'ctr', 'runc', 'cc'])
  if (spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0) fail(`${c} is not installed (test/debian-packages.txt)`);
if (!fs.existsSync(path.join(ROOTFS, 'bin/sh'))) fail(`${ROOTFS} is missing: run the tests once (vitest's global setup builds it)`);

// One module of the suite's helpers, in the repo (so @grpc/* resolve from its node_modules);
// import.meta.url is pinned to their folder so they find api.proto and pause.c.
const helpers = path.join(REPO, '.cache', `bench-cri-${process.pid}.mjs`);
const entry = path.join(REPO, 'test/e2e/cri/bench-entry.ts');
await build({
  stdin: {
    contents: [
      "export { startCriContainerd } from './daemon.js';",
      "export { pauseArchive, busyboxArchive, BUSYBOX_IMAGE } from './images.js';",
      "export { sandboxConfig, containerConfig } from './pod.js';",
      "export { clientDir, removeTree } from '../clients/daemons.js';",
    ].join('\n'),
    resolveDir: path.dirname(entry),
    loader: 'ts',
  },
  outfile: helpers,
  bundle: true,
  packages: 'external',
  platform: 'node',
  format: 'esm',
  logLevel: 'error',
  define: { 'import.meta.url': JSON.stringify(pathToFileURL(entry).href) },
});
const { startCriContainerd, pauseArchive, busyboxArchive, BUSYBOX_IMAGE, sandboxConfig, containerConfig, clientDir, removeTree } =
  await import(helpers);
fs.rmSync(helpers);

const RUNTIMES = {
  hako: path.join(REPO, 'bin/hako'),
  runc: spawnSync('sh', ['-c', 'command -v runc'], { encoding: 'utf8' }).stdout.trim(),
};
const dir = clientDir('bench-cri');
const cgroupParent = `/cri-bench-${process.pid}`;
const ctd = await startCriContainerd({ dir, runtimes: RUNTIMES, network: { bridge: 'cri-bench0', subnet: '10.219.20.0/24' } });
const rt = ctd.cri.runtime;

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
const now = () => Number(process.hrtime.bigint()) / 1e6;

let n = 0;
/** One pod to running; returns the milliseconds of each step. */
async function podToRunning(handler) {
  const config = sandboxConfig(`cri-bench-${handler}-${n++}`, { cgroupParent, logRoot: path.join(dir, 'pods') });
  const t0 = now();
  const { pod_sandbox_id } = await rt.RunPodSandbox({ config, runtime_handler: handler });
  const t1 = now();
  const c = containerConfig(config, 'app', BUSYBOX_IMAGE, ['sleep', '600']);
  const { container_id } = await rt.CreateContainer({ pod_sandbox_id, config: c, sandbox_config: config });
  const t2 = now();
  await rt.StartContainer({ container_id });
  for (;;) {
    const { status } = await rt.ContainerStatus({ container_id });
    if (status.state === 'CONTAINER_RUNNING') break;
    if (status.state === 'CONTAINER_EXITED') throw new Error(`${handler}: the container exited (${status.exit_code})`);
  }
  const t3 = now();
  await rt.StopPodSandbox({ pod_sandbox_id });
  await rt.RemovePodSandbox({ pod_sandbox_id });
  return { sandbox: t1 - t0, create: t2 - t1, start: t3 - t2, total: t3 - t0 };
}

try {
  for (const tar of [pauseArchive(dir), busyboxArchive(dir, ROOTFS)]) {
    const r = ctd.ctr(['images', 'import', tar]);
    if (r.status !== 0) throw new Error(`ctr images import ${tar}: ${r.stderr}`);
  }
  for (const h of Object.keys(RUNTIMES)) await podToRunning(h); // warm-up: page cache, snapshots, the CNI
  const samples = Object.fromEntries(Object.keys(RUNTIMES).map((h) => [h, []]));
  for (let i = 0; i < ROUNDS; i++) for (const h of Object.keys(RUNTIMES)) samples[h].push(await podToRunning(h));

  const steps = ['sandbox', 'create', 'start', 'total'];
  const label = {
    sandbox: 'RunPodSandbox (pause + CNI)',
    create: 'CreateContainer',
    start: 'StartContainer to RUNNING',
    total: 'pod to running (sum)',
  };
  const runcVersion = spawnSync(RUNTIMES.runc, ['--version'], { encoding: 'utf8' })
    .stdout.split('\n')[0]
    .replace(/^runc version /, '');
  console.log(`\n${ROUNDS} rounds, medians, ms | hako | runc ${runcVersion} | hako / runc`);
  console.log('--- | --- | --- | ---');
  for (const s of steps) {
    const h = median(samples.hako.map((x) => x[s]));
    const r = median(samples.runc.map((x) => x[s]));
    console.log(`${label[s]} | ${h.toFixed(0)} | ${r.toFixed(0)} | ${(h / r).toFixed(2)}×`);
  }
} finally {
  await ctd.stop();
  for (const root of ['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids', 'systemd', 'unified']) {
    const base = path.join('/sys/fs/cgroup', root, cgroupParent);
    if (!fs.existsSync(base)) continue;
    for (const d of fs.readdirSync(base, { withFileTypes: true }).filter((e) => e.isDirectory()))
      spawnSync('rmdir', [path.join(base, d.name)]);
    spawnSync('rmdir', [base]);
  }
  removeTree(dir);
}
