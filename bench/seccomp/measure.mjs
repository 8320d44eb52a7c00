#!/usr/bin/env node
// getppid cost with no filter, hako's filter and libseccomp's filter for one OCI
// linux.seccomp JSON, runs interleaved (none, hako, libseccomp, ...), medians in ns/call.
//   npm run build:ts && node bench/seccomp/measure.mjs PROFILE.json [ROUNDS] [CALLS]
// The filters run in this host process tree, not in a container (see the report for the
// container variant once `hako run` works).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileSeccomp } from '../../dist/seccomp/index.js';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const [profilePath, rounds = '11', calls = '5000000'] = process.argv.slice(2);
if (!profilePath) throw new Error('usage: measure.mjs PROFILE.json [ROUNDS] [CALLS]');
const profile = JSON.parse(readFileSync(profilePath, 'utf8'));
const dir = mkdtempSync(join(tmpdir(), 'hako-bench-'));
const loop = join(dir, 'getppid-loop');
const oracle = join(dir, 'export');
execFileSync('cc', ['-O2', '-static', '-o', loop, here('./getppid-loop.c')]);
execFileSync('cc', ['-O1', '-o', oracle, here('../../test/helpers/libseccomp/export.c'), '-lseccomp']);

const hako = compileSeccomp(profile);
writeFileSync(join(dir, 'hako.bpf'), hako.program);
const lines = [`default ${profile.defaultAction} ${profile.defaultErrnoRet ?? 1}`, 'badarch SCMP_ACT_KILL_PROCESS 0'];
for (const a of profile.architectures ?? [])
  if (a !== 'SCMP_ARCH_X86_64')
    lines.push(`arch ${{ SCMP_ARCH_X86: 'x86', SCMP_ARCH_X32: 'x32', SCMP_ARCH_AARCH64: 'aarch64', SCMP_ARCH_ARM: 'arm' }[a]}`);
for (const s of profile.syscalls ?? []) {
  const args = (s.args ?? []).map((a) => `${a.index} ${a.op} ${BigInt(a.value)} ${BigInt(a.valueTwo ?? 0)}`);
  for (const n of s.names) lines.push(`rule ${s.action} ${s.errnoRet ?? 1} ${n} ${args.length} ${args.join(' ')}`);
}
writeFileSync(join(dir, 'libseccomp.bpf'), execFileSync(oracle, { input: lines.join('\n') + '\n', stdio: ['pipe', 'pipe', 'ignore'] }));

const variants = { none: [], hako: [join(dir, 'hako.bpf')], libseccomp: [join(dir, 'libseccomp.bpf')] };
const samples = { none: [], hako: [], libseccomp: [] };
for (let i = 0; i < Number(rounds); i++) {
  for (const [name, extra] of Object.entries(variants))
    samples[name].push(Number(execFileSync(loop, [calls, ...extra], { encoding: 'utf8' })));
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const base = median(samples.none);
for (const [name, xs] of Object.entries(samples))
  console.log(`${name.padEnd(10)} ${median(xs).toFixed(1)} ns/call (+${(median(xs) - base).toFixed(1)})`);
console.log(`hako ${hako.program.length / 8} instructions, libseccomp ${readFileSync(join(dir, 'libseccomp.bpf')).length / 8}`);
