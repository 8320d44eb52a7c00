// Differential test: hako's seccomp compiler against libseccomp (seccomp_export_bpf), both
// programs run in the BPF interpreter on the same seccomp_data. Calls whose outcome
// libseccomp leaves unspecified (see unspecified()) are skipped and counted; there hako
// takes the first matching rule.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { BAD_ARCH_ACTION, compileSeccomp, runBpf, type OciSeccomp, type OciSeccompArg, type SeccompArch } from '../../src/seccomp/index.js';
import { ARCH_INFO, X32_SYSCALL_BIT } from '../../src/seccomp/arch.js';
import { buildOracle, libseccompNumbers, libseccompProgram } from '../helpers/libseccomp/oracle.js';
import { CONTAINERS_PROFILE, DEFAULT_CAPS, ociFromProfile, profileNames } from '../helpers/libseccomp/profile.js';

const ARCHES: SeccompArch[] = ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32', 'SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'];
const FOREIGN_AUDIT = 0xc0000015; // AUDIT_ARCH_PPC64LE: in no filter here
const BAD_ARCH = 'SCMP_ACT_KILL_PROCESS';
const U64 = (1n << 64n) - 1n;

let oracle: string;
/** "ARCH name" -> libseccomp's number, for every name in hako's tables and the profile. */
let theirs: Map<string, number | undefined>;

beforeAll(() => {
  expect(BAD_ARCH_ACTION).toBe(0x80000000); // what BAD_ARCH names for libseccomp
  oracle = buildOracle();
  const names = new Set(profileNames(CONTAINERS_PROFILE));
  for (const a of ARCHES) for (const n of Object.keys(ARCH_INFO[a].table)) names.add(n);
  theirs = libseccompNumbers(
    oracle,
    ARCHES.flatMap((a) => [...names].map((n) => [a, n] as [string, string])),
  );
});

const ours = (arch: SeccompArch, name: string): number | undefined =>
  Object.hasOwn(ARCH_INFO[arch].table, name) ? ARCH_INFO[arch].table[name] : undefined;

/** Names both sides number the same way on every arch of the filter; the rest are dropped. */
function agreed(profile: OciSeccomp, arches: SeccompArch[]): OciSeccomp {
  const ok = (n: string): boolean => arches.every((a) => ours(a, n) === theirs.get(`${a} ${n}`));
  return {
    ...profile,
    syscalls: (profile.syscalls ?? []).map((s) => ({ ...s, names: s.names.filter(ok) })).filter((s) => s.names.length > 0),
  };
}

function matches(args: readonly bigint[], cmps: OciSeccompArg[]): boolean {
  return cmps.every((c) => {
    const a = args[c.index] ?? 0n;
    const v = BigInt(c.value);
    switch (c.op) {
      case 'SCMP_CMP_EQ':
        return a === v;
      case 'SCMP_CMP_NE':
        return a !== v;
      case 'SCMP_CMP_LT':
        return a < v;
      case 'SCMP_CMP_LE':
        return a <= v;
      case 'SCMP_CMP_GT':
        return a > v;
      case 'SCMP_CMP_GE':
        return a >= v;
      default:
        return (a & v) === (BigInt(c.valueTwo ?? 0) & v); // libseccomp masks the expected bits too
    }
  });
}

/**
 * Whether libseccomp's answer for this call is unspecified, so not comparable. How several
 * conditional rules of different actions for one syscall combine is defined only by
 * libseccomp's rule tree (seccomp/libseccomp#118, #225): when they test the same argument
 * differently, or when more than one of them matches, it may pick any of them (or none).
 */
function unspecified(profile: OciSeccomp, arch: SeccompArch, nr: number, args: readonly bigint[]): boolean {
  const outcome = (r: { action: string; errnoRet?: number }): string => `${r.action}/${r.errnoRet ?? 1}`;
  // A rule whose action is the default one is dropped by both (runc skips it; libseccomp refuses it).
  const byDefault = outcome({ action: profile.defaultAction, errnoRet: profile.defaultErrnoRet });
  const rules = (profile.syscalls ?? []).filter((s) => s.names.some((n) => ours(arch, n) === nr) && outcome(s) !== byDefault);
  if (rules.some((r) => !r.args?.length)) return false; // an argument-less rule wins in both
  if (new Set(rules.map(outcome)).size < 2) return false;
  const tests = new Map<number, Set<string>>();
  for (const r of rules) {
    for (const a of r.args ?? []) {
      const op = a.op === 'SCMP_CMP_NE' ? 'SCMP_CMP_EQ' : a.op; // libseccomp stores NE as an inverted EQ
      tests.set(a.index, (tests.get(a.index) ?? new Set()).add(`${op}:${BigInt(a.value)}:${BigInt(a.valueTwo ?? 0)}`));
    }
  }
  if ([...tests.values()].some((t) => t.size > 1)) return true;
  const matching = new Set(rules.filter((r) => matches(args, r.args ?? [])).map(outcome));
  return matching.size > 1;
}

/** Argument vectors built from the profile's own constants and their neighbours. */
function argVectors(profile: OciSeccomp, bits: 32 | 64, count: number, seed: number, extra: readonly bigint[] = []): bigint[][] {
  const values = new Set<bigint>([0n, 1n, 0xffffffffn, 1n << 32n, U64, ...extra]);
  for (const s of profile.syscalls ?? []) {
    for (const a of s.args ?? []) {
      for (const v of [BigInt(a.value), BigInt(a.valueTwo ?? 0)]) {
        for (const w of [v, v - 1n, v + 1n, v ^ (1n << 32n), v | 0xffn, v & 0xffff_ffffn]) if (w >= 0n && w <= U64) values.add(w);
      }
    }
  }
  const pool = [...values].filter((v) => bits === 64 || v <= 0xffffffffn); // 32-bit arches zero-extend
  let x = seed >>> 0 || 1;
  const rnd = (): number => ((x = (x * 1103515245 + 12345) >>> 0), x >>> 8);
  const out: bigint[][] = [new Array<bigint>(6).fill(0n)];
  for (let i = 0; i < count; i++) out.push(Array.from({ length: 6 }, () => pool[rnd() % pool.length]!));
  return out;
}

const EXTRA_NRS = [
  999,
  4096,
  0x7fffffff,
  0xfffffffe,
  0xffffffff,
  0x0f0002,
  X32_SYSCALL_BIT,
  X32_SYSCALL_BIT + 1,
  X32_SYSCALL_BIT + 59,
  X32_SYSCALL_BIT + 545,
  X32_SYSCALL_BIT + 0x3fffffff,
];

interface Comparison {
  points: number;
  skipped: number;
  hakoSteps: number;
  libSteps: number;
  decisions: number;
}

/** Runs both programs on every nr 0..520 (and edge numbers) for each arch; returns the first difference. */
function compare(
  profile: OciSeccomp,
  arches: SeccompArch[],
  argCount: number,
  optimize: 1 | 2 = 1,
  only?: number[],
  extraValues: readonly bigint[] = [],
): Comparison {
  const hako = compileSeccomp(profile, { arch: 'x64' });
  const lib = libseccompProgram(oracle, profile, { badArch: BAD_ARCH, optimize });
  if (!lib.program) throw new Error(`libseccomp refused the profile: ${lib.error}`);
  const result: Comparison = { points: 0, skipped: 0, hakoSteps: 0, libSteps: 0, decisions: 0 };
  const audits = [...new Set(arches.map((a) => ARCH_INFO[a].audit)), FOREIGN_AUDIT];
  for (const audit of audits) {
    const nrs = [...(only ?? Array.from({ length: 521 }, (_, i) => i)), ...EXTRA_NRS];
    for (const nr of nrs) {
      // Which of the filter's arches this (audit, nr) belongs to, for the overlap check.
      const arch = arches.find(
        (a) =>
          ARCH_INFO[a].audit === audit && (a === 'SCMP_ARCH_X32') === (audit === 0xc000003e && nr >= X32_SYSCALL_BIT && nr !== 0xffffffff),
      );
      // x32 too: libseccomp compares only the low word there, hako all 64 bits (x32 calls
      // reach 64-bit kernel code), so the two agree only on zero-extended arguments.
      const bits = arch === 'SCMP_ARCH_X32' ? 32 : arch ? ARCH_INFO[arch].bits : 64;
      for (const args of argVectors(profile, bits, nr <= 520 ? argCount : 2, nr, extraValues)) {
        if (arch && unspecified(profile, arch, nr, args)) {
          result.skipped++;
          continue;
        }
        const h = runBpf(hako.program, { nr, arch: audit, args });
        const l = runBpf(lib.program, { nr, arch: audit, args });
        if (h.action !== l.action) {
          throw new Error(
            `audit 0x${audit.toString(16)} nr ${nr} args [${args.join(',')}]: hako 0x${h.action.toString(16)}, libseccomp 0x${l.action.toString(16)}`,
          );
        }
        result.points++;
        if (audit === audits[0] && nr <= 520 && args.every((a) => a === 0n)) {
          result.hakoSteps += h.steps;
          result.libSteps += l.steps;
          result.decisions++;
        }
      }
    }
  }
  return result;
}

describe('syscall tables', () => {
  it('agree with libseccomp wherever both know a name', () => {
    for (const arch of ARCHES) {
      const differ = Object.keys(ARCH_INFO[arch].table).filter((n) => {
        const t = theirs.get(`${arch} ${n}`);
        return t !== undefined && t !== ours(arch, n);
      });
      expect(differ, arch).toEqual([]);
      // libseccomp 2.5.4 predates the newest calls, and on x86 it numbers the socket and
      // System V IPC calls as socketcall/ipc pseudo-calls; the rest must match.
      const multiplexed =
        /^(socket|socketpair|bind|connect|listen|accept4|[gs]etsockopt|getsockname|getpeername|sendto|sendmsg|recvfrom|recvmsg|shutdown|sendmmsg|recvmmsg|sem(get|ctl)|shm(get|ctl|at|dt)|msg(get|snd|rcv|ctl))$/;
      const onlyOurs = Object.keys(ARCH_INFO[arch].table).filter(
        (n) => theirs.get(`${arch} ${n}`) === undefined && !(arch === 'SCMP_ARCH_X86' && multiplexed.test(n)),
      );
      console.log(
        `${arch}: ${Object.keys(ARCH_INFO[arch].table).length} calls, unknown to libseccomp 2.5.4: ${onlyOurs.join(' ') || 'none'}`,
      );
      expect(onlyOurs.length).toBeLessThan(15);
    }
  });
});

describe('hako vs libseccomp', () => {
  it('the containers default profile, x86_64 with x86 and x32', () => {
    const arches: SeccompArch[] = ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'];
    const profile = agreed(ociFromProfile(CONTAINERS_PROFILE, 'amd64', DEFAULT_CAPS, 'SCMP_ARCH_X86_64'), arches);
    const r = compare(profile, arches, 20);
    const tree = compare(profile, arches, 0, 2);
    const hako = compileSeccomp(profile, { arch: 'x64' });
    const lib = libseccompProgram(oracle, profile, { badArch: BAD_ARCH }).program!;
    const libTree = libseccompProgram(oracle, profile, { badArch: BAD_ARCH, optimize: 2 }).program!;
    console.log(
      `containers profile: hako ${hako.stats.instructions} instructions, ${(r.hakoSteps / r.decisions).toFixed(2)} steps/decision; ` +
        `libseccomp ${lib.length / 8} instructions, ${(r.libSteps / r.decisions).toFixed(2)} steps/decision (optimize 2: ${libTree.length / 8} instructions, ${(tree.libSteps / tree.decisions).toFixed(2)}); ` +
        `${r.points} points compared, ${r.skipped} skipped`,
    );
    expect(r.skipped).toBe(0);
    expect(r.hakoSteps).toBeLessThanOrEqual(r.libSteps);
    expect(tree.hakoSteps).toBeLessThanOrEqual(tree.libSteps);
  });

  it('the containers default profile with all capabilities, x86_64 and aarch64 together', () => {
    const arches: SeccompArch[] = ['SCMP_ARCH_X86_64', 'SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'];
    const all = ['CAP_SYS_ADMIN', 'CAP_SYS_PTRACE', 'CAP_SYS_MODULE', 'CAP_SYS_TIME', 'CAP_AUDIT_WRITE', ...DEFAULT_CAPS];
    const base = ociFromProfile(CONTAINERS_PROFILE, 'arm64', all, 'SCMP_ARCH_AARCH64');
    const profile = agreed({ ...base, architectures: arches }, arches);
    const r = compare(profile, arches, 10);
    expect(r.points).toBeGreaterThan(3000);
  });

  const handwritten: Array<[string, OciSeccomp]> = [
    [
      'allow-all with a few kills',
      {
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [
          { names: ['ptrace', 'kexec_load', 'reboot'], action: 'SCMP_ACT_KILL_PROCESS' },
          { names: ['mount'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 },
        ],
      },
    ],
    [
      'every operator, 64-bit values',
      {
        defaultAction: 'SCMP_ACT_ERRNO',
        defaultErrnoRet: 38,
        syscalls: [
          { names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0x1_0000_0005, op: 'SCMP_CMP_EQ' }] },
          { names: ['write'], action: 'SCMP_ACT_ALLOW', args: [{ index: 1, value: 0xffff_ffff, op: 'SCMP_CMP_NE' }] },
          { names: ['openat'], action: 'SCMP_ACT_TRAP', args: [{ index: 2, value: 0x2_0000_0000, op: 'SCMP_CMP_LT' }] },
          { names: ['close'], action: 'SCMP_ACT_LOG', args: [{ index: 0, value: 0x1_ffff_ffff, op: 'SCMP_CMP_LE' }] },
          {
            names: ['mmap'],
            action: 'SCMP_ACT_ALLOW',
            args: [
              { index: 3, value: 7, op: 'SCMP_CMP_GE' },
              { index: 5, value: 2n ** 63n, op: 'SCMP_CMP_GT' },
            ],
          },
          {
            names: ['ioctl'],
            action: 'SCMP_ACT_ALLOW',
            args: [{ index: 1, value: 0xffff_0000_ffffn, valueTwo: 0x5401, op: 'SCMP_CMP_MASKED_EQ' }],
          },
          { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0x7e020000, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] },
          { names: ['kill'], action: 'SCMP_ACT_ALLOW', args: [{ index: 1, value: 0, op: 'SCMP_CMP_GT' }] },
        ],
      },
    ],
    [
      'several rules per syscall, one action',
      {
        defaultAction: 'SCMP_ACT_KILL_PROCESS',
        syscalls: [
          { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0, op: 'SCMP_CMP_EQ' }] },
          { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }] },
          { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0xffffffff, op: 'SCMP_CMP_EQ' }] },
          {
            names: ['socket'],
            action: 'SCMP_ACT_ERRNO',
            args: [
              { index: 0, value: 16, op: 'SCMP_CMP_EQ' },
              { index: 2, value: 9, op: 'SCMP_CMP_EQ' },
            ],
          },
          { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 2, value: 9, op: 'SCMP_CMP_NE' }] },
          { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 16, op: 'SCMP_CMP_NE' }] },
          { names: ['exit_group', 'getppid'], action: 'SCMP_ACT_ALLOW' },
        ],
      },
    ],
    [
      'an argument-less rule beats conditional ones',
      {
        defaultAction: 'SCMP_ACT_ERRNO',
        syscalls: [
          { names: ['personality'], action: 'SCMP_ACT_TRAP', args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }] },
          { names: ['personality'], action: 'SCMP_ACT_ALLOW' },
        ],
      },
    ],
    [
      'notify and trace',
      {
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [
          { names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_NOTIFY' },
          { names: ['chmod'], action: 'SCMP_ACT_TRACE', errnoRet: 77 },
        ],
      },
    ],
  ];
  for (const [name, profile] of handwritten) {
    for (const arches of [
      ['SCMP_ARCH_X86_64'],
      ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X32'],
      ['SCMP_ARCH_X86_64', 'SCMP_ARCH_AARCH64'],
    ] as SeccompArch[][]) {
      it(`${name} (${arches.join(', ')})`, () => {
        const r = compare(agreed({ ...profile, architectures: arches }, arches), arches, 30);
        expect(r.points).toBeGreaterThan(1000);
      });
    }
  }

  describe('x86: the socket and System V IPC calls behind socketcall(2) and ipc(2)', () => {
    const x86: SeccompArch[] = ['SCMP_ARCH_X86'];
    const SOCKETCALL = ours('SCMP_ARCH_X86', 'socketcall')!;
    const IPC = ours('SCMP_ARCH_X86', 'ipc')!;
    // Every call number either multiplexer takes, and their neighbours, as argument 0.
    const calls = Array.from({ length: 27 }, (_, i) => BigInt(i));
    const nrs = [SOCKETCALL, IPC, ...['socket', 'connect', 'shutdown', 'msgget', 'recvmmsg'].map((n) => ours('SCMP_ARCH_X86', n)!)];

    it('rules that refuse (errno, kill, trap) cover the multiplexed way in too, as libseccomp builds them', () => {
      const profile: OciSeccomp = {
        defaultAction: 'SCMP_ACT_ALLOW',
        architectures: x86,
        syscalls: [
          { names: ['connect', 'accept'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 },
          // Conditional: through socketcall the condition cannot be read, so every socket() there is refused.
          { names: ['socket'], action: 'SCMP_ACT_ERRNO', errnoRet: 13, args: [{ index: 0, value: 40, op: 'SCMP_CMP_EQ' }] },
          { names: ['msgget', 'semop'], action: 'SCMP_ACT_KILL_PROCESS' },
          { names: ['shutdown', 'recvmmsg'], action: 'SCMP_ACT_TRAP' },
        ],
      };
      const r = compare(profile, x86, 40, 1, nrs, calls);
      expect(r.skipped).toBe(0);
      expect(r.points).toBeGreaterThan(200);
      const hako = compileSeccomp(profile, { arch: 'x64' });
      const at = (nr: number, a0: bigint) =>
        runBpf(hako.program, { nr, arch: ARCH_INFO.SCMP_ARCH_X86.audit, args: [a0, 0n, 0n, 0n, 0n, 0n] }).action;
      expect(at(SOCKETCALL, 3n)).toBe(0x00050001); // socketcall(SYS_CONNECT): EPERM
      expect(at(SOCKETCALL, 5n)).toBe(0x00050001); // SYS_ACCEPT: only reachable this way on x86
      expect(at(SOCKETCALL, 1n)).toBe(0x0005000d); // SYS_SOCKET, any family: EACCES
      expect(at(SOCKETCALL, 2n)).toBe(0x7fff0000); // SYS_BIND: allowed
      expect(at(IPC, 13n)).toBe(0x80000000); // ipc(MSGGET): kill
    });

    it("an unconditional rule on the multiplexer itself wins over what the calls' rules imply, in both", () => {
      const profile: OciSeccomp = {
        defaultAction: 'SCMP_ACT_ERRNO',
        architectures: x86,
        syscalls: [
          { names: ['socketcall', 'ipc'], action: 'SCMP_ACT_ALLOW' },
          { names: ['connect'], action: 'SCMP_ACT_KILL_PROCESS' },
          { names: ['socket', 'bind', 'msgget'], action: 'SCMP_ACT_ALLOW' },
        ],
      };
      const r = compare(profile, x86, 40, 1, nrs, calls);
      expect(r.skipped).toBe(0);
      expect(r.points).toBeGreaterThan(200);
    });

    it('a conditional rule that allows does not open the multiplexer wide (where libseccomp drops the condition)', () => {
      const profile: OciSeccomp = {
        defaultAction: 'SCMP_ACT_ERRNO',
        architectures: x86,
        syscalls: [
          { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }] },
          { names: ['bind'], action: 'SCMP_ACT_ALLOW' },
        ],
      };
      const hako = compileSeccomp(profile, { arch: 'x64' });
      const lib = libseccompProgram(oracle, profile, { badArch: BAD_ARCH }).program!;
      const data = (a0: bigint) => ({ nr: SOCKETCALL, arch: ARCH_INFO.SCMP_ARCH_X86.audit, args: [a0, 0n, 0n, 0n, 0n, 0n] });
      // socketcall(SYS_SOCKET, …) of any family: libseccomp allows it, hako keeps the default.
      expect(runBpf(lib, data(1n)).action).toBe(0x7fff0000);
      expect(runBpf(hako.program, data(1n)).action).toBe(0x00050001);
      // An unconditional allow is carried over by both.
      expect(runBpf(hako.program, data(2n)).action).toBe(0x7fff0000);
      expect(runBpf(lib, data(2n)).action).toBe(0x7fff0000);
    });
  });

  it('generated profiles', () => {
    const pool = [
      'read',
      'write',
      'openat',
      'close',
      'mmap',
      'ioctl',
      'socket',
      'personality',
      'clone',
      'kill',
      'getppid',
      'mount',
      'ptrace',
      'bpf',
      'futex',
      'prctl',
      'setns',
      'unshare',
      'fcntl',
      'exit_group',
      'io_uring_setup',
      'getrandom',
      'execve',
      'madvise',
      'open',
      'stat',
      '_llseek',
      'arch_prctl',
      'renameat2',
      'statx',
    ];
    const actions = fc.oneof(
      fc
        .constantFrom('SCMP_ACT_ALLOW', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY')
        .map((action) => ({ action, errnoRet: undefined as number | undefined })),
      fc.record({ action: fc.constantFrom('SCMP_ACT_ERRNO', 'SCMP_ACT_TRACE'), errnoRet: fc.integer({ min: 0, max: 4095 }) }),
    );
    const value = (wide: boolean): fc.Arbitrary<bigint> =>
      fc.oneof(
        fc.constantFrom(0n, 1n, 2n, 0xffn, 0xffffffffn),
        wide ? fc.bigInt({ min: 0n, max: U64 }) : fc.bigInt({ min: 0n, max: 0xffffffffn }),
        wide ? fc.constantFrom(1n << 32n, (1n << 32n) + 1n, U64, 1n << 63n) : fc.constant(3n),
      );
    const profile = (arches: SeccompArch[]) => {
      const wide = arches.every((a) => ARCH_INFO[a].bits === 64 && a !== 'SCMP_ARCH_X32');
      const arg = fc
        .record({
          index: fc.integer({ min: 0, max: 5 }),
          value: value(wide),
          valueTwo: value(wide),
          op: fc.constantFrom(
            'SCMP_CMP_NE',
            'SCMP_CMP_LT',
            'SCMP_CMP_LE',
            'SCMP_CMP_EQ',
            'SCMP_CMP_GE',
            'SCMP_CMP_GT',
            'SCMP_CMP_MASKED_EQ',
          ),
        })
        // MASKED_EQ with a zero mask does not depend on the argument (always true for a zero
        // datum, never otherwise): libseccomp folds such a rule into an unconditional one and
        // then keeps the first of two unconditional rules, while hako lets the unconditional
        // rule decide. An undefined corner (found by seed -1027461012): left out.
        .filter((a) => !(a.op === 'SCMP_CMP_MASKED_EQ' && a.value === 0n));
      const rule = fc
        .record({
          names: fc.subarray(pool, { minLength: 1, maxLength: 4 }),
          act: actions,
          args: fc.uniqueArray(arg, { maxLength: 2, selector: (a) => a.index }),
        })
        .map(({ names, act, args }) => ({ names, ...act, ...(args.length ? { args } : {}) }));
      // Kept small: libseccomp 2.5.4's tree building can spin for minutes on larger random sets.
      return fc.record({ def: actions, syscalls: fc.array(rule, { maxLength: 8 }) }).map(
        ({ def, syscalls }) =>
          ({
            defaultAction: def.action,
            ...(def.errnoRet !== undefined ? { defaultErrnoRet: def.errnoRet } : {}),
            architectures: arches,
            syscalls,
          }) as OciSeccomp,
      );
    };
    const archSets = fc.constantFrom<SeccompArch[]>(
      ['SCMP_ARCH_X86_64'],
      ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X32'],
      ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
      ['SCMP_ARCH_X86_64', 'SCMP_ARCH_AARCH64'],
    );
    // The pool's numbers on every arch and their neighbours; the rest only meet the default.
    const near = [
      ...new Set(
        ARCHES.flatMap((a) =>
          pool
            .map((n) => ours(a, n))
            .filter((nr) => nr !== undefined)
            .flatMap((nr) => [nr - 1, nr, nr + 1]),
        ),
      ),
    ].filter((nr) => nr >= 0 && nr <= 520);
    let compared = 0;
    let refused = 0;
    let points = 0;
    let skipped = 0;
    fc.assert(
      fc.property(
        archSets.chain((arches) => profile(arches).map((p) => [arches, p] as const)),
        ([arches, p]) => {
          // Names missing on one of the arches are left out here: with libseccomp 2.5.4 a rule
          // for `stat` (absent on aarch64) made aarch64's `prctl` rule vanish from its filter.
          const everywhere = {
            ...p,
            syscalls: (p.syscalls ?? [])
              .map((x) => ({ ...x, names: x.names.filter((n) => arches.every((a) => ours(a, n) !== undefined)) }))
              .filter((x) => x.names.length > 0),
          };
          const prof = agreed(everywhere, arches);
          if (!libseccompProgram(oracle, prof, { badArch: BAD_ARCH }).program) {
            refused++; // libseccomp refuses some overlaps (same test, different action)
            return;
          }
          const r = compare(prof, arches, 8, 1, near);
          compared++;
          points += r.points;
          skipped += r.skipped;
        },
      ),
      { numRuns: 150 },
    );
    console.log(
      `generated profiles: ${compared} compared (${points} points agree, ${skipped} unspecified skipped), ${refused} refused by libseccomp`,
    );
    expect(compared).toBeGreaterThan(100);
  });
});
