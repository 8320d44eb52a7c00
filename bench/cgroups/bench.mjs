// Cgroup benchmark, run inside the test VM (real cgroup v2) by `bash test/vm/run.sh --bench`.
// Interleaves (A B A B …) and reports medians:
//   runc:   `runc run` of a busybox `true` bundle with linux.resources (create+start+delete);
//   hako:   `hako run` of the same bundle (bin/hako: the bundled CLI with its code cache, as users run
//           it); the runtime creates the container's cgroup, writes the limits, joins it and
//           removes it on delete (ratio hako/runc);
//   node:   `node -e 0`, the floor any Node CLI pays (under TCG most of hako's time);
//   driver: hako's cgroup part alone, in-process: plan + create (limits) + addProcess + destroy.
// The driver figure is a part of a container's life, not comparable to a whole `runc run`;
// runc's own cgroup part is not separable from its CLI.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';

const repo = resolve(import.meta.dirname, '../..');
const { prepareCgroup, detect } = await import(join(repo, 'dist/cgroups/index.js'));
const N = Number(process.env.BENCH_N || 10);
const work = mkdtempSync('/tmp/hako-bench-');
const resources = { memory: { limit: 64 << 20, swap: 64 << 20 }, pids: { limit: 64 }, cpu: { shares: 512, quota: 50000, period: 100000 } };

// A busybox rootfs and a plain OCI config (runc spec's defaults, trimmed).
const bundle = join(work, 'bundle');
mkdirSync(join(bundle, 'rootfs/bin'), { recursive: true });
for (const d of ['proc', 'dev', 'sys', 'tmp']) mkdirSync(join(bundle, 'rootfs', d));
copyFileSync('/bin/busybox', join(bundle, 'rootfs/bin/busybox'));
for (const name of ['sh', 'true']) symlinkSync('busybox', join(bundle, 'rootfs/bin', name));
writeFileSync(
  join(bundle, 'config.json'),
  JSON.stringify({
    ociVersion: '1.0.2',
    process: { terminal: false, user: { uid: 0, gid: 0 }, args: ['/bin/true'], env: ['PATH=/bin'], cwd: '/', noNewPrivileges: true },
    root: { path: 'rootfs', readonly: true },
    hostname: 'bench',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    ],
    linux: { resources, namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }] },
  }),
);

function timeCommand(cmd, args) {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${(r.stderr || '').trim().split('\n').slice(0, 6).join(' | ')}`);
  return ms;
}

const runc = (i) => timeCommand('runc', ['--root', join(work, 'runc'), 'run', '--no-pivot', '--bundle', bundle, `r${i}`]);
const hako = (i) => timeCommand(join(repo, 'bin/hako'), ['--root', join(work, 'hako'), 'run', '--no-pivot', '--bundle', bundle, `h${i}`]);
const node = () => timeCommand('node', ['-e', '0']);
const cgroupsLeft = () =>
  execFileSync('sh', ['-c', `ls ${host.mount}/hako 2>/dev/null | grep -c '^h' || true`], { encoding: 'utf8' }).trim();

// One long-lived process joins each cgroup and goes back, so the driver time holds no fork.
const host = detect();
const sleeper = spawn('sleep', ['3600']);
const home = `${host.mount}${host.ownCgroup === '/' ? '' : host.ownCgroup}/cgroup.procs`;
async function driver(i) {
  const t0 = performance.now();
  const { manager } = prepareCgroup({ id: `d${i}`, resources, host, strict: true });
  manager.create();
  manager.addProcess(sleeper.pid);
  const ms = performance.now() - t0;
  writeFileSync(home, String(sleeper.pid));
  const t1 = performance.now();
  await manager.destroy();
  return ms + performance.now() - t1;
}

let hakoProblem = null;
try {
  hako('probe');
} catch (e) {
  hakoProblem = e.message;
}

const samples = { runc: [], hako: [], node: [], driver: [] };
runc('warm');
for (let i = 0; i < N; i++) {
  samples.runc.push(runc(i));
  if (!hakoProblem) samples.hako.push(hako(i));
  samples.node.push(node());
  samples.driver.push(await driver(i));
}
sleeper.kill('SIGKILL');

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (ms) => `${ms.toFixed(1)} ms`;
console.log(
  `cgroup bench in the VM: kernel ${execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()}, ${N} interleaved rounds, medians`,
);
console.log(`limits: memory 64 MiB (no swap), pids 64, cpu shares 512, quota 50000/100000`);
console.log(
  `runc run (create+start+delete, ${execFileSync('runc', ['--version'], { encoding: 'utf8' }).split('\n')[0]}): ${fmt(median(samples.runc))}`,
);
if (hakoProblem) {
  console.log(`hako run: not measured, the CLI could not run the bundle here: ${hakoProblem}`);
} else {
  console.log(
    `hako run (create+start+delete, cgroup with limits): ${fmt(median(samples.hako))}; ratio hako/runc ${(median(samples.hako) / median(samples.runc)).toFixed(2)}; hako cgroups left behind: ${cgroupsLeft()}`,
  );
}
console.log(
  `node -e 0 (start-up floor of any Node CLI): ${fmt(median(samples.node))}` +
    (hakoProblem ? '' : `; hako run minus it: ${fmt(median(samples.hako) - median(samples.node))}`),
);
console.log(
  `hako driver, cgroup part only (plan+create+limits+addProcess+destroy): ${fmt(median(samples.driver))} ` +
    `(${((100 * median(samples.driver)) / median(samples.runc)).toFixed(1)}% of a whole runc run)`,
);
