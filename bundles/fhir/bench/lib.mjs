// What the FHIR benchmarks share (run.mjs's approach, factored for policy.mjs): a free port,
// readiness, wrk, and server CPU time from /proc/PID/stat (user + system ticks, steadier than
// requests/s on a shared machine).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = fileURLToPath(new URL('../../..', import.meta.url));
export const bundleDir = join(repo, 'bundles/fhir');
export const TICK_US = 1e6 / Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());

export async function freePort() {
  const srv = createServer();
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

export async function waitReady(base, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${base}/metadata`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the server at ${base} did not become ready within ${timeoutMs / 1000} s`);
}

/** ppid → child pids, for every process now. */
function childrenMap() {
  const children = new Map();
  for (const name of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const ppid = Number(readFileSync(`/proc/${name}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      // the process ended while we looked
    }
  }
  return children;
}

/** The pid of the FHIR server itself: root, or under hako the descendant running /server.js. */
export function serverPid(root) {
  const children = childrenMap();
  const queue = [root];
  while (queue.length) {
    const pid = queue.shift();
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (argv.some((a) => a.endsWith('server.js'))) return pid;
    queue.push(...(children.get(pid) ?? []));
  }
  throw new Error(`no server.js process under pid ${root}`);
}

/** root and every process below it now. */
export function processTree(root) {
  const children = childrenMap();
  const out = [];
  const queue = [root];
  while (queue.length) {
    const pid = queue.shift();
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

function statFields(pid) {
  return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
}

/** utime + stime of one process, all its threads (fields 14 and 15), in ticks. */
export function cpuTicks(pid) {
  const f = statFields(pid);
  return Number(f[11]) + Number(f[12]);
}

/** CPU ticks of a process tree: every live process below root, plus what root has reaped
 *  (cutime + cstime): a container's processes, whose init is root. */
export function treeTicks(root) {
  let ticks = 0;
  for (const pid of processTree(root)) {
    try {
      const f = statFields(pid);
      ticks += Number(f[11]) + Number(f[12]) + (pid === root ? Number(f[13]) + Number(f[14]) : 0);
    } catch {
      // it ended between the listing and the read
    }
  }
  return ticks;
}

export function wrk(args, { connections = 8, seconds = 5 } = {}) {
  const out = execFileSync('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', ...args]).toString();
  const requests = Number(/(\d+) requests in/.exec(out)[1]);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)[1]);
  const [, value, unit] = /\s99%\s+([\d.]+)(us|ms|s)/.exec(out);
  const p99ms = Number(value) * { us: 1e-3, ms: 1, s: 1e3 }[unit];
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  return { requests, rps, p99ms, non2xx: errors ? Number(errors[1]) : 0 };
}

export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The nearest-rank percentile p (0..100). */
export function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/** Creates n Patients on the server at base (no authorization: benches run with it off); their ids. */
export async function seed(base, n = 100) {
  const ids = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${base}/Patient`, {
      method: 'POST',
      headers: { 'content-type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Patient', name: [{ family: `Seed${i}` }] }),
    });
    if (res.status !== 201) throw new Error(`seeding: POST /Patient answered ${res.status}`);
    ids.push((await res.json()).id);
  }
  return ids;
}

/**
 * The shipped config.json made plain-store: without the store key's mount and HAKO_FHIR_KEY_FILE,
 * so a bench's copy needs no secrets/ beside it and compares like with like against the bare
 * server (store-encryption.mjs measures what encryption costs).
 */
export function withoutStoreKey(config) {
  config.mounts = config.mounts.filter((m) => m.destination !== '/run/secrets');
  config.process.env = config.process.env.filter((e) => !e.startsWith('HAKO_FHIR_KEY_FILE='));
  return config;
}
