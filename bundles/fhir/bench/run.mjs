#!/usr/bin/env node
// FHIR server overhead: the same bundled server bare (A) and under `hako up` (B), runs
// interleaved A B A B, wrk reads and writes on loopback, medians and B/A ratios, plus the
// server process's CPU time per request from /proc/PID/stat (steadier than requests/s here).
// Both start from an empty data directory: under hako, a scratch bundle whose config is
// bundles/fhir's with the rootfs path made absolute and /data bound to that directory.
// When `hako up` is not available, B is a second bare run, so the harness itself is proven.
//
//   node bundles/fhir/bench/run.mjs            BENCH_ROUNDS=3 BENCH_SECONDS=5 BENCH_CONNECTIONS=8
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadBuilder } from '../build/index.mjs';
import { bundleDir, cpuTicks, freePort, median, repo, seed, serverPid, TICK_US, waitReady, withoutStoreKey, wrk } from './lib.mjs';

const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 8);
const log = (s) => console.error(`bench: ${s}`);

function hakoUpAvailable() {
  const cli = join(repo, 'dist/cli/main.js');
  if (!existsSync(cli)) return false;
  try {
    // `up --help` succeeds even without an up command (the CLI prints its general help).
    return /^\s+up\b/m.test(execFileSync(process.execPath, [cli, '--help']).toString());
  } catch {
    return false;
  }
}

const bare = {
  name: 'bare',
  start(port, data) {
    return spawn(process.execPath, [join(bundleDir, 'rootfs/server.js')], {
      env: { UV_USE_IO_URING: '0', HAKO_FHIR_AUTH: 'off', HAKO_FHIR_DATA: data, HAKO_FHIR_LISTEN: `127.0.0.1:${port}` },
      stdio: 'ignore',
    });
  },
};
const hako = {
  name: 'hako',
  start(port, data) {
    const bundle = join(data, '..', 'bundle');
    const config = withoutStoreKey(JSON.parse(readFileSync(join(bundleDir, 'config.json'), 'utf8')));
    config.root.path = join(bundleDir, 'rootfs');
    config.process.env.push('HAKO_FHIR_AUTH=off'); // the sandbox's cost, not authorization's (bench/auth.mjs)
    config.mounts.find((m) => m.destination === '/data').source = data;
    mkdirSync(bundle);
    writeFileSync(join(bundle, 'config.json'), JSON.stringify(config));
    const root = join(data, '..', 'state');
    return spawn(process.execPath, [join(repo, 'dist/cli/main.js'), '--root', root, 'up', bundle, '--listen', `127.0.0.1:${port}`], {
      stdio: 'ignore',
    });
  },
};

async function measure(variant) {
  const work = mkdtempSync(join(tmpdir(), 'hako-bench-'));
  chmodSync(work, 0o755); // as root, up runs the server as a subordinate uid: it must reach data/
  const data = join(work, 'data');
  mkdirSync(data, { mode: 0o700 });
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = variant.start(port, data);
  try {
    await waitReady(base);
    const pid = serverPid(child.pid);
    const ids = await seed(base);
    const result = {};
    for (const [kind, args] of [
      ['read', [`${base}/Patient/${ids[50]}`]],
      ['write', ['-s', join(repo, 'bundles/fhir/bench/create-patient.lua'), base]],
    ]) {
      const before = cpuTicks(pid);
      const run = wrk(args, { connections, seconds });
      const cpuUs = ((cpuTicks(pid) - before) * TICK_US) / run.requests;
      result[kind] = { ...run, cpuUs };
    }
    return result;
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve()));
    rmSync(work, { recursive: true, force: true });
  }
}

const { buildFhirRootfs } = await loadBuilder();
await buildFhirRootfs({ bundleDir, log });
const B = hakoUpAvailable() ? hako : { ...bare, name: 'bare (B)' };
if (B !== hako) log('`hako up` is not available (no dist/cli/main.js with an up command): measuring bare against bare');

const runs = { A: [], B: [] };
for (let round = 1; round <= rounds; round++) {
  for (const [label, variant] of [
    ['A', bare],
    ['B', B],
  ]) {
    log(`round ${round}/${rounds}: ${variant.name}`);
    runs[label].push(await measure(variant));
  }
}

const rows = [];
for (const kind of ['read', 'write']) {
  const pick = (label, key) => median(runs[label].map((r) => r[kind][key]));
  for (const [key, what] of [
    ['rps', 'requests/s'],
    ['p99ms', 'p99 ms'],
    ['cpuUs', 'server CPU us/request'],
  ]) {
    const a = pick('A', key);
    const b = pick('B', key);
    rows.push({ load: kind, metric: what, [bare.name]: +a.toFixed(2), [B.name]: +b.toFixed(2), ratio: +(b / a).toFixed(3) });
  }
}
console.log(
  `FHIR server, ${rounds} interleaved rounds, wrk 1 thread ${connections} connections ${seconds} s each; medians, ratio = ${B.name} / bare`,
);
console.table(rows);
