#!/usr/bin/env node
// What the preload shim (issue 16) costs the FHIR server, in one run: `hako up` rootless (as
// the test user, where the bundle runs under the shim on this host), the shipped config with
// and without its run.hako.shim.* annotations and nothing else changed, interleaved A B A B.
// FHIR reads (GET /Patient/ID) and writes (POST /Patient) with wrk, each after a 2 s warm-up;
// server CPU µs per request
// (the container's processes, /proc/PID/stat), requests/s and p99. Authorization off (the
// sandbox's cost, not authorization's: bench/auth.mjs). As root (it starts up as the user).
//
//   BENCH_ROUNDS=3 BENCH_SECONDS=5 BENCH_CONNECTIONS=8 BENCH_USER=hakotest node bundles/fhir/bench/shim.mjs
//
// BENCH_FHIR_TREE=DIR measures another copy of the bundle (config.json, package.json, build/,
// server/; below the repository), e.g. a commit's: git archive HEAD bundles/fhir | tar -x -C DIR.
//
// Prints markdown on stdout, progress on stderr.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chownSync, cpSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { loadBuilder } from '../build/index.mjs';
import { bundleDir, median, repo, seed, serverPid, TICK_US, treeTicks, waitReady, withoutStoreKey, wrk } from './lib.mjs';

const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 8);
const user = process.env.BENCH_USER ?? 'hakotest';
const hakoBin = join(repo, 'bin/hako');
const tree = process.env.BENCH_FHIR_TREE ?? bundleDir;
const log = (s) => console.error(`bench: ${s}`);

if (process.geteuid() !== 0)
  throw new Error('bench/shim.mjs runs as root: it starts hako up as the unprivileged user, where the shim is on');
const uid = Number(execFileSync('id', ['-u', user]).toString());
const gid = Number(execFileSync('id', ['-g', user]).toString());
const chownTree = (dir) => {
  chownSync(dir, uid, gid);
  for (const n of readdirSync(dir, { recursive: true })) chownSync(join(dir, n), uid, gid);
};

// Below the repository, where the build hook finds the workspace's packages; one rootfs for all runs.
const scratch = mkdtempSync(join(repo, 'test/.work-bench-shim-'));
const shared = join(scratch, 'fhir');
mkdirSync(shared);
for (const name of ['config.json', 'package.json']) copyFileSync(join(tree, name), join(shared, name));
for (const dir of ['build', 'server']) cpSync(join(tree, dir), join(shared, dir), { recursive: true });
log('building the root filesystem');
await (await loadBuilder()).buildFhirRootfs({ bundleDir: shared, log });
chownTree(scratch);
const shipped = JSON.parse(readFileSync(join(tree, 'config.json'), 'utf8'));

function lines(stream, onLine) {
  let pending = '';
  stream.setEncoding('utf8').on('data', (chunk) => {
    const all = (pending + chunk).split('\n');
    pending = all.pop();
    for (const l of all) onLine(l);
  });
}

// The shim's own share of the server's CPU, sampled (perf record, the cpu-clock software event:
// this VM has no hardware counters) for the length of one wrk run: the samples in hako-shim.so
// and in glibc's malloc_usable_size, which only the shim calls on this path. Steadier than two
// CPU times on a machine other work shares; it leaves out indirect costs (caches). Without perf:
// not measured.
const hasPerf = spawnSync('perf', ['--version']).status === 0;
function sampleShim(pid, file) {
  if (!hasPerf) return null;
  const child = spawn('perf', ['record', '-q', '-F', '999', '-e', 'cpu-clock', '-p', String(pid), '-o', file], { stdio: 'ignore' });
  const done = new Promise((resolve) => child.once('exit', resolve));
  return async () => {
    child.kill('SIGINT');
    await done;
    const r = spawnSync(
      'perf',
      ['report', '-i', file, '--stdio', '--no-children', '--sort', 'dso,sym', '-g', 'none', '--percent-limit', '0'],
      {
        encoding: 'utf8',
        maxBuffer: 1 << 26,
      },
    );
    let pct = 0;
    for (const line of r.stdout.split('\n')) {
      const m = /^\s*([\d.]+)%\s+(\S+)\s+\[\.\]\s+(\S+)/.exec(line);
      if (m && (m[2] === 'hako-shim.so' || /malloc_usable_size/.test(m[3]))) pct += Number(m[1]);
    }
    return pct;
  };
}

let runs = 0;
/** `hako up` as the user of a bundle on the shared rootfs; shim false drops run.hako.shim.*. */
async function start(shim) {
  const dir = join(scratch, `run-${++runs}`);
  const bundle = join(dir, 'bundle');
  const data = join(dir, 'data');
  mkdirSync(bundle, { recursive: true });
  mkdirSync(data, { mode: 0o700 });
  const config = withoutStoreKey(structuredClone(shipped));
  config.root.path = join(shared, 'rootfs');
  config.process.env.push('HAKO_FHIR_AUTH=off');
  config.mounts.find((m) => m.destination === '/data').source = data;
  if (!shim) for (const k of Object.keys(config.annotations)) if (k.startsWith('run.hako.shim.')) delete config.annotations[k];
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(config));
  writeFileSync(join(bundle, 'package.json'), JSON.stringify({ name: 'bench-shim', private: true }));
  chownTree(dir);
  const argv = [hakoBin, '--root', join(dir, 'state'), 'up', bundle, '--listen', '127.0.0.1:0', '--id', `shimh-bench-${runs}`];
  const child = spawn('setpriv', ['--reuid', user, '--regid', user, '--init-groups', '--reset-env', ...argv], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH },
    cwd: dir,
  });
  const tail = [];
  lines(child.stderr, (l) => tail.push(l));
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hako up did not serve within 120 s: ${tail.join(' | ')}`)), 120_000);
    lines(child.stdout, (l) => {
      const m = / at (http:\/\/[\d.]+:\d+)\//.exec(l);
      if (m) resolve((clearTimeout(timer), m[1]));
    });
    child.once('exit', (code) => reject(new Error(`hako up exited (${code}): ${tail.join(' | ')}`)));
  });
  await waitReady(base);
  const pid = serverPid(child.pid);
  const maps = readFileSync(`/proc/${pid}/maps`, 'utf8').includes('hako-shim.so');
  if (maps !== shim) throw new Error(`the server ${shim ? 'did not map' : 'mapped'} the shim`);
  const stop = async () => {
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
    rmSync(dir, { recursive: true, force: true });
  };
  return { base, pid, stop, warnings: () => tail.filter((l) => /preload shim refused/.test(l)) };
}

async function measure(shim) {
  const run = await start(shim);
  try {
    const ids = await seed(run.base);
    const out = {};
    for (const [kind, args] of [
      ['read', [`${run.base}/Patient/${ids[50]}`]],
      ['write', ['-s', join(bundleDir, 'bench/create-patient.lua'), run.base]],
    ]) {
      wrk(args, { connections, seconds: 2 }); // warm-up: V8 compiles the path first
      const before = treeTicks(run.pid);
      const w = wrk(args, { connections, seconds });
      const cpuUs = ((treeTicks(run.pid) - before) * TICK_US) / w.requests;
      // Sampling costs the sampled process too: a run of its own, after the measured one.
      const sampled = shim ? sampleShim(run.pid, join(scratch, `perf-${runs}-${kind}.data`)) : null;
      if (sampled) {
        await new Promise((r) => setTimeout(r, 300)); // perf attached
        wrk(args, { connections, seconds });
      }
      out[kind] = { ...w, cpuUs, shimPct: sampled ? await sampled() : NaN };
    }
    if (run.warnings().length) throw new Error(`the shim refused the server: ${run.warnings()[0]}`);
    return out;
  } finally {
    await run.stop();
  }
}

const results = { off: [], on: [] };
try {
  for (let r = 1; r <= rounds; r++)
    for (const shim of r % 2 ? [false, true] : [true, false]) {
      log(`round ${r}: ${shim ? 'with' : 'without'} the shim`);
      results[shim ? 'on' : 'off'].push(await measure(shim));
    }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

const f = (x, d = 1) => x.toFixed(d);
const row = (kind, key, label, d) => {
  const off = median(results.off.map((x) => x[kind][key]));
  const on = median(results.on.map((x) => x[kind][key]));
  return `| ${kind} ${label} | ${f(off, d)} | ${f(on, d)} | ${f(on / off, 3)} |`;
};
console.log(`FHIR server under \`hako up\` rootless as ${user}, the shipped config with and without run.hako.shim.*`);
console.log(
  `(memory 512M, processes 64, exec /node, connect /data/lock.*); medians of ${rounds} interleaved rounds, wrk -t1 -c${connections} -d${seconds}s, load ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}\n`,
);
console.log('| | without shim | with shim | ratio |');
console.log('| --- | --- | --- | --- |');
for (const kind of ['read', 'write']) {
  console.log(row(kind, 'cpuUs', 'server CPU µs/request', 1));
  if (hasPerf)
    console.log(
      `| ${kind} server CPU in the shim (perf samples: hako-shim.so + malloc_usable_size) | — | ${f(median(results.on.map((x) => x[kind].shimPct)), 2)}% | |`,
    );
  console.log(row(kind, 'rps', 'requests/s', 0));
  console.log(row(kind, 'p99ms', 'p99 ms', 2));
}
console.log(`\nper round, server CPU µs/request (read / write)${hasPerf ? ', with the shim its sampled share' : ''}:`);
for (const k of ['off', 'on'])
  console.log(
    `- ${k === 'on' ? 'with' : 'without'}: ${results[k].map((x) => `${f(x.read.cpuUs)} / ${f(x.write.cpuUs)}${k === 'on' && hasPerf ? ` (${f(x.read.shimPct, 2)}% / ${f(x.write.shimPct, 2)}%)` : ''}`).join(', ')}`,
  );
