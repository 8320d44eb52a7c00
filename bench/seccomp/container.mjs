#!/usr/bin/env node
// Cost of one allowed syscall inside a hako container: no filter, hako's filter (linux.seccomp
// in config.json, loaded by hako's executor) and the same profile compiled by libseccomp
// (config.json without seccomp; the loop loads libseccomp's exported program itself, under
// the same noNewPrivileges). Rounds interleaved (none, hako, libseccomp, ...), medians in
// ns per call, for getppid (decided by the kernel's constant-action cache) and for
// personality(0xffffffff) (decided by running the filter: an argument rule). Also the BPF
// instructions executed per decision and the kernel's cache coverage for both programs.
//   npm run build:ts && sudo node bench/seccomp/container.mjs [PROFILE.json] [ROUNDS] [CALLS]
// PROFILE defaults to /usr/share/containers/seccomp.json (containers/common's default).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, copyFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultSpec } from '../../dist/oci/default.js';
import {
  ociProfile,
  hakoProgram,
  libseccompProgram,
  steps,
  constAllow,
  cachedCount,
  AUDIT_ARCH_X86_64,
  AUDIT_ARCH_I386,
} from './programs.mjs';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const [profilePath = '/usr/share/containers/seccomp.json', rounds = '11', calls = '2000000'] = process.argv.slice(2);
const CLI = here('../../bin/hako');
const profile = ociProfile(profilePath);
const dir = mkdtempSync(join(tmpdir(), 'hako-scbench-'));
const rootfs = join(dir, 'rootfs');
mkdirSync(rootfs);
execFileSync('cc', ['-O2', '-static', '-o', join(rootfs, 'loop'), here('./getppid-loop.c')]);
const hako = hakoProgram(profile);
const lib = libseccompProgram(profile, dir);
writeFileSync(join(rootfs, 'libseccomp.bpf'), lib);

function bundle(name, seccomp, args) {
  const b = join(dir, name);
  mkdirSync(b);
  const cfg = defaultSpec(false);
  cfg.root = { path: rootfs, readonly: true };
  cfg.process.terminal = false;
  cfg.process.args = args;
  cfg.mounts = cfg.mounts.filter((m) => ['/proc', '/dev'].includes(m.destination));
  if (seccomp) cfg.linux.seccomp = seccomp;
  writeFileSync(join(b, 'config.json'), JSON.stringify(cfg));
  return b;
}
const root = join(dir, 'state');
let n = 0;
const runIn = (b) => Number(execFileSync(CLI, ['--root', root, 'run', '-b', b, `c${n++}`], { encoding: 'utf8' }).trim());

const calls_ = ['getppid', 'personality'];
const variants = {};
for (const call of calls_) {
  variants[`none ${call}`] = bundle(`none-${call}`, null, ['/loop', calls, '-', call]);
  variants[`hako ${call}`] = bundle(`hako-${call}`, profile, ['/loop', calls, '-', call]);
  variants[`libseccomp ${call}`] = bundle(`lib-${call}`, null, ['/loop', calls, '/libseccomp.bpf', call]);
}
const samples = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
for (let i = 0; i < Number(rounds); i++) for (const [k, b] of Object.entries(variants)) samples[k].push(runIn(b));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(
  `profile ${profilePath}: ${(profile.syscalls ?? []).reduce((s, r) => s + r.names.length, 0)} names; ${rounds} rounds x ${calls} calls, interleaved`,
);
for (const call of calls_) {
  const base = median(samples[`none ${call}`]);
  for (const v of ['none', 'hako', 'libseccomp']) {
    const m = median(samples[`${v} ${call}`]);
    console.log(
      `${call.padEnd(12)} ${v.padEnd(11)} ${m.toFixed(1)} ns/call (+${(m - base).toFixed(1)})  samples ${samples[`${v} ${call}`].map((x) => x.toFixed(0)).join(' ')}`,
    );
  }
}
const NR = { getppid: 110, personality: 135 };
const avg = (p, arch, lo, hi) => {
  let s = 0;
  for (let nr = lo; nr < hi; nr++) s += steps(p, nr, arch);
  return (s / (hi - lo)).toFixed(1);
};
for (const [name, p] of [
  ['hako', hako],
  ['libseccomp', lib],
]) {
  console.log(
    `${name.padEnd(11)} ${p.length / 8} instructions; steps: getppid ${steps(p, NR.getppid)}, personality ${steps(p, NR.personality)}, mean x86_64 0..469 ${avg(p, AUDIT_ARCH_X86_64, 0, 470)}, mean i386 0..469 ${avg(p, AUDIT_ARCH_I386, 0, 470)}; kernel cache: getppid ${constAllow(p, NR.getppid, AUDIT_ARCH_X86_64) ? 'cached' : 'filter runs'}, ${cachedCount(p)} x86_64 and ${cachedCount(p, 470, AUDIT_ARCH_I386)} i386 numbers of 470 cached`,
  );
}
rmSync(dir, { recursive: true, force: true });
