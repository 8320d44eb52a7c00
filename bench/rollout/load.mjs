#!/usr/bin/env node
// A constant load of FHIR reads and writes on keep-alive connections, as real clients send
// it, from a process of its own: node load.mjs URL CONNECTIONS OUT.json. It runs until SIGTERM,
// then writes OUT.json: every request's start, wait (ms) and outcome, failures by kind, and the
// ids of the writes the server acknowledged (201). Nothing is retried: a failure is counted.
import http from 'node:http';
import fs from 'node:fs';

const [url, connections = '4', out] = process.argv.slice(2);
if (!url || !out) {
  process.stderr.write('usage: node load.mjs URL CONNECTIONS OUT.json\n');
  process.exit(2);
}
const base = new URL(url);
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(connections) });
const samples = []; // [startMs since t0, waitMs, ok 1 | 0]
const failures = {};
const acked = [];
const t0 = Date.now();
let stopping = false;

function request(method, path, body) {
  return new Promise((resolve) => {
    const started = performance.now();
    const req = http.request(
      {
        host: base.hostname,
        port: base.port,
        path,
        method,
        agent,
        headers: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode, text, started, waited: performance.now() - started }));
        res.on('error', (e) => resolve({ error: e.code ?? e.message, started, waited: performance.now() - started }));
      },
    );
    req.on('error', (e) => resolve({ error: e.code ?? e.message, started, waited: performance.now() - started }));
    req.end(body);
  });
}

function record(r, okStatus) {
  const ok = r.status !== undefined && okStatus(r.status);
  samples.push([Math.round(r.started + performance.timeOrigin - t0), Math.round(r.waited * 10) / 10, ok ? 1 : 0]);
  if (!ok) {
    const kind = r.error ?? `HTTP ${r.status}`;
    failures[kind] = (failures[kind] ?? 0) + 1;
  }
  return ok;
}

async function worker(n) {
  for (let i = 0; !stopping; i++) {
    const w = await request('POST', '/Patient', JSON.stringify({ resourceType: 'Patient', name: [{ family: `load-${n}-${i}` }] }));
    if (record(w, (s) => s === 201)) acked.push(JSON.parse(w.text).id);
    if (stopping) break;
    const id = acked[acked.length - 1];
    if (id) record(await request('GET', `/Patient/${id}`), (s) => s === 200);
  }
}

process.on('SIGTERM', () => (stopping = true));
await Promise.all(Array.from({ length: Number(connections) }, (_, n) => worker(n)));
fs.writeFileSync(out, JSON.stringify({ t0, samples, failures, acked }));
process.exit(0);
