#!/usr/bin/env node
// What the FHIR bundle's learned two-phase seccomp policy (bundles/fhir/seccomp.json, issue 12)
// buys and costs, in one run:
//  1. the serving set: x86_64 calls the kernel allows once the server answers, against the
//     containers' generic default profile (config.mjs's seccomp(), resolved for this container),
//     and what each does with a fixed list of dangerous calls — read from the JSON files and
//     decided by hako's own filter compiler and BPF interpreter, plus the supervisor's rule;
//  2. FHIR reads (GET /Patient/ID) and writes (POST /Patient) with wrk, interleaved A B C:
//     bare (the server on the host, as run.mjs), `hako up` with the generic default profile, and
//     `hako up` with the shipped policy. The two hako variants have the same config (Landlock,
//     rlimits, mounts) except linux.seccomp. Requests/s, p99, and server CPU µs per request (the
//     container's processes: the server and anything below it, from /proc/PID/stat) and the
//     `hako up` supervisor's own CPU (its seccomp agent thread included);
//  3. from a refused call to its AuditEvent being queryable: a static probe (built with
//     `cc -static`), bind-mounted read-only into the running container and started by
//     `hako exec`, makes one refused call with a unique marker argument, right after the exec
//     and, interleaved, 500 ms after it; GET /AuditEvent is polled until that event is there.
// As root (`hako up` as root runs the container on a subordinate range). Needs wrk and cc.
// Prints markdown on stdout, progress on stderr. BENCH_ROUNDS=0 skips part 2.
//
//   BENCH_ROUNDS=3 BENCH_SECONDS=5 BENCH_CONNECTIONS=8 BENCH_AUDIT_N=20 BENCH_POLL_MS=1 node bundles/fhir/bench/policy.mjs
//
// It takes no arguments (config.mjs, imported for seccomp(), reads process.argv[2] as a profile).
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { pathToFileURL } from 'node:url';
import { loadBuilder } from '../build/index.mjs';
import { seccomp as genericResolved } from '../build/config.mjs';
import {
  bundleDir,
  cpuTicks,
  freePort,
  median,
  percentile,
  repo,
  seed,
  serverPid,
  TICK_US,
  treeTicks,
  waitReady,
  withoutStoreKey,
  wrk,
} from './lib.mjs';

const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 8);
const attempts = Number(process.env.BENCH_AUDIT_N ?? 20);
const pollMs = Number(process.env.BENCH_POLL_MS ?? 1); // pause between two GET /AuditEvent
const GENERIC = process.env.BENCH_GENERIC_PROFILE ?? '/usr/share/containers/seccomp.json';
const hakoBin = join(repo, 'bin/hako');
const log = (s) => console.error(`bench: ${s}`);
const dist = (p) => import(pathToFileURL(join(repo, 'dist', p)).href);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const nowMs = () => performance.timeOrigin + performance.now(); // CLOCK_REALTIME, sub-millisecond

const { X86_64 } = await dist('seccomp/tables/x86_64.js');
const { compileSeccomp, runBpf } = await dist('seccomp/index.js');
const { phasePolicy, decide } = await dist('profile/policy.js');
const { errnoName } = await dist('sys/errno.js');

const shippedConfig = JSON.parse(readFileSync(join(bundleDir, 'config.json'), 'utf8'));
const policy = JSON.parse(readFileSync(join(bundleDir, 'seccomp.json'), 'utf8'));
const generic = genericResolved(JSON.parse(readFileSync(GENERIC, 'utf8')));
const notes = [];
if (!isDeepStrictEqual(shippedConfig.linux.seccomp, policy))
  notes.push('bundles/fhir/config.json does not inline bundles/fhir/seccomp.json (run build/config.mjs): measured config.json as it is');

// ---------------------------------------------------------------------------------------------
// 1. The serving set, statically.

const AUDIT_ARCH_X86_64 = 0xc000003e;
const RET_ACTION_FULL = 0xffff0000;
const RET_ALLOW = 0x7fff0000;
const RET_ERRNO = 0x00050000;
const RET_USER_NOTIF = 0x7fc00000;

/** x86_64 calls an ALLOW rule names: with no argument condition, and only with one. */
function allowed(profile) {
  const plain = new Set();
  const conditional = new Set();
  for (const rule of profile.syscalls ?? [])
    if (rule.action === 'SCMP_ACT_ALLOW')
      for (const name of rule.names.filter((n) => n in X86_64)) (rule.args?.length ? conditional : plain).add(name);
  for (const name of plain) conditional.delete(name);
  return { plain, conditional };
}

const CLONE_NEWUSER = 0x10000000n;
const SIGCHLD = 17n;
const CLONE_THREAD_FLAGS = 0x3d0f00n; // what glibc's pthread_create passes
/** [label, call, arguments]: the fixed list of calls an intruder wants. */
const DANGEROUS = [
  ['execve', 'execve'],
  ['execveat', 'execveat'],
  ['fork', 'fork'],
  ['vfork', 'vfork'],
  ['clone(SIGCHLD): a new process', 'clone', [SIGCHLD]],
  ['clone(CLONE_NEWUSER|SIGCHLD): a namespace', 'clone', [CLONE_NEWUSER | SIGCHLD]],
  ['clone3', 'clone3'],
  ['unshare(CLONE_NEWUSER)', 'unshare', [CLONE_NEWUSER]],
  ['setns', 'setns'],
  ['mount', 'mount'],
  ['umount2', 'umount2'],
  ['pivot_root', 'pivot_root'],
  ['chroot', 'chroot'],
  ['ptrace', 'ptrace'],
  ['process_vm_readv', 'process_vm_readv'],
  ['process_vm_writev', 'process_vm_writev'],
  ['bpf', 'bpf'],
  ['perf_event_open', 'perf_event_open'],
  ['userfaultfd', 'userfaultfd'],
  ['keyctl', 'keyctl'],
  ['add_key', 'add_key'],
  ['request_key', 'request_key'],
  ['io_uring_setup', 'io_uring_setup'],
  ['init_module', 'init_module'],
  ['finit_module', 'finit_module'],
  ['kexec_load', 'kexec_load'],
  ['open_by_handle_at', 'open_by_handle_at'],
  ['memfd_create', 'memfd_create'],
  ['socket(AF_UNIX, SOCK_STREAM)', 'socket', [1n, 1n]],
  ['socket(AF_INET, SOCK_STREAM)', 'socket', [2n, 1n]],
  ['socket(AF_INET6, SOCK_DGRAM)', 'socket', [10n, 2n]],
  ['socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT)', 'socket', [16n, 3n, 9n]],
  ['socket(AF_PACKET, SOCK_RAW)', 'socket', [17n, 3n]],
  ['personality(READ_IMPLIES_EXEC)', 'personality', [0x400000n]],
];

function verdicts(profile) {
  const program = compileSeccomp(profile, { arch: 'x64' }).program;
  const phases = phasePolicy(profile, 'SCMP_ARCH_X86_64');
  return (name, args = []) => {
    const nr = X86_64[name];
    const ret = runBpf(program, { nr, arch: AUDIT_ARCH_X86_64, args }).action >>> 0;
    const action = (ret & RET_ACTION_FULL) >>> 0;
    const data = ret & 0xffff;
    const answer = (phase) => {
      if (action === RET_ALLOW) return 'allowed';
      if (action === RET_ERRNO) return `${errnoName(data)} (kernel)`;
      if (action !== RET_USER_NOTIF) return `action 0x${action.toString(16)}`;
      const d = decide(phases, nr, phase);
      return d.allow ? '**allowed by hako**' : `${errnoName(d.errno)}, reported`;
    };
    return {
      startup: answer('startup'),
      serving: answer('serving'),
      startupOnly: action === RET_USER_NOTIF && decide(phases, nr, 'startup').allow,
    };
  };
}

function servingSet() {
  const g = allowed(generic);
  const p = allowed(policy);
  const notifyRules = (policy.syscalls ?? []).filter((r) => r.action === 'SCMP_ACT_NOTIFY');
  const startupOnly = [...new Set(notifyRules.flatMap((r) => r.names).filter((n) => n in X86_64))].sort();
  const gv = verdicts(generic);
  const pv = verdicts(policy);
  const dangerous = DANGEROUS.map(([label, name, args]) => ({ label, generic: gv(name, args), policy: pv(name, args) }));
  return { g, p, startupOnly, dangerous };
}

// ---------------------------------------------------------------------------------------------
// 2 and 3. The server, bare and under `hako up`.

let scratch; // this run's directory: the probe, and one directory per server run
let probeDir;
let runCount = 0;
const live = new Set(); // child processes to end if the run is interrupted

function buildProbe() {
  probeDir = join(scratch, 'probe');
  mkdirSync(probeDir, { mode: 0o755 });
  // probe DELAY_US NR [A0 A1 A2]: sleeps, then makes one call; prints the CLOCK_REALTIME time
  // taken just before it (ms, with the fraction), the result and the errno. Static: the
  // FHIR rootfs has no libc to lend it.
  const source = String.raw`#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>
int main(int argc, char **argv) {
  if (argc < 3) return 2;
  long nr = strtol(argv[2], 0, 0), a[3] = {0, 0, 0};
  for (int i = 0; i < 3 && i + 3 < argc; i++) a[i] = strtol(argv[i + 3], 0, 0);
  usleep(strtol(argv[1], 0, 0));
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  long r = syscall(nr, a[0], a[1], a[2]);
  int e = r < 0 ? errno : 0;
  char buf[96];
  int n = snprintf(buf, sizeof buf, "%lld.%06ld %ld %d\n", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, ts.tv_nsec % 1000000, r, e);
  return write(1, buf, n) == n ? 0 : 1;
}
`;
  writeFileSync(join(scratch, 'probe.c'), source);
  execFileSync('cc', ['-static', '-O2', '-o', join(probeDir, 'probe'), join(scratch, 'probe.c')]);
  chmodSync(join(probeDir, 'probe'), 0o755);
}

function lines(stream, onLine) {
  let pending = '';
  stream.setEncoding('utf8').on('data', (chunk) => {
    const all = (pending + chunk).split('\n');
    pending = all.pop();
    for (const l of all) onLine(l);
  });
}

function exited(child, timeoutMs) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

const bare = {
  name: 'bare',
  async start(dir) {
    const data = join(dir, 'data');
    mkdirSync(data, { mode: 0o700 });
    const port = await freePort();
    const child = spawn(process.execPath, [join(bundleDir, 'rootfs/server.js')], {
      env: { UV_USE_IO_URING: '0', HAKO_FHIR_AUTH: 'off', HAKO_FHIR_DATA: data, HAKO_FHIR_LISTEN: `127.0.0.1:${port}` },
      stdio: 'ignore',
    });
    live.add(child);
    const base = `http://127.0.0.1:${port}`;
    await waitReady(base);
    return { child, base, root: child.pid, supervisor: null, refusals: () => 0, stop: () => stopChild(child) };
  },
};

async function stopChild(child) {
  child.kill('SIGTERM');
  if (!(await exited(child, 30_000))) {
    child.kill('SIGKILL');
    await exited(child, 10_000);
  }
  live.delete(child);
}

/** `hako up` of a scratch copy of the bundle: its config with the rootfs path made absolute,
 *  /data bound to an empty directory, the probe mounted read-only at /tmp/probe, and, given
 *  one, another seccomp profile. */
function hakoVariant(name, profile) {
  return {
    name,
    async start(dir) {
      const bundle = join(dir, 'bundle');
      const data = join(dir, 'data');
      const state = join(dir, 'state');
      mkdirSync(bundle);
      mkdirSync(data, { mode: 0o700 });
      const config = withoutStoreKey(structuredClone(shippedConfig));
      config.root.path = join(bundleDir, 'rootfs');
      config.process.env.push('HAKO_FHIR_AUTH=off'); // the sandbox's cost, not authorization's (bench/auth.mjs)
      config.mounts.find((m) => m.destination === '/data').source = data;
      config.mounts.push({ destination: '/tmp/probe', type: 'bind', source: probeDir, options: ['rbind', 'ro', 'nosuid', 'nodev'] });
      if (profile) config.linux.seccomp = profile;
      writeFileSync(join(bundle, 'config.json'), JSON.stringify(config));
      // No build hook (the rootfs is built); AuditEvents as the FHIR bundle asks for them.
      writeFileSync(join(bundle, 'package.json'), JSON.stringify({ name: 'bench-policy', private: true, hako: { auditEvents: true } }));
      const id = `bench-policy-${process.pid}-${++runCount}`;
      const child = spawn(hakoBin, ['--root', state, 'up', bundle, '--listen', '127.0.0.1:0', '--id', id], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      live.add(child);
      let refusals = 0;
      const tail = [];
      lines(child.stderr, (l) => {
        if (/^hako up: seccomp: refused /.test(l)) refusals++;
        tail.push(l);
        if (tail.length > 20) tail.shift();
      });
      const stop = async () => {
        await stopChild(child);
        const left = execFileSync(hakoBin, ['--root', state, 'list', '-q']).toString().trim();
        if (left) {
          log(`${left} still listed after up stopped: hako delete --force`);
          for (const c of left.split('\n')) execFileSync(hakoBin, ['--root', state, 'delete', '--force', c]);
        }
      };
      let base;
      try {
        base = await new Promise((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`hako up did not say it was serving within 120 s: ${tail.join(' | ')}`)),
            120_000,
          );
          lines(child.stdout, (l) => {
            const m = / at (http:\/\/[\d.]+:\d+)\//.exec(l);
            if (m) {
              clearTimeout(timer);
              resolve(m[1]);
            }
          });
          child.once('exit', (code) => reject(new Error(`hako up exited (${code}): ${tail.join(' | ')}`)));
        });
        await waitReady(base);
      } catch (e) {
        await stop();
        throw e;
      }
      return { child, base, id, state, root: child.pid, supervisor: child.pid, refusals: () => refusals, stop };
    },
  };
}

function newDir() {
  const dir = join(scratch, `run-${++runCount}`);
  mkdirSync(dir, { mode: 0o755 });
  return dir;
}

async function measure(variant) {
  const dir = newDir();
  const run = await variant.start(dir);
  try {
    const pid = serverPid(run.root);
    const ids = await seed(run.base);
    const result = {};
    for (const [kind, args] of [
      ['read', [`${run.base}/Patient/${ids[50]}`]],
      ['write', ['-s', join(bundleDir, 'bench/create-patient.lua'), run.base]],
    ]) {
      const before = treeTicks(pid);
      const supBefore = run.supervisor ? cpuTicks(run.supervisor) : 0;
      const refusedBefore = run.refusals();
      const w = wrk(args, { connections, seconds });
      const cpuUs = ((treeTicks(pid) - before) * TICK_US) / w.requests;
      const supUs = run.supervisor ? ((cpuTicks(run.supervisor) - supBefore) * TICK_US) / w.requests : NaN;
      result[kind] = { ...w, cpuUs, supUs, refused: run.refusals() - refusedBefore };
    }
    return result;
  } finally {
    await run.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A call the policy refuses in both phases (so an exec'd process, which keeps the start-up set,
 *  is refused too), to make on purpose. */
function refusedCall(pv) {
  for (const name of ['keyctl', 'add_key', 'request_key', 'getppid', 'sync'])
    if (pv(name).startup.endsWith('reported') && pv(name).serving.endsWith('reported')) return name;
  throw new Error('the policy refuses none of keyctl, add_key, request_key, getppid, sync');
}

/** One refused call by the probe, started by `hako exec` (after delayMs in the probe: the
 *  exec'd CLI is idle by then), and GET /AuditEvent polled from the exec on until its event
 *  is there. Times in ms from the call (the probe's CLOCK_REALTIME reading). */
async function refuseOnce(run, call, marker, delayMs) {
  const exec = spawn(
    hakoBin,
    ['--root', run.state, 'exec', run.id, '/tmp/probe/probe', String(delayMs * 1000), String(X86_64[call]), '0', marker],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  live.add(exec);
  let stdout = '';
  let stderr = '';
  exec.stdout.on('data', (d) => (stdout += d));
  exec.stderr.on('data', (d) => (stderr += d));
  const done = new Promise((resolve) => exec.once('exit', resolve));
  let exitedAt = 0;
  void done.then(() => (exitedAt = Date.now()));
  let found;
  let polls = 0;
  while (!found && !(exitedAt && Date.now() - exitedAt > 5_000)) {
    const bundle = await (await fetch(`${run.base}/AuditEvent?subtype=${call}&_sort=-_lastUpdated&_count=3`)).json();
    const at = nowMs();
    polls++;
    const event = (bundle.entry ?? [])
      .map((e) => e.resource)
      .find((r) => r.entity?.[0]?.detail?.some((d) => d.type === 'arguments' && d.valueString.split(' ').includes(marker)));
    if (event) found = { at, recorded: Date.parse(event.recorded), stored: Date.parse(event.meta.lastUpdated) };
    else await sleep(pollMs);
  }
  const code = await done;
  live.delete(exec);
  const m = /^([\d.]+) (-?\d+) (\d+)$/m.exec(stdout);
  if (code !== 0 || !m) throw new Error(`hako exec of the probe: exit ${code}, stdout ${JSON.stringify(stdout)}, stderr ${stderr.trim()}`);
  const calledAt = Number(m[1]);
  return {
    errno: Number(m[3]),
    refusedMs: found ? found.recorded - calledAt : NaN,
    storedMs: found ? found.stored - calledAt : NaN,
    queryableMs: found ? found.at - calledAt : NaN,
    polls,
  };
}

async function auditLatency(variant, call) {
  const dir = newDir();
  const run = await variant.start(dir);
  try {
    const base = 0x48a0000 + (process.pid & 0xfff) * 0x100;
    const marker = (i) => `0x${(base + i).toString(16)}`;
    const say = (what, r) =>
      log(`${what}: refused ${fmt(r.refusedMs)} ms, stored ${fmt(r.storedMs)} ms, queryable ${fmt(r.queryableMs)} ms`);
    // The container's first refusal: the supervisor loads its logger, the server its
    // AuditEvent validation. Reported on its own.
    const first = await refuseOnce(run, call, marker(0), 0);
    say('first refusal', first);
    const at = { now: [], later: [] };
    for (let i = 1; i <= attempts; i++)
      for (const [key, delayMs] of [
        ['now', 0],
        ['later', 500],
      ]) {
        await sleep(100); // hako writes only so many AuditEvents a second (per call and in all)
        const r = await refuseOnce(run, call, marker(2 * i + (delayMs ? 1 : 0)), delayMs);
        at[key].push(r);
        say(`attempt ${i}, ${delayMs} ms after the exec`, r);
      }
    const stored = (await (await fetch(`${run.base}/AuditEvent?subtype=${call}&_count=1000`)).json()).entry?.length ?? 0;
    return { first, ...at, stored, refusals: run.refusals() };
  } finally {
    await run.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Output.

const fmt = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '–');
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b ? (a / b).toFixed(3) : '–');
const row = (cells) => `| ${cells.map((c) => String(c).replaceAll('|', '\\|')).join(' | ')} |`;
const table = (head, rows) => [row(head), row(head.map(() => '---')), ...rows.map(row)].join('\n');

function printServingSet({ g, p, startupOnly, dangerous }) {
  const list = (s) => [...s].sort().join(', ');
  const gAll = g.plain.size + g.conditional.size;
  const pAll = p.plain.size + p.conditional.size;
  console.log('### 1. The serving set (x86_64)\n');
  console.log(
    table(
      ['x86_64 system calls', 'generic default profile', 'FHIR policy', 'policy / generic'],
      [
        ['allowed in the kernel, any arguments', g.plain.size, p.plain.size, ratio(p.plain.size, g.plain.size)],
        [
          'allowed in the kernel for some arguments only',
          `${g.conditional.size} (${list(g.conditional)})`,
          `${p.conditional.size} (${list(p.conditional)})`,
          '',
        ],
        ['**allowed while serving**', `**${gAll}**`, `**${pAll}**`, `**${ratio(pAll, gAll)}**`],
        ['allowed during start-up only (SCMP_ACT_NOTIFY rules, let through by hako)', 0, startupOnly.length, ''],
        [
          'anything else',
          `${generic.defaultAction} (${errnoName(generic.defaultErrnoRet ?? 1)})`,
          `${policy.defaultAction}: EPERM, reported`,
          '',
        ],
      ],
    ),
  );
  console.log(`\nStart-up only in the policy: ${startupOnly.join(', ')}.\n`);
  const dangerousStartup = dangerous.filter((d) => d.policy.startupOnly).map((d) => d.label);
  console.log(
    `Dangerous calls among them: ${dangerousStartup.length ? dangerousStartup.join(', ') : 'none'} (of the ${dangerous.length} below).\n`,
  );
  console.log(
    table(
      ['call', 'generic default profile', 'policy, start-up', 'policy, serving'],
      dangerous.map((d) => [`\`${d.label}\``, d.generic.serving, d.policy.startup, d.policy.serving]),
    ),
  );
}

function printServing(runs, variants) {
  const [A, B, C] = variants.map((v) => v.name);
  console.log(
    `\n### 2. FHIR reads and writes: ${rounds} interleaved rounds (${variants.map((v) => v.name).join(', ')}), wrk 1 thread ${connections} connections ${seconds} s each; medians\n`,
  );
  const rows = [];
  for (const kind of ['read', 'write']) {
    for (const [key, what, d, pick] of [
      ['rps', 'requests/s', 0],
      ['p99ms', 'p99 ms', 2],
      ['cpuUs', 'server CPU µs/request', 1],
      ['cpuUs', 'server CPU µs/request, lowest round', 1, (xs) => Math.min(...xs)],
      ['supUs', '`hako up` CPU µs/request', 1],
    ]) {
      const [a, b, c] = [A, B, C].map((n) => (pick ?? median)(runs[n].map((r) => r[kind][key])));
      const label = kind === 'read' ? 'read `GET /Patient/ID`' : 'write `POST /Patient`';
      rows.push([label, what, fmt(a, d), fmt(b, d), fmt(c, d), ratio(b, a), ratio(c, a), ratio(c, b)]);
    }
  }
  console.log(table(['load', 'metric', A, B, C, `${B} / ${A}`, `${C} / ${A}`, `${C} / ${B}`], rows));
  console.log('\nServer CPU µs/request, every round (read; write):\n');
  for (const n of [A, B, C])
    console.log(
      `- ${n}: ${runs[n].map((r) => fmt(r.read.cpuUs)).join(' ')}; ${runs[n].map((r) => fmt(r.write.cpuUs)).join(' ')}` +
        ` (requests/s ${runs[n].map((r) => fmt(r.read.rps, 0)).join(' ')}; ${runs[n].map((r) => fmt(r.write.rps, 0)).join(' ')})`,
    );
  const refused = runs[C].reduce((s, r) => s + r.read.refused + r.write.refused, 0);
  const non2xx = Object.values(runs)
    .flat()
    .reduce((s, r) => s + r.read.non2xx + r.write.non2xx, 0);
  console.log(`\nCalls refused while the policy served the load: ${refused}. Non-2xx answers, all runs: ${non2xx}.`);
}

function printAudit(call, audit) {
  console.log(
    `\n### 3. From a refused call to its AuditEvent: \`hako exec\` of a static probe making one \`${call}\` call, ${attempts} times right after the exec and ${attempts} times 500 ms after it (interleaved, ~100 ms apart)\n`,
  );
  const rows = [];
  const stats = (xs) => [median(xs), percentile(xs, 95), Math.min(...xs), Math.max(...xs)].map((x) => fmt(x, 1));
  for (const [key, what] of [
    ['now', 'right after the exec'],
    ['later', '500 ms after the exec (the exec CLI idle)'],
  ]) {
    const ok = audit[key].filter((x) => Number.isFinite(x.queryableMs));
    rows.push([`${what}: the supervisor refuses it (AuditEvent.recorded, ms resolution)`, ...stats(ok.map((x) => x.refusedMs))]);
    rows.push([`${what}: the server takes its POST (meta.lastUpdated, ms resolution)`, ...stats(ok.map((x) => x.storedMs))]);
    rows.push([
      `**${what}: the first GET /AuditEvent that returns it**`,
      ...stats(ok.map((x) => x.queryableMs)).map((x, i) => (i < 2 ? `**${x}**` : x)),
    ]);
  }
  console.log(table(['ms from the call', 'median', 'p95', 'min', 'max'], rows));
  const all = [audit.first, ...audit.now, ...audit.later];
  const errnos = [...new Set(all.map((x) => errnoName(x.errno)))].join(', ');
  console.log(
    `\nThe container's first refusal (before those): refused ${fmt(audit.first.refusedMs)} ms, taken ${fmt(audit.first.storedMs)} ms, ` +
      `queryable ${fmt(audit.first.queryableMs)} ms after the call. The probe saw ${errnos}; events found ` +
      `${all.filter((x) => Number.isFinite(x.queryableMs)).length} of ${all.length}, stored ${audit.stored}, refusals on stderr ${audit.refusals}; ` +
      `GET /AuditEvent every ${pollMs} ms.`,
  );
}

// ---------------------------------------------------------------------------------------------

async function cleanup() {
  for (const child of live) child.kill('SIGKILL');
  if (scratch) rmSync(scratch, { recursive: true, force: true });
}
for (const sig of ['SIGINT', 'SIGTERM'])
  process.once(sig, () => {
    // `hako up` stops its container on SIGTERM; give it the chance, then remove the scratch.
    for (const child of live) child.kill('SIGTERM');
    setTimeout(() => cleanup().finally(() => process.exit(130)), 15_000);
  });

if (process.geteuid() !== 0) log('not root: `hako up` runs rootless (the figures in docs/benchmarks.md are as root)');
const loadBefore = loadavg();
const set = servingSet();
const { buildFhirRootfs } = await loadBuilder();
await buildFhirRootfs({ bundleDir, log });
scratch = mkdtempSync(join(tmpdir(), 'bench-policy-'));
chmodSync(scratch, 0o755); // the container's user reads the probe below it
try {
  buildProbe();
  const variants = [bare, hakoVariant('hako, generic profile', generic), hakoVariant('hako, policy', null)];
  const runs = Object.fromEntries(variants.map((v) => [v.name, []]));
  for (let round = 1; round <= rounds; round++)
    for (const v of variants) {
      log(`round ${round}/${rounds}: ${v.name}`);
      runs[v.name].push(await measure(v));
    }
  const call = refusedCall(verdicts(policy));
  log(`AuditEvent latency: ${attempts} refused ${call} calls`);
  const audit = await auditLatency(variants[2], call);
  const loadAfter = loadavg();

  console.log(`## bundles/fhir/bench/policy.mjs, ${new Date().toISOString()}\n`);
  console.log(
    `Load average (1, 5, 15 min): before ${loadBefore.map((x) => x.toFixed(2)).join(' ')}, after ${loadAfter.map((x) => x.toFixed(2)).join(' ')}.`,
  );
  console.log(`Running as ${process.geteuid() === 0 ? 'root' : `uid ${process.geteuid()} (rootless)`}. ${notes.join(' ')}\n`);
  printServingSet(set);
  if (rounds > 0) printServing(runs, variants);
  printAudit(call, audit);
} finally {
  await cleanup();
}
