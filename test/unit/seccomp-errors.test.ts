import { describe, expect, it } from 'vitest';
import { compileSeccomp, SeccompError, type OciSeccomp } from '../../src/seccomp/index.js';

const rule = (extra: object): OciSeccomp => ({
  defaultAction: 'SCMP_ACT_ERRNO',
  syscalls: [
    { names: ['read'], action: 'SCMP_ACT_ALLOW' },
    { names: ['write'], action: 'SCMP_ACT_ALLOW', ...extra },
  ] as OciSeccomp['syscalls'],
});
const arg = (a: object) => rule({ args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ', ...a }] });

describe('seccomp errors', () => {
  it.each<[string, OciSeccomp, string]>([
    ['unknown default action', { defaultAction: 'SCMP_ACT_NOPE' }, 'linux.seccomp.defaultAction: unknown action "SCMP_ACT_NOPE"'],
    ['unknown action', rule({ action: 'SCMP_ACT_FOO' }), 'linux.seccomp.syscalls[1].action: unknown action "SCMP_ACT_FOO"'],
    ['unknown operator', arg({ op: 'SCMP_CMP_LIKE' }), 'linux.seccomp.syscalls[1].args[0].op: unknown operator "SCMP_CMP_LIKE"'],
    ['argument index over 5', arg({ index: 6 }), 'linux.seccomp.syscalls[1].args[0].index: 6 is out of range (0..5)'],
    [
      'more than 6 arguments',
      rule({ args: Array.from({ length: 7 }, (_, i) => ({ index: i % 6, value: 0, op: 'SCMP_CMP_EQ' })) }),
      'linux.seccomp.syscalls[1].args: a rule compares at most 6 arguments, this one has 7',
    ],
    [
      'errnoRet over 4095',
      rule({ action: 'SCMP_ACT_ERRNO', errnoRet: 4096 }),
      'linux.seccomp.syscalls[1].errnoRet: 4096 is out of range (0..4095)',
    ],
    [
      'negative errnoRet',
      rule({ action: 'SCMP_ACT_ERRNO', errnoRet: -1 }),
      'linux.seccomp.syscalls[1].errnoRet: -1 is out of range (0..4095)',
    ],
    [
      'defaultErrnoRet out of range',
      { defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 5000 },
      'linux.seccomp.defaultErrnoRet: 5000 is out of range (0..4095)',
    ],
    [
      'errnoRet on ALLOW',
      rule({ errnoRet: 1 }),
      'linux.seccomp.syscalls[1].errnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take a return value, not SCMP_ACT_ALLOW',
    ],
    [
      'unknown architecture',
      { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_VAX'] },
      'linux.seccomp.architectures[1]: unknown architecture "SCMP_ARCH_VAX"',
    ],
    [
      'unknown flag',
      { defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_FAST'] },
      'linux.seccomp.flags[0]: unknown flag "SECCOMP_FILTER_FLAG_FAST"',
    ],
    [
      'value over 64 bits',
      arg({ value: 2n ** 64n }),
      'linux.seccomp.syscalls[1].args[0].value: 18446744073709551616 is not an unsigned 64-bit integer',
    ],
  ])('%s', (_, profile, message) => {
    const run = () => compileSeccomp(profile, { arch: 'x64' });
    expect(run).toThrow(SeccompError);
    expect(run).toThrow(message);
  });

  it('refuses a program over 4096 instructions', () => {
    // Each rule on its own syscall number with distinct 64-bit tests: about 8 instructions a rule.
    const syscalls = Array.from({ length: 600 }, (_, i) => ({
      names: ['ioctl'],
      action: 'SCMP_ACT_ALLOW',
      args: [
        { index: 1, value: 2n ** 40n + BigInt(i), op: 'SCMP_CMP_EQ' },
        { index: 2, value: 2n ** 40n + BigInt(i), op: 'SCMP_CMP_EQ' },
      ],
    }));
    expect(() => compileSeccomp({ defaultAction: 'SCMP_ACT_ERRNO', syscalls }, { arch: 'x64' })).toThrow(
      /^linux\.seccomp: the compiled filter has \d+ instructions, over the kernel's limit of 4096$/,
    );
  });

  it('logs and skips names no architecture knows, and names missing on one arch', () => {
    const log: string[] = [];
    const r = compileSeccomp(
      {
        defaultAction: 'SCMP_ACT_ERRNO',
        architectures: ['SCMP_ARCH_X86'],
        syscalls: [{ names: ['no_such_call', 'newfstatat', '_llseek'], action: 'SCMP_ACT_ALLOW' }],
      },
      { arch: 'x64', log: (m) => log.push(m) },
    );
    expect(r.stats.unknownNames).toEqual(['no_such_call']);
    expect(log).toContain('seccomp: unknown syscall no_such_call skipped (no supported architecture has it)');
    expect(log).toContain('seccomp: linux.seccomp.syscalls[0]: _llseek does not exist on SCMP_ARCH_X86_64, skipped');
    expect(log).toContain('seccomp: linux.seccomp.syscalls[0]: newfstatat does not exist on SCMP_ARCH_X86, skipped');
  });
});
