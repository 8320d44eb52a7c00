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
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadBuilder } from '../build/index.mjs';

const repo = fileURLToPath(new URL('../../..', import.meta.url));
const bundleDir = join(repo, 'bundles/fhir');
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 8);
const TICK_US = 1e6 / Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
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

async function freePort() {
  const srv = createServer();
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

const bare = {
  name: 'bare',
  start(port, data) {
    return spawn(process.execPath, [join(bundleDir, 'rootfs/server.js')], {
      env: { UV_USE_IO_URING: '0', HAKO_FHIR_DATA: data, HAKO_FHIR_LISTEN: `127.0.0.1:${port}` },
      stdio: 'ignore',
    });
  },
};
const hako = {
  name: 'hako',
  start(port, data) {
    const bundle = join(data, '..', 'bundle');
    const config = JSON.parse(readFileSync(join(bundleDir, 'config.json'), 'utf8'));
    config.root.path = join(bundleDir, 'rootfs');
    config.mounts.find((m) => m.destination === '/data').source = data;
    mkdirSync(bundle);
    writeFileSync(join(bundle, 'config.json'), JSON.stringify(config));
    const root = join(data, '..', 'state');
    return spawn(process.execPath, [join(repo, 'dist/cli/main.js'), '--root', root, 'up', bundle, '--listen', `127.0.0.1:${port}`], {
      stdio: 'ignore',
    });
  },
};

/** The pid of the FHIR server itself: the child, or under hako the descendant running /server.js. */
function serverPid(root) {
  const children = new Map();
  for (const name of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const ppid = Number(readFileSync(`/proc/${name}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      // the process ended while we looked
    }
  }
  const queue = [root];
  while (queue.length) {
    const pid = queue.shift();
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (argv.some((a) => a.endsWith('server.js'))) return pid;
    queue.push(...(children.get(pid) ?? []));
  }
  throw new Error(`no server.js process under pid ${root}`);
}

function cpuTicks(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime (fields 14 and 15)
}

async function waitReady(base) {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${base}/metadata`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the server at ${base} did not become ready within 60 s`);
}

function wrk(args) {
  const out = execFileSync('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', ...args]).toString();
  const requests = Number(/(\d+) requests in/.exec(out)[1]);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)[1]);
  const [, value, unit] = /\s99%\s+([\d.]+)(us|ms|s)/.exec(out);
  const p99ms = Number(value) * { us: 1e-3, ms: 1, s: 1e3 }[unit];
  return { requests, rps, p99ms };
}

async function measure(variant) {
  const work = mkdtempSync(join(tmpdir(), 'hako-bench-'));
  const data = join(work, 'data');
  mkdirSync(data, { mode: 0o700 });
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = variant.start(port, data);
  try {
    await waitReady(base);
    const pid = serverPid(child.pid);
    const ids = [];
    for (let i = 0; i < 100; i++) {
      const res = await fetch(`${base}/Patient`, {
        method: 'POST',
        headers: { 'content-type': 'application/fhir+json' },
        body: JSON.stringify({ resourceType: 'Patient', name: [{ family: `Seed${i}` }] }),
      });
      ids.push((await res.json()).id);
    }
    const result = {};
    for (const [kind, args] of [
      ['read', [`${base}/Patient/${ids[50]}`]],
      ['write', ['-s', join(repo, 'bundles/fhir/bench/create-patient.lua'), base]],
    ]) {
      const before = cpuTicks(pid);
      const run = wrk(args);
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

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

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
