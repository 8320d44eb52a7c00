// Shared by the seccomp benchmarks: hako's and libseccomp's programs for one OCI profile,
// instructions per decision (src/seccomp/bpf-interp.ts), and the kernel's constant-action
// cache emulation (seccomp_is_const_allow in kernel/seccomp.c, since 5.11).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileSeccomp, runBpf } from '../../dist/seccomp/index.js';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
export const AUDIT_ARCH_X86_64 = 0xc000003e;
export const AUDIT_ARCH_I386 = 0x40000003;
const NR_OFF = 0;
const ARCH_OFF = 4;

/** A containers/common profile (includes/excludes) or a plain OCI linux.seccomp, as OCI. */
export function ociProfile(path) {
  const p = JSON.parse(readFileSync(path, 'utf8'));
  if (!p.archMap && !p.syscalls?.some((s) => s.includes || s.excludes)) return p;
  const caps = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE']; // hako spec's default set
  const applies = (s) => {
    const inc = s.includes ?? {},
      exc = s.excludes ?? {};
    if (inc.arches?.length && !inc.arches.includes('amd64')) return false;
    if (inc.caps?.length && !inc.caps.every((c) => caps.includes(c))) return false;
    if (exc.arches?.includes('amd64')) return false;
    if (exc.caps?.some((c) => caps.includes(c))) return false;
    return true;
  };
  const entry = p.archMap?.find((a) => a.architecture === 'SCMP_ARCH_X86_64');
  return {
    defaultAction: p.defaultAction,
    ...(p.defaultErrnoRet !== undefined ? { defaultErrnoRet: p.defaultErrnoRet } : {}),
    architectures: entry ? [entry.architecture, ...(entry.subArchitectures ?? [])] : [],
    syscalls: p.syscalls.filter(applies).map((s) => ({
      names: s.names,
      action: s.action,
      ...(s.errnoRet !== undefined ? { errnoRet: s.errnoRet } : {}),
      ...(s.args?.length ? { args: s.args } : {}),
    })),
  };
}

/** libseccomp's program (seccomp_export_bpf) through the test oracle, built into `dir`. */
export function libseccompProgram(profile, dir) {
  const oracle = join(dir, 'export');
  execFileSync('cc', ['-O1', '-o', oracle, here('../../test/helpers/libseccomp/export.c'), '-lseccomp']);
  const name = {
    SCMP_ARCH_X86: 'x86',
    SCMP_ARCH_X32: 'x32',
    SCMP_ARCH_AARCH64: 'aarch64',
    SCMP_ARCH_ARM: 'arm',
    SCMP_ARCH_X86_64: 'x86_64',
  };
  const lines = [`default ${profile.defaultAction} ${profile.defaultErrnoRet ?? 1}`, 'badarch SCMP_ACT_KILL_PROCESS 0'];
  for (const a of profile.architectures ?? []) lines.push(`arch ${name[a]}`);
  for (const s of profile.syscalls ?? []) {
    const args = (s.args ?? []).map((a) => `${a.index} ${a.op} ${BigInt(a.value)} ${BigInt(a.valueTwo ?? 0)}`);
    for (const n of s.names) lines.push(`rule ${s.action} ${s.errnoRet ?? 1} ${n} ${args.length} ${args.join(' ')}`);
  }
  return new Uint8Array(execFileSync(oracle, { input: lines.join('\n') + '\n', stdio: ['pipe', 'pipe', 'ignore'] }));
}

export function hakoProgram(profile) {
  return compileSeccomp(profile, { arch: 'x64' }).program;
}

/** kernel/seccomp.c seccomp_is_const_allow: whether the filter ALLOWs nr on arch without reading anything else. */
export function constAllow(program, nr, arch) {
  const view = new DataView(program.buffer, program.byteOffset, program.byteLength);
  const len = program.length / 8;
  let a = 0;
  for (let pc = 0; pc < len; pc++) {
    const code = view.getUint16(pc * 8, true),
      jt = view.getUint8(pc * 8 + 2),
      jf = view.getUint8(pc * 8 + 3),
      k = view.getUint32(pc * 8 + 4, true);
    switch (code) {
      case 0x20: // LD W ABS
        if (k === NR_OFF) a = nr >>> 0;
        else if (k === ARCH_OFF) a = arch >>> 0;
        else return false;
        break;
      case 0x06:
        return k === 0x7fff0000; // RET K
      case 0x05:
        pc += k;
        break; // JA
      case 0x15:
        pc += a === k ? jt : jf;
        break;
      case 0x35:
        pc += a >>> 0 >= k ? jt : jf;
        break;
      case 0x25:
        pc += a >>> 0 > k ? jt : jf;
        break;
      case 0x45:
        pc += (a & k) !== 0 ? jt : jf;
        break;
      case 0x54:
        a = (a & k) >>> 0;
        break;
      default:
        return false;
    }
  }
  return false;
}

/** Instructions executed to decide nr on arch (args all zero). */
export function steps(program, nr, arch = AUDIT_ARCH_X86_64) {
  return runBpf(program, { nr, arch, instructionPointer: 0n, args: [0n, 0n, 0n, 0n, 0n, 0n] }).steps;
}

/** How many of the first `n` syscall numbers the kernel's cache would allow without running the filter. */
export function cachedCount(program, n = 470, arch = AUDIT_ARCH_X86_64) {
  let c = 0;
  for (let nr = 0; nr < n; nr++) if (constAllow(program, nr, arch)) c++;
  return c;
}
