// Bad input gets one clear sentence on stderr, a non-zero exit, and leaves no
// state dir, mount or process behind.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, it, expect } from 'vitest';
import { makeBundle, hako, WHO, scratch, type Who } from '../helpers/hako.js';
import { IS_ROOT, BUSYBOX_ROOTFS, TEST_USER } from '../helpers/env.js';
import type { Config } from '../../src/oci/config.js';
import { stateDirs as leftovers, mountsUnder } from '../helpers/leftovers.js';

function expectRefused(who: Who, edit: (c: Config) => void, message: string | RegExp, id = 'bad1', raw?: string) {
  const { bundle, root } = makeBundle(who, edit);
  if (raw !== undefined) fs.writeFileSync(path.join(bundle, 'config.json'), raw);
  const r = hako(who, root, ['create', '-b', bundle, id]);
  expect(r.status).not.toBe(0);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  if (typeof message === 'string') expect(lines[0]).toBe(`hako: ${message}`);
  else expect(lines[0]).toMatch(message);
  expect(leftovers(root)).toEqual([]);
  expect(mountsUnder(bundle)).toEqual([]);
  return { bundle, root };
}

describe.each(WHO)('bad input (%s)', (who) => {
  const run = it.skipIf(who === 'root' && !IS_ROOT);

  run('malformed JSON', () => {
    expectRefused(who, () => {}, /^hako: .*config\.json is not valid JSON: /, 'bad1', '{"ociVersion": "1.2.0",');
  });

  run('a wrong field is named by its JSON path', () => {
    expectRefused(
      who,
      (c) => ((c.process!.user as unknown as Record<string, unknown>).uid = 'zero'),
      /^hako: config\.json: process\.user\.uid: expected integer$/,
    );
    expectRefused(
      who,
      (c) => (c.mounts![2].destination = 'dev/pts'),
      'config.json: mounts[2].destination: "dev/pts" must be an absolute path',
    );
  });

  run('unknown fields are tolerated', () => {
    const { bundle, root } = makeBundle(who, (c) => Object.assign(c as Record<string, unknown>, { vendorThing: { a: 1 } }));
    expect(hako(who, root, ['run', '-b', bundle, 'ok1']).status).toBe(0);
  });

  run('missing rootfs', () => {
    expectRefused(who, (c) => (c.root!.path = 'nope'), /^hako: config\.json: root\.path: ".*\/nope" does not exist$/);
  });

  run('unsafe ids', () => {
    const { bundle, root } = makeBundle(who);
    for (const id of ['../x', 'a/b', '..', '.hidden', 'a b']) {
      const r = hako(who, root, ['create', '-b', bundle, id]);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/^hako: invalid container id /);
    }
    expect(leftovers(root)).toEqual([]);
  });

  run('an id already in use', () => {
    const { bundle, root } = makeBundle(who, (c) => (c.process!.args = ['sleep', '30']));
    expect(hako(who, root, ['create', '-b', bundle, 'dup'], { detached: true }).status).toBe(0);
    const r = hako(who, root, ['create', '-b', bundle, 'dup']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toBe('hako: container "dup" already exists\n');
    expect(hako(who, root, ['delete', '--force', 'dup']).status).toBe(0);
    expect(leftovers(root)).toEqual([]);
  });

  run('duplicate and unknown namespaces', () => {
    expectRefused(
      who,
      (c) => c.linux!.namespaces!.push({ type: 'pid' }),
      /^hako: config\.json: linux\.namespaces\[\d\]: namespace "pid" is listed twice$/,
    );
    expectRefused(
      who,
      (c) => c.linux!.namespaces!.push({ type: 'bogus' as never }),
      /^hako: config\.json: linux\.namespaces\[\d\]\.type: "bogus" is not one of "pid", "network", "mount", .*"time"$/,
    );
  });

  // This host enables neither AppArmor nor SELinux: a profile or label asked for is refused, not ignored.
  const noLsm = !fs.existsSync('/sys/fs/selinux/enforce') && !fs.existsSync('/sys/module/apparmor/parameters/enabled');
  it.skipIf(!noLsm || (who === 'root' && !IS_ROOT))('an AppArmor profile or SELinux label on a host without them', () => {
    expectRefused(
      who,
      (c) => (c.process!.apparmorProfile = 'docker-default'),
      'config.json: process.apparmorProfile: AppArmor is not enabled on this host: remove the profile or enable AppArmor',
    );
    expectRefused(
      who,
      (c) => (c.process!.selinuxLabel = 'system_u:system_r:container_t:s0'),
      'config.json: process.selinuxLabel: SELinux is not enabled on this host: remove the label or enable SELinux',
    );
    expectRefused(
      who,
      (c) => (c.linux!.mountLabel = 'system_u:object_r:container_file_t:s0'),
      'config.json: linux.mountLabel: SELinux is not enabled on this host: remove the label or enable SELinux',
    );
  });

  run('a missing executable', () => {
    expectRefused(who, (c) => (c.process!.args = ['no-such-program']), 'exec: "no-such-program": executable file not found in $PATH');
  });

  run('a mount target that is a symlink out of the rootfs: refused, or resolved inside it', () => {
    const rootfs = scratch(who, 'fs-');
    execFileSync('cp', ['-a', `${BUSYBOX_ROOTFS}/.`, rootfs]);
    const outside = scratch(who, 'outside-');
    fs.symlinkSync(outside, path.join(rootfs, 'escape'));
    fs.symlinkSync('/etc', path.join(rootfs, 'etc-link'));
    if (who === 'rootless') execFileSync('chown', ['-hR', TEST_USER, rootfs]);
    // A link whose target does not exist inside the rootfs: nothing is created through it.
    expectRefused(
      who,
      (c) => {
        c.root = { path: rootfs, readonly: false };
        c.mounts!.push({ destination: '/escape/sub', type: 'tmpfs', source: 'tmpfs' });
      },
      /^hako: create the mount point \/escape\/sub failed: a path component is a symlink whose target is not inside the rootfs \(step \d+ of \d+\)$/,
    );
    expect(fs.readdirSync(outside)).toEqual([]);
    // An absolute link resolves inside the rootfs, as under chroot: the host's /etc is untouched.
    const { bundle, root } = makeBundle(who, (c) => {
      c.root = { path: rootfs, readonly: false };
      c.mounts!.push({ destination: '/etc-link', type: 'tmpfs', source: 'tmpfs' });
      c.process!.args = ['sh', '-c', 'touch /etc-link/marker && ls /etc'];
    });
    const r = hako(who, root, ['run', '-b', bundle, 'esc1']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('marker');
    expect(fs.existsSync('/etc/marker')).toBe(false);
    expect(mountsUnder(rootfs)).toEqual([]);
  });
});

describe('bad input (rootless only)', () => {
  it('an oom_score_adj below the caller’s names CAP_SYS_RESOURCE (a higher one is fine)', () => {
    expectRefused(
      'rootless',
      (c) => (c.process!.oomScoreAdj = -1000),
      /^hako: set oom_score_adj to -1000 failed: EACCES: lowering oom_score_adj needs CAP_SYS_RESOURCE, .* ask for -?\d+ or more .*\(step \d+ of \d+\)$/,
    );
    const { bundle, root } = makeBundle('rootless', (c) => {
      c.process!.oomScoreAdj = 900;
      c.process!.args = ['/bin/cat', '/proc/self/oom_score_adj'];
    });
    const r = hako('rootless', root, ['run', '-b', bundle, 'oomok']);
    expect(r.stdout.trim(), r.stderr).toBe('900');
  });

  it.skipIf(!IS_ROOT)('a mapping with no subordinate range', () => {
    expectRefused(
      'rootless',
      (c) => {
        c.linux!.uidMappings = [{ containerID: 0, hostID: 4_000_000_000, size: 1000 }];
      },
      /^hako: config\.json: linux\.uidMappings\[0\]: host ids 4000000000-4000000999 are not in user hakotest's ranges in \/etc\/subuid$/,
    );
  });
});
