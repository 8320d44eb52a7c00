// hako.sig.json's format, without containers: the signature is over the checked fields, not the
// file's layout (a reformatted file still verifies), a field the schema does not know is
// refused, and a manifest of a tree lists every path with its fields.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, describe, expect, test } from 'vitest';
import { newKeys } from '../../src/seal/keys.js';
import { signBundle } from '../../src/sign/sign.js';
import { verifyBundle } from '../../src/sign/verify.js';
import { buildManifest } from '../../src/sign/manifest.js';
import { diffManifests, summarize } from '../../src/sign/diff.js';
import { defaultSpec } from '../../src/oci/default.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-sgn-unit-'));
fs.chmodSync(dir, 0o755);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function bundle(): { bundle: string; trust: string; key: string } {
  const b = fs.mkdtempSync(path.join(dir, 'b-'));
  fs.chmodSync(b, 0o755);
  const keys = path.join(b, 'keys');
  const trust = path.join(b, 'trust');
  fs.mkdirSync(keys, { mode: 0o700 });
  fs.mkdirSync(trust, { mode: 0o755 });
  newKeys('alice', keys);
  fs.copyFileSync(path.join(keys, 'alice.id.json'), path.join(trust, 'alice.id.json'));
  const cfg = defaultSpec(false);
  cfg.root = { path: 'rootfs', readonly: true };
  fs.writeFileSync(path.join(b, 'config.json'), JSON.stringify(cfg));
  fs.mkdirSync(path.join(b, 'rootfs/etc'), { recursive: true, mode: 0o755 });
  fs.writeFileSync(path.join(b, 'rootfs/etc/hostname'), 'box\n', { mode: 0o644 });
  fs.symlinkSync('hostname', path.join(b, 'rootfs/etc/name'));
  return { bundle: b, trust, key: path.join(keys, 'alice.key') };
}

describe('hako.sig.json', () => {
  test('a reformatted file (other whitespace, other key order) still verifies', () => {
    const b = bundle();
    signBundle(b.bundle, b.key);
    const file = path.join(b.bundle, 'hako.sig.json');
    const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    const reordered = Object.fromEntries(Object.entries(doc).reverse());
    fs.writeFileSync(file, JSON.stringify(reordered, null, 4));
    expect(verifyBundle(b.bundle, b.trust).signer.name).toBe('alice');
  });

  test('a field the schema does not know is refused, not ignored', () => {
    const b = bundle();
    signBundle(b.bundle, b.key);
    const file = path.join(b.bundle, 'hako.sig.json');
    const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as { rootfs: { entries: Record<string, unknown>[] } };
    doc.rootfs.entries[1]!.xattrs = { 'security.capability': 'x' };
    fs.writeFileSync(file, JSON.stringify(doc));
    expect(() => verifyBundle(b.bundle, b.trust)).toThrow(/^hako\.sig\.json: rootfs\.entries\[1\]\.xattrs: unexpected property$/);
  });

  test('a manifest lists every path with its fields; differences name the path and field', () => {
    const b = bundle();
    const root = path.join(b.bundle, 'rootfs');
    const before = buildManifest(root, 'rootfs');
    expect(before.map((e) => [e.path, e.type])).toEqual([
      ['.', 'dir'],
      ['etc', 'dir'],
      ['etc/hostname', 'file'],
      ['etc/name', 'symlink'],
    ]);
    expect(before[2]).toMatchObject({ mode: '0644', size: 4, sha256: createHash('sha256').update('box\n').digest('hex') });
    expect(before[3]!.target).toBe('hostname');
    fs.chmodSync(path.join(root, 'etc/hostname'), 0o600);
    fs.writeFileSync(path.join(root, 'etc/new'), '');
    fs.rmSync(path.join(root, 'etc/name'));
    const diffs = diffManifests(before, buildManifest(root, 'rootfs'), 'rootfs');
    expect(diffs).toEqual(['rootfs/etc/hostname: mode 0644 → 0600', 'rootfs/etc/new: added', 'rootfs/etc/name: removed']);
    expect(summarize(diffs, 2)).toBe('rootfs/etc/hostname: mode 0644 → 0600; rootfs/etc/new: added; and 1 more');
  });
});
