// Drives export.c: libseccomp's filter for an OCI seccomp profile, and libseccomp's
// syscall numbers, to test hako's compiler and tables against.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { OciSeccomp } from '../../../src/seccomp/index.js';

/** libseccomp's names for the OCI architectures. */
export const LIBSECCOMP_ARCH: Record<string, string> = {
  SCMP_ARCH_X86_64: 'x86_64',
  SCMP_ARCH_X86: 'x86',
  SCMP_ARCH_X32: 'x32',
  SCMP_ARCH_AARCH64: 'aarch64',
  SCMP_ARCH_ARM: 'arm',
};

/** Compiles the oracle into a fresh temp dir and returns the binary's path. */
export function buildOracle(): string {
  const dir = mkdtempSync(join(tmpdir(), 'hako-libseccomp-'));
  const bin = join(dir, 'export');
  const src = fileURLToPath(new URL('./export.c', import.meta.url));
  execFileSync('cc', ['-O1', '-Wall', '-o', bin, src, '-lseccomp'], { stdio: 'pipe' });
  return bin;
}

export interface OracleOptions {
  /** The bad-arch action, as an OCI action name. */
  badArch: string;
  /** SCMP_FLTATR_CTL_OPTIMIZE: 1 is libseccomp's (and runc's) default, 2 a binary tree. */
  optimize?: 1 | 2;
}

function script(p: OciSeccomp, o: OracleOptions): string {
  const lines = [`default ${p.defaultAction} ${p.defaultErrnoRet ?? 1}`, `badarch ${o.badArch} 0`, `optimize ${o.optimize ?? 1}`];
  for (const a of p.architectures ?? []) lines.push(`arch ${LIBSECCOMP_ARCH[a]}`);
  for (const s of p.syscalls ?? []) {
    const args = (s.args ?? []).map((a) => `${a.index} ${a.op} ${BigInt(a.value)} ${BigInt(a.valueTwo ?? 0)}`);
    for (const name of s.names) lines.push(`rule ${s.action} ${s.errnoRet ?? 1} ${name} ${args.length} ${args.join(' ')}`);
  }
  return lines.join('\n') + '\n';
}

/** libseccomp's program, or null when libseccomp refuses the profile (with its reason). */
export function libseccompProgram(bin: string, profile: OciSeccomp, o: OracleOptions): { program: Uint8Array | null; error: string } {
  // libseccomp 2.5.4 can spin for minutes on some generated rule sets: such a profile
  // counts as refused instead of hanging the run.
  const r = spawnSync(bin, [], { input: script(profile, o), maxBuffer: 1 << 24, timeout: 5_000, killSignal: 'SIGKILL' });
  if (r.error || r.signal) return { program: null, error: `libseccomp did not finish (${r.error?.message ?? r.signal})` };
  if (r.status !== 0) return { program: null, error: r.stderr.toString() };
  return { program: new Uint8Array(r.stdout), error: '' };
}

/** libseccomp's number for each (OCI arch, name); undefined where libseccomp has none. */
export function libseccompNumbers(bin: string, queries: Array<[string, string]>): Map<string, number | undefined> {
  const input = queries.map(([arch, name]) => `${LIBSECCOMP_ARCH[arch]} ${name}`).join('\n') + '\n';
  const out = execFileSync(bin, ['resolve'], { input, encoding: 'utf8', maxBuffer: 1 << 24 });
  const map = new Map<string, number | undefined>();
  out
    .trim()
    .split('\n')
    .forEach((line, i) => {
      const nr = line.split(' ')[2];
      const [arch, name] = queries[i]!;
      map.set(`${arch} ${name}`, nr === 'none' ? undefined : Number(nr));
    });
  return map;
}
