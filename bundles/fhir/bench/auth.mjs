#!/usr/bin/env node
// What SMART on FHIR authorization costs on the read path (issue 14): the bundled server run
// bare twice, interleaved A B A B — A with HAKO_FHIR_AUTH=off, B with authorization on (a
// backend-services client, its ES384 token on every request: token check, scope check, the
// result filter and one AuditEvent per read, batched into the journal). wrk `GET /Patient/ID`;
// medians of requests/s, p99 and the server's CPU µs per request (/proc/PID/stat, every thread,
// the audit writer's fsyncs included). Prints markdown on stdout, progress on stderr.
//
// Whole-process CPU is noisy on a busy machine, so B's share is also measured a second way, which
// load does not move: B runs under V8's sampling profiler and the bench sums the samples whose
// stack is inside the authorization code (token check, scope rules, result filter) against all
// samples of the serving phase.
//
//   BENCH_ROUNDS=5 BENCH_SECONDS=5 BENCH_CONNECTIONS=8 node bundles/fhir/bench/auth.mjs
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { bundleDir, cpuTicks, freePort, median, TICK_US, waitReady, wrk } from './lib.mjs';
import { profileShare } from './profile-share.mjs';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 8);
const say = (s) => process.stderr.write(`bench-auth: ${s}\n`);

// Under the bundle, where the bundled helper finds node_modules.
mkdirSync(join(bundleDir, '.cache'), { recursive: true });
const work = mkdtempSync(join(bundleDir, '.cache', 'auth-bench-'));
let child;
try {
  // The test helper (TypeScript) bundles the server with the auth service wired and registers clients.
  await build({
    entryPoints: [join(bundleDir, 'test', 'auth-helper.ts')],
    outfile: join(work, 'helper.mjs'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: ['esbuild', 'jose', 'otpauth', '@medplum/*'],
    define: { 'import.meta.dirname': JSON.stringify(join(bundleDir, 'test')) },
    logLevel: 'error',
  });
  const helper = await import(pathToFileURL(join(work, 'helper.mjs')).href);
  await helper.bundleWithAuth(join(work, 'app'), join(bundleDir, '.cache', 'auth-bench-src'));
  // A measurement-only build (never shipped): the same server with AuditEvents not written, to
  // tell the token and scope checks' share from the audit trail's.
  await helper.bundleWithAuth(join(work, 'app-noaudit'), join(bundleDir, '.cache', 'auth-bench-src2'), (serverDir) => {
    const file = join(serverDir, 'auth', 'audit.ts');
    const text = readFileSync(file, 'utf8');
    const patched = text.replace('  record(event: AuditEvent): void {\n', '  record(event: AuditEvent): void {\n    if (event) return;\n');
    if (patched === text) throw new Error('audit.ts changed: cannot build the no-audit variant');
    writeFileSync(file, patched);
  });

  // The functions http.ts calls for authorization (auth/index.ts, auth/enforce.ts).
  const AUTH_FUNCTIONS = ['authenticate', 'refusal', 'searchFilter', 'visible'];
  const profiled = [];
  const start = async (variant, profileDir) => {
    const auth = variant !== 'off';
    const data = mkdtempSync(join(work, 'data-'));
    const port = await freePort();
    const flags = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
    child = spawn(process.execPath, [...flags, join(work, variant === 'no-audit' ? 'app-noaudit' : 'app', 'server.js')], {
      env: {
        PATH: process.env.PATH,
        UV_USE_IO_URING: '0',
        HAKO_FHIR_DATA: data,
        HAKO_FHIR_LISTEN: `127.0.0.1:${port}`,
        HAKO_FHIR_AUTH: auth ? 'on' : 'off',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const base = `http://127.0.0.1:${port}`;
    await waitReady(base);
    const headers = { 'content-type': 'application/fhir+json' };
    if (auth) {
      const client = await helper.registerClient(data, 'bench', 'system/Patient.crs', { budget: 1e9 });
      await new Promise((r) => setTimeout(r, 1_100));
      headers.authorization = `Bearer ${await helper.getToken(base, client, 'system/Patient.crs')}`;
    }
    const res = await fetch(`${base}/Patient`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Bench' }] }),
    });
    if (res.status !== 201) throw new Error(`create: ${res.status} ${await res.text()}`);
    const { id } = await res.json();
    return { base, id, headers, pid: child.pid };
  };
  const stop = async () => {
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
  };

  const results = { off: [], 'no-audit': [], on: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const variant of ['off', 'no-audit', 'on']) {
      const s = await start(variant);
      const args = [`${s.base}/Patient/${s.id}`];
      if (s.headers.authorization) args.unshift('-H', `Authorization: ${s.headers.authorization}`);
      wrk(args, { connections: CONNECTIONS, seconds: 1 }); // warm-up
      const before = cpuTicks(s.pid);
      const r = wrk(args, { connections: CONNECTIONS, seconds: SECONDS });
      await new Promise((resolve) => setTimeout(resolve, 300)); // the last audit batch
      const cpuUs = ((cpuTicks(s.pid) - before) * TICK_US) / r.requests;
      if (r.non2xx) throw new Error(`${variant}: ${r.non2xx} non-2xx answers`);
      results[variant].push({ ...r, cpuUs });
      say(`round ${round + 1} ${variant}: ${r.rps.toFixed(0)} req/s, p99 ${r.p99ms.toFixed(2)} ms, ${cpuUs.toFixed(1)} µs CPU/request`);
      await stop();
    }
    // B once more under the profiler (its CPU figures are not used: the profiler has a cost).
    const profileDir = join(work, `profile-${round}`);
    const s = await start('no-audit', profileDir);
    const args = ['-H', `Authorization: ${s.headers.authorization}`, `${s.base}/Patient/${s.id}`];
    wrk(args, { connections: CONNECTIONS, seconds: SECONDS });
    await stop();
    const share = profileShare(profileDir, AUTH_FUNCTIONS);
    profiled.push(share);
    say(`round ${round + 1} profile of B: authorization ${(share * 100).toFixed(2)}% of the serving samples`);
  }
  const m = (v, k) => median(results[v].map((r) => r[k]));
  const row = (label, k, digits) =>
    `| ${label} | ${m('off', k).toFixed(digits)} | ${m('no-audit', k).toFixed(digits)} | ${m('on', k).toFixed(digits)} | **${(m('no-audit', k) / m('off', k)).toFixed(3)}** | **${(m('on', k) / m('off', k)).toFixed(3)}** |`;
  console.log(`Command: \`BENCH_ROUNDS=${ROUNDS} BENCH_SECONDS=${SECONDS} BENCH_CONNECTIONS=${CONNECTIONS} node bundles/fhir/bench/auth.mjs\` (wrk -t1 -c${CONNECTIONS}, ${SECONDS} s per load, ${ROUNDS} interleaved rounds, medians; load average at the end ${loadavg()[0].toFixed(2)}).

| read \`GET /Patient/ID\` | A: authorization off | B: token + scopes, no audit (measurement build) | C: on (token + scopes + AuditEvent) | B / A | C / A |
| --- | --- | --- | --- | --- | --- |
${row('requests/s', 'rps', 0)}
${row('p99 ms', 'p99ms', 2)}
${row('server CPU µs/request', 'cpuUs', 1)}

Authorization's share of B's serving CPU (sampling profiler, samples inside ${AUTH_FUNCTIONS.join(', ')}; median of ${ROUNDS}): **${(median(profiled) * 100).toFixed(2)}%** (rounds: ${profiled.map((x) => (x * 100).toFixed(2) + '%').join(', ')}).

Per round (A / B / C, µs CPU per request): ${results.off.map((r, i) => `${r.cpuUs.toFixed(1)} / ${results['no-audit'][i].cpuUs.toFixed(1)} / ${results.on[i].cpuUs.toFixed(1)}`).join('; ')}.`);
} finally {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
  rmSync(join(bundleDir, '.cache', 'auth-bench-src'), { recursive: true, force: true });
  rmSync(join(bundleDir, '.cache', 'auth-bench-src2'), { recursive: true, force: true });
}
