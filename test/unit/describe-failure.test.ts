// describeFailure turns a failed step's errno into a sentence; the errno
// numbers come by name from os.constants.errno (src/runtime/errno.ts).
import os from 'node:os';
import { describe, it, expect } from 'vitest';
import { describeFailure } from '../../src/runtime/launch.js';
import { E, errnoName } from '../../src/sys/errno.js';
import type { BuiltPlan } from '../../src/plan/build.js';
import type { Step } from '../../src/plan/ops.js';

const plan = (...steps: Step[]): BuiltPlan => ({
  cloneFlags: 0,
  parentNamespaces: [],
  parentNamespaceTypes: [],
  fds: [],
  steps,
  idmap: null,
  setgroupsDenied: false,
  dumpableWhileMapped: false,
  fifoFd: -1,
});
const hook: Step = { op: 'RUN_HOOK', args: [5, 1, '/bin/hook'], what: 'run the startContainer hook /bin/hook' };

describe('describeFailure', () => {
  it('names errno numbers as the kernel does', () => {
    expect(E).toBe(os.constants.errno);
    expect([E.EPERM, E.ENOENT, E.ENXIO, E.EACCES, E.EEXIST, E.EXDEV, E.ENOTDIR, E.ELOOP, E.ETIME, E.ENOLINK]).toEqual([
      1, 2, 6, 13, 17, 18, 20, 40, 62, 67,
    ]);
    expect(errnoName(E.EPERM)).toBe('EPERM');
  });

  it('says why a startContainer hook failed, and no longer calls every errno an exit status', () => {
    expect(describeFailure(plan(hook), 0, E.ETIME)).toBe('run the startContainer hook /bin/hook failed: timed out after 5 s');
    expect(describeFailure(plan(hook), 0, E.ENOENT)).toBe('run the startContainer hook /bin/hook failed: not found in the container');
    expect(describeFailure(plan(hook), 0, E.ECHILD)).toBe('run the startContainer hook /bin/hook failed: non-zero exit status');
    expect(describeFailure(plan(hook), 0, E.EINVAL)).toBe('run the startContainer hook /bin/hook failed: EINVAL');
  });

  it('keeps its sentences for the other steps', () => {
    const find: Step = { op: 'FIND_EXEC', args: ['/bin/nope'], what: 'find the executable "nope"' };
    const exec: Step = { op: 'EXEC', args: [1, 'nope'], what: 'execute nope' };
    expect(describeFailure(plan(find, exec), 0, E.ENOTDIR)).toBe('exec: "nope": executable file not found in $PATH');
    expect(describeFailure(plan(exec), 0, E.EACCES)).toBe('exec nope failed: permission denied');
    const chdir: Step = { op: 'CHDIR', args: ['/x'], what: 'change to the working directory /x' };
    expect(describeFailure(plan(chdir), 0, E.EXDEV)).toBe(
      'change to the working directory /x failed: it does not exist inside the container, or leads outside it (EXDEV) (step 1 of 1)',
    );
    const mount: Step = { op: 'MOUNT', args: ['proc', '/proc', 'proc', 0, '', 0], what: 'mount proc on /proc' };
    expect(describeFailure(plan(mount), 0, E.ELOOP)).toMatch(/^mount proc on \/proc failed: the mount point \/proc is a symlink/);
    expect(describeFailure(plan(mount), 0, E.EBUSY)).toBe('mount proc on /proc failed: EBUSY (step 1 of 1)');
  });
});
