// Where the OCI runtime spec says MUST and an OCI conformance run found hako wanting
// (issue 10): rootfsPropagation shared, devices with their fileMode, a config without a
// mount namespace, a user namespace that does not map host root, a hostname in a joined
// uts namespace. Real containers, rootless and as root where both apply.
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { describe, it, expect } from 'vitest';
import { scratchForThisFile, hako, WHO } from '../helpers/hako.js';
import { IS_ROOT, TEST_USER, CLI } from '../helpers/env.js';

const { makeBundle } = scratchForThisFile();

const hostMountsUnder = (dir: string) =>
  fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[4]?.startsWith(dir));

describe.each(WHO)('conformance (%s)', (who) => {
  const run = it.skipIf(who === 'root' && !IS_ROOT);
  const asRoot = it.skipIf(who !== 'root' || !IS_ROOT);

  for (const prop of ['shared', 'rshared'] as const) {
    run(`rootfsPropagation ${prop}: pivot_root works and / is shared inside`, () => {
      const { bundle, root } = makeBundle(who, (c) => {
        c.linux!.rootfsPropagation = prop;
        c.process!.args = ['awk', '$5 == "/"', '/proc/self/mountinfo'];
      });
      const r = hako(who, root, ['run', '-b', bundle, 'prop']);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/ shared:\d+ /);
    });
  }

  asRoot('devices get their fileMode whatever the umask; the default nodes are writable by anyone', () => {
    const { bundle, root } = makeBundle(who, (c) => {
      // Without a user namespace, devices are made with mknod (in one they are bound from the host).
      c.linux!.devices = [{ path: '/dev/fuse-like', type: 'c', major: 1, minor: 3, fileMode: 0o660, uid: 0, gid: 0 }];
      c.process!.user = { uid: 1000, gid: 1000 };
      c.process!.args = ['sh', '-c', 'stat -c "%a %n" /dev/fuse-like /dev/null /dev/zero /dev/tty; echo x > /dev/null && echo wrote'];
    });
    const r = hako(who, root, ['run', '-b', bundle, 'dev']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('660 /dev/fuse-like\n666 /dev/null\n666 /dev/zero\n666 /dev/tty\nwrote\n');
  });

  asRoot("a config without a mount namespace runs in the runtime's (chroot), and delete leaves no mount there", () => {
    const { bundle, root } = makeBundle(who, (c) => {
      c.linux!.namespaces = c.linux!.namespaces!.filter((n) => n.type !== 'mount');
      c.process!.args = ['sh', '-c', 'ls /bin/busybox && readlink /proc/1/ns/mnt'];
    });
    const rootfs = JSON.parse(fs.readFileSync(`${bundle}/config.json`, 'utf8')).root.path as string;
    const before = hostMountsUnder(rootfs).length;
    const r = hako(who, root, ['run', '-b', bundle, 'nomnt']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n')[1]).toBe(fs.readlinkSync('/proc/self/ns/mnt'));
    expect(hostMountsUnder(rootfs).length).toBe(before);
  });

  asRoot('a user namespace that maps container root onto a subordinate range, not host root', () => {
    const line = fs
      .readFileSync('/etc/subuid', 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${TEST_USER}:`))!;
    const base = Number(line.split(':')[1]);
    const { bundle, root } = makeBundle(who, (c) => {
      c.linux!.namespaces!.push({ type: 'user' });
      c.linux!.uidMappings = [{ containerID: 0, hostID: base, size: 65536 }];
      c.linux!.gidMappings = [{ containerID: 0, hostID: base, size: 65536 }];
      c.process!.args = ['sh', '-c', 'cat /proc/self/uid_map; id -u; ls /proc/1 > /dev/null && echo ok'];
    });
    const r = hako(who, root, ['run', '-b', bundle, 'subid']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => l.trim().split(/\s+/).join(' ')),
    ).toEqual([`0 ${base} 65536`, '0', 'ok']);
  });

  run('a hostname is set in a uts namespace joined by path', () => {
    const a = makeBundle(who, (c) => {
      c.hostname = 'first';
      c.process!.args = ['sleep', '30'];
    });
    const started = hako(who, a.root, ['run', '-d', '-b', a.bundle, 'utsA'], { detached: true });
    expect(started.stderr).toBe('');
    expect(started.status).toBe(0);
    try {
      const pidA = JSON.parse(hako(who, a.root, ['state', 'utsA']).stdout).pid as number;
      const b = makeBundle(who, (c) => {
        c.hostname = 'second';
        c.linux!.namespaces = c.linux!.namespaces!.map((n) =>
          n.type === 'uts'
            ? { type: 'uts', path: `/proc/${pidA}/ns/uts` }
            : n.type === 'user'
              ? { type: 'user', path: `/proc/${pidA}/ns/user` }
              : n,
        );
        if (who === 'rootless') {
          delete c.linux!.uidMappings;
          delete c.linux!.gidMappings;
        }
        c.process!.args = ['hostname'];
      });
      const r = hako(who, b.root, ['run', '-b', b.bundle, 'utsB']);
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('second\n');
    } finally {
      hako(who, a.root, ['delete', '--force', 'utsA']);
    }
  });
});

describe.each(WHO)('the CLI as a new user meets it (%s)', (who) => {
  const run = it.skipIf(who === 'root' && !IS_ROOT);

  run('run of a terminal process without a terminal fails at once, as runc does, and leaves nothing', () => {
    const { bundle, root } = makeBundle(who, (c) => {
      c.process!.terminal = true;
      c.process!.args = ['sh'];
    });
    // setsid: no controlling terminal, whatever the test runner has.
    const argv = [CLI, '--root', root, 'run', '-b', bundle, 'tty1'];
    const r = spawnSync(
      'setsid',
      who === 'root' ? ['-w', ...argv] : ['-w', 'setpriv', '--reuid', TEST_USER, '--regid', TEST_USER, '--init-groups', ...argv],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 20_000,
      },
    );
    expect(r.error).toBeUndefined();
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      'hako: config.json: process.terminal: hako has no terminal to give the container (open /dev/tty: no such device or address): run it from a terminal, set terminal to false, or pass --console-socket\n',
    );
    expect(fs.readdirSync(root).filter((f) => !f.startsWith('.'))).toEqual([]);
  });
});
