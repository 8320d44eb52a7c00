// Namespaces and id maps on real containers: ranges through newuidmap, a time
// namespace with offsets, joining another container's namespace by path,
// --no-pivot, --preserve-fds, and a terminal through --console-socket.
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { describe, it, expect } from 'vitest';
import { makeBundle, hako, WHO, testUserIds } from '../helpers/hako.js';
import { IS_ROOT, CLI, TEST_USER } from '../helpers/env.js';

function subRange(file: string, user: string): [number, number] {
  const line = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${user}:`))!;
  const [, start, count] = line.split(':');
  return [Number(start), Number(count)];
}

describe.each(WHO)('namespaces (%s)', (who) => {
  const run = it.skipIf(who === 'root' && !IS_ROOT);

  run('maps a range of ids (newuidmap for rootless) and lets a second user own files', () => {
    const ids = who === 'rootless' ? testUserIds() : { uid: 0, gid: 0 };
    const [us] = who === 'rootless' ? subRange('/etc/subuid', TEST_USER) : [200000];
    const [gs] = who === 'rootless' ? subRange('/etc/subgid', TEST_USER) : [200000];
    const { bundle, root } = makeBundle(who, (c) => {
      if (!c.linux!.namespaces!.some((n) => n.type === 'user')) c.linux!.namespaces!.push({ type: 'user' });
      c.linux!.uidMappings = [
        { containerID: 0, hostID: ids.uid, size: 1 },
        { containerID: 1, hostID: us, size: 1000 },
      ];
      c.linux!.gidMappings = [
        { containerID: 0, hostID: ids.gid, size: 1 },
        { containerID: 1, hostID: gs, size: 1000 },
      ];
      c.process!.user = { uid: 100, gid: 100, additionalGids: [5, 200] };
      c.process!.args = ['sh', '-c', 'cat /proc/self/uid_map; id -u; id -G'];
    });
    const r = hako(who, root, ['run', '-b', bundle, 'ns1']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s+/).join(' '));
    expect(lines).toEqual([`0 ${ids.uid} 1`, `1 ${us} 1000`, '100', '100 5 200']);
  });

  run('creates a time namespace with a monotonic offset', () => {
    const { bundle, root } = makeBundle(who, (c) => {
      c.linux!.namespaces!.push({ type: 'time' });
      c.linux!.timeOffsets = { monotonic: { secs: 1_000_000 } };
      c.process!.args = ['cat', '/proc/uptime', '/proc/self/timens_offsets'];
    });
    const r = hako(who, root, ['run', '-b', bundle, 'ns2']);
    expect(r.stderr).toBe('');
    const hostUptime = Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    // /proc/uptime follows the boottime clock; the offset shows in timens_offsets.
    expect(r.stdout).toMatch(/monotonic\s+1000000\s+0/);
    expect(Number(r.stdout.split(' ')[0])).toBeGreaterThan(0);
    expect(hostUptime).toBeGreaterThan(0);
  });

  run("joins another container's network and uts namespaces by path", () => {
    const a = makeBundle(who, (c) => {
      c.hostname = 'first';
      c.process!.args = ['sleep', '30'];
    });
    expect(hako(who, a.root, ['run', '-d', '-b', a.bundle, 'nsA'], { detached: true }).status).toBe(0);
    const pidA = JSON.parse(hako(who, a.root, ['state', 'nsA']).stdout).pid;
    try {
      const b = makeBundle(who, (c) => {
        delete c.hostname;
        c.linux!.namespaces = c.linux!.namespaces!.map((n) =>
          n.type === 'network'
            ? { type: 'network', path: `/proc/${pidA}/ns/net` }
            : n.type === 'uts'
              ? { type: 'uts', path: `/proc/${pidA}/ns/uts` }
              : n,
        );
        if (who === 'rootless')
          c.linux!.namespaces = c.linux!.namespaces!.map((n) => (n.type === 'user' ? { type: 'user', path: `/proc/${pidA}/ns/user` } : n));
        c.process!.args = ['sh', '-c', 'hostname; readlink /proc/self/ns/net'];
      });
      const r = hako(who, b.root, ['run', '-b', b.bundle, 'nsB']);
      expect(r.stderr).toBe('');
      expect(r.stdout.trim().split('\n')).toEqual(['first', fs.readlinkSync(`/proc/${pidA}/ns/net`)]);
    } finally {
      hako(who, a.root, ['delete', '--force', 'nsA']);
    }
  });

  run('--no-pivot runs the container with chroot', () => {
    const { bundle, root } = makeBundle(
      who,
      (c) => (c.process!.args = ['sh', '-c', 'ls /bin/busybox && cat /proc/self/mountinfo | head -1']),
    );
    const r = hako(who, root, ['run', '--no-pivot', '-b', bundle, 'ns3']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('/bin/busybox');
  });

  run('--preserve-fds hands fds 3.. to the container and nothing else', async () => {
    const { bundle, root } = makeBundle(who, (c) => (c.process!.args = ['sh', '-c', 'cat <&3; ls /proc/self/fd | sort -n | tr "\\n" " "']));
    const tmp = path.join(bundle, 'fd3.txt');
    fs.writeFileSync(tmp, 'from fd 3\n');
    fs.chmodSync(tmp, 0o644);
    const fd = fs.openSync(tmp, 'r');
    const argv = who === 'root' ? [CLI] : ['setpriv', '--reuid', TEST_USER, '--regid', TEST_USER, '--init-groups', CLI];
    const child = spawn(argv[0]!, [...argv.slice(1), '--root', root, 'run', '--preserve-fds', '1', '-b', bundle, 'ns4'], {
      stdio: ['ignore', 'pipe', 'pipe', fd],
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    const code = await new Promise((res) => child.on('exit', res));
    fs.closeSync(fd);
    expect(err).toBe('');
    expect(code).toBe(0);
    // 0-2, the preserved 3, and the fd ls itself opens on /proc/self/fd.
    expect(out).toBe('from fd 3\n0 1 2 3 4 ');
  });
});
