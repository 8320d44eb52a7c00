// A recording -> the two-phase profile (src/profile/build.ts): what is allowed in the kernel,
// what only during start-up, and the argument rules (clone, clone3, socket).
import { describe, expect, it } from 'vitest';
import { buildProfile, ALWAYS_ALLOWED } from '../../src/profile/build.js';
import type { Recording } from '../../src/profile/recording.js';

const THREAD_FLAGS = 'flags=0x3d0f00'; // what glibc's pthread_create passes (CLONE_VM|...|CLONE_THREAD|...)
const FORK_FLAGS = 'flags=0x1200000'; // fork(): CLONE_CHILD_SETTID|CLONE_CHILD_CLEARTID

function recording(calls: Partial<Recording['calls']>): Recording {
  return { architecture: 'SCMP_ARCH_X86_64', calls: { startup: {}, serving: {}, ...calls }, unnamed: [], notifications: 0 };
}

describe('buildProfile', () => {
  it('allows the serving set in the kernel, notifies start-up-only calls, and refuses the rest through the supervisor', () => {
    const b = buildProfile(recording({ startup: { openat: [''], read: [''], execve: [''] }, serving: { read: [''], epoll_wait: [''] } }));
    expect(b.profile.defaultAction).toBe('SCMP_ACT_NOTIFY');
    expect(b.serving).toEqual([...new Set(['read', 'epoll_wait', ...ALWAYS_ALLOWED])].sort());
    expect(b.startupOnly).toEqual(['execve', 'openat']);
    expect(b.profile.syscalls).toContainEqual({ names: ['execve', 'openat'], action: 'SCMP_ACT_NOTIFY' });
  });

  it('a workload that only started threads may start threads only: (flags & (namespaces|CLONE_THREAD)) == CLONE_THREAD', () => {
    const b = buildProfile(recording({ startup: { clone: [THREAD_FLAGS] }, serving: { clone: [THREAD_FLAGS] } }));
    const clone = b.profile.syscalls!.find((s) => s.names.includes('clone'))!;
    expect(clone).toEqual({
      names: ['clone'],
      action: 'SCMP_ACT_ALLOW',
      args: [{ index: 0, value: 0x7e030080, valueTwo: 0x10000, op: 'SCMP_CMP_MASKED_EQ' }],
    });
    expect(b.profile.syscalls!.find((s) => s.names.includes('clone3'))).toEqual({
      names: ['clone3'],
      action: 'SCMP_ACT_ERRNO',
      errnoRet: 38,
    });
  });

  it('a workload that forked may fork, still without namespace flags', () => {
    const b = buildProfile(recording({ startup: { clone: [THREAD_FLAGS, FORK_FLAGS] } }));
    const clone = b.profile.syscalls!.find((s) => s.names.includes('clone'))!;
    expect(clone.args).toEqual([{ index: 0, value: 0x7e020080, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }]);
  });

  it('socket is allowed per learned family only', () => {
    const b = buildProfile(recording({ serving: { socket: ['domain=1 type=1', 'domain=2 type=1'] } }));
    const rules = b.profile.syscalls!.filter((s) => s.names.includes('socket'));
    expect(rules.map((r) => r.args)).toEqual([[{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }], [{ index: 0, value: 2, op: 'SCMP_CMP_EQ' }]]);
    expect(b.socketDomains).toEqual([1, 2]);
  });
});
