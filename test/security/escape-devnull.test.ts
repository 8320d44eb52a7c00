// Issue 9, class 5: masking through a rootfs's own /dev/null. As root, with no user namespace and
// no tmpfs on /dev, the rootfs's dev/null is what a runtime that trusts the tree bind-mounts over
// every masked path: a symlink to /proc/sys/kernel/core_pattern made the host's core_pattern
// writable at /proc/keys (host root code execution). Expected: create refuses with one sentence
// naming /dev/null, or the container runs and writing the masked path leaves the host's
// core_pattern as it was (and the masked path is the real null device). Also a rootfs whose
// dev/null is a regular file, or another device (1:5). The host's core_pattern is saved first and
// restored after, whatever happens. Control: a config that deliberately binds core_pattern in
// does change it, and the check sees that.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { hako } from '../helpers/hako.js';
import { IS_ROOT } from '../helpers/env.js';
import type { Config } from '../../src/oci/config.js';
import { attackKit, copyRootfs, jsonLines, oneSentence } from './helpers/attack.js';

const kit = attackKit();
const CORE_PATTERN = '/proc/sys/kernel/core_pattern';
let saved: string | null = null;

const readCorePattern = () => fs.readFileSync(CORE_PATTERN, 'utf8');
function restore(): void {
  if (saved !== null && readCorePattern() !== saved) fs.writeFileSync(CORE_PATTERN, saved);
}

beforeAll(() => {
  if (IS_ROOT) saved = readCorePattern();
});
afterAll(() => restore());
process.once('exit', () => {
  try {
    restore();
  } catch {
    // nothing more to do
  }
});

/** A rootfs copy whose dev/null is made by make(). */
function rootfsWithDevNull(make: (devNull: string, rootfs: string) => void): string {
  const rootfs = copyRootfs(path.join(kit.scratch('root', 'rootfs-'), 'rootfs'));
  fs.mkdirSync(path.join(rootfs, 'dev'), { recursive: true });
  fs.rmSync(path.join(rootfs, 'dev/null'), { force: true });
  make(path.join(rootfs, 'dev/null'), rootfs);
  return rootfs;
}

/** As root: no user namespace, nothing mounted on /dev, /proc/keys masked; the attacker writes it. */
function config(rootfs: string, value: string, edit: (c: Config) => void = () => {}) {
  return kit.makeBundle('root', (c) => {
    c.root = { path: rootfs, readonly: true };
    c.linux!.namespaces = c.linux!.namespaces!.filter((n) => n.type !== 'user');
    c.mounts = c.mounts!.filter((m) => !m.destination.startsWith('/dev'));
    c.linux!.maskedPaths = ['/proc/keys'];
    c.process!.args = ['sh', '-c', `/bin/attacker write /proc/keys '${value}'; stat -c 'dev=%t:%T type=%F' /proc/keys`];
    edit(c);
  });
}

const newValue = () => `core.hako-attack-${crypto.randomBytes(4).toString('hex')}`;

const CASES: Array<[string, (devNull: string) => void]> = [
  ['a symlink to /proc/sys/kernel/core_pattern', (p) => fs.symlinkSync(CORE_PATTERN, p)],
  ['a symlink to ../proc/sys/kernel/core_pattern', (p) => fs.symlinkSync('../proc/sys/kernel/core_pattern', p)],
  ['a regular file', (p) => fs.writeFileSync(p, 'not the null device\n')],
  ['another device (1:5, zero)', (p) => execFileSync('mknod', ['-m', '666', p, 'c', '1', '5'])],
];

describe("masking with the rootfs's /dev/null (root, no user namespace)", () => {
  const run = it.skipIf(!IS_ROOT);

  run('the check sees a changed core_pattern (control: a config that binds it in)', () => {
    const rootfs = rootfsWithDevNull((p) => execFileSync('mknod', ['-m', '666', p, 'c', '1', '3']));
    fs.writeFileSync(path.join(rootfs, 'cp'), '');
    const value = newValue();
    const { bundle, root } = config(rootfs, value, (c) => {
      c.mounts!.push({ destination: '/cp', type: 'bind', source: CORE_PATTERN, options: ['bind', 'rw'] });
      c.process!.args = ['/bin/attacker', 'write', '/cp', value];
    });
    try {
      const r = hako('root', root, ['run', '-b', bundle, 'ctl']);
      expect(r.stderr).toBe('');
      expect(jsonLines(r.stdout)[0]).toMatchObject({ open: true, writeErrno: 0 });
      expect(readCorePattern().trim()).toBe(value);
    } finally {
      restore();
    }
    expect(readCorePattern()).toBe(saved);
  });

  for (const [what, make] of CASES)
    run(`dev/null is ${what}: refused, or the masked path is the real null device`, () => {
      const rootfs = rootfsWithDevNull(make);
      const value = newValue();
      const { bundle, root } = config(rootfs, value);
      let r;
      let after;
      try {
        r = hako('root', root, ['run', '-b', bundle, 'dn']);
        after = readCorePattern();
      } finally {
        restore();
        hako('root', root, ['delete', '--force', 'dn']);
      }
      expect(after, `the host's core_pattern was changed from inside the container: ${r.stdout}`).toBe(saved);
      if (r.status !== 0) {
        expect(oneSentence(r.stderr), r.stderr).toBe(true);
        expect(r.stderr).toMatch(/\/dev\/null/);
      } else {
        // It ran: /proc/keys must be masked by the real null device, whatever the rootfs had.
        expect(r.stdout).toMatch(/dev=1:3 type=character special file/);
      }
    });
});
