// Issue 9, class 7: a rootfs whose /proc, /dev or /sys is a symlink (to /, or to ..) would have
// hako mount procfs, a tmpfs or sysfs over the container's root, or outside it. Expected: create
// refuses with one sentence naming the path, and leaves nothing behind — no state under --root,
// no process, no mount (in our mount table, or any process's) referencing the rootfs. Control: a
// created container is seen by the same checks, and gone after delete.
import fs from 'node:fs';
import path from 'node:path';
import { describe, it, expect } from 'vitest';
import { hako, WHO, type Who } from '../helpers/hako.js';
import { IS_ROOT } from '../helpers/env.js';
import { attackKit, copyRootfs, oneSentence, processesWithMountsOf, ownMountsOf } from './helpers/attack.js';

const kit = attackKit();

/** A rootfs copy with `name` replaced by a symlink to target (null: left as is). */
function rootfsWith(who: Who, name: string | null, target: string): string {
  const dir = kit.scratch(who, 'rootfs-');
  const rootfs = copyRootfs(path.join(dir, 'rootfs'));
  if (name) {
    fs.rmSync(path.join(rootfs, name), { recursive: true, force: true });
    fs.symlinkSync(target, path.join(rootfs, name));
  }
  return rootfs;
}

/** What a create left: state under --root, a process or a mount that references the rootfs. */
function leftovers(root: string, id: string, rootfs: string): string[] {
  const out: string[] = [];
  if (fs.existsSync(path.join(root, id))) out.push(`state dir ${path.join(root, id)}`);
  const procs = processesWithMountsOf(rootfs);
  if (procs.length) out.push(`processes with mounts of the rootfs: ${procs.join(', ')}`);
  const mounts = ownMountsOf(rootfs);
  if (mounts.length) out.push(`mounts in the runtime's mount table: ${mounts.join(' | ')}`);
  return out;
}

const CASES: Array<[string, string, RegExp]> = [
  ['proc', '/', /\/proc/],
  ['proc', '..', /\/proc/],
  ['dev', '/', /\/dev/],
  ['sys', '/', /\/sys/],
];

describe.each(WHO)('kernel filesystems over a symlinked rootfs directory (%s)', (who) => {
  const run = it.skipIf(who === 'root' && !IS_ROOT);

  run('the checks see a created container, and nothing once it is deleted (control)', () => {
    const rootfs = rootfsWith(who, null, '');
    const { bundle, root } = kit.makeBundle(who, (c) => (c.root = { path: rootfs, readonly: true }));
    const r = hako(who, root, ['create', '-b', bundle, 'ctl'], { detached: true });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    try {
      const left = leftovers(root, 'ctl', rootfs);
      expect(left.some((l) => l.startsWith('state dir'))).toBe(true);
      expect(left.some((l) => l.startsWith('processes with mounts'))).toBe(true);
    } finally {
      hako(who, root, ['delete', '--force', 'ctl']);
    }
    expect(leftovers(root, 'ctl', rootfs)).toEqual([]);
  });

  for (const [name, target, names] of CASES)
    run(`rootfs/${name} -> ${target} is refused with one sentence, nothing left behind`, () => {
      const rootfs = rootfsWith(who, name, target);
      const { bundle, root } = kit.makeBundle(who, (c) => {
        c.root = { path: rootfs, readonly: true };
        c.process!.args = ['sh', '-c', 'ls /; cat /proc/self/mountinfo'];
      });
      const id = `sym-${name}`;
      const r = hako(who, root, ['create', '-b', bundle, id], { detached: true });
      const left = leftovers(root, id, rootfs);
      if (r.status === 0) hako(who, root, ['delete', '--force', id]);
      expect(r.status, `create succeeded: ${r.stdout}`).not.toBe(0);
      expect(oneSentence(r.stderr), r.stderr).toBe(true);
      expect(r.stderr).toMatch(names);
      expect(left).toEqual([]);
      expect(hako(who, root, ['state', id]).status).not.toBe(0);
    });
});
