// Real containers, rootless and as root: what the plan promised is what the
// process sees from inside (/proc/self/status, uid_map, hostname, rlimits,
// the pid namespace, masked paths). Run through the library (`hako.run`), rootless and as root.
import { describe, it, expect } from 'vitest';
import { makeBundle, WHO, testUserIds } from '../helpers/hako.js';
import { IS_ROOT } from '../helpers/env.js';
import { apiRun } from '../harness/api-run.js';

const SCRIPT = [
  'echo uid=$(id -u) gid=$(id -g) groups=$(id -G)',
  'grep -E "^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):" /proc/self/status',
  'echo uidmap=$(cat /proc/self/uid_map)',
  'echo hostname=$(hostname)',
  'echo nofile=$(ulimit -n)',
  'echo pid=$$',
  'echo umask=$(umask)',
  'echo cwd=$(pwd)',
  'cat /proc/kcore >/dev/null 2>&1 && echo kcore=readable || echo kcore=masked',
  '{ echo x > /proc/sys/kernel/hostname; } 2>/dev/null && echo procsys=writable || echo procsys=readonly',
  '{ touch /newfile; } 2>/dev/null && echo root=writable || echo root=readonly',
  'echo env=$FOO',
].join('; ');

function parse(out: string): Record<string, string> {
  const r: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const m = /^(\w+)[=:]\s*(.*)$/.exec(line.trim());
    if (m) r[m[1]] = m[2];
  }
  return r;
}

describe.each(WHO)('container process (%s)', (who) => {
  it.skipIf(who === 'root' && !IS_ROOT)('gets exactly the identity, capabilities and limits of its config', async () => {
    const { bundle, root } = makeBundle(who, (c) => {
      c.hostname = 'fhir-box';
      c.process!.args = ['sh', '-c', SCRIPT];
      c.process!.env!.push('FOO=bar');
      c.process!.cwd = '/tmp';
      c.process!.user.umask = 0o027;
      c.process!.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 321, hard: 654 }];
      c.process!.capabilities = {
        bounding: ['CAP_NET_BIND_SERVICE', 'CAP_KILL'],
        effective: ['CAP_NET_BIND_SERVICE'],
        permitted: ['CAP_NET_BIND_SERVICE', 'CAP_KILL'],
        inheritable: [],
        ambient: [],
      };
    });
    const r = await apiRun(who, root, { bundle });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const v = parse(r.stdout);
    expect(v.uid).toBe('0 gid=0 groups=0');
    // uid 0 gets effective = permitted at execve (the kernel's rule for root, as under runc).
    expect(v.CapEff).toBe('0000000000000420');
    expect(v.CapPrm).toBe('0000000000000420');
    expect(v.CapBnd).toBe('0000000000000420');
    expect(v.CapInh).toBe('0000000000000000');
    expect(v.CapAmb).toBe('0000000000000000');
    expect(v.NoNewPrivs).toBe('1');
    // Rootless: a user namespace mapping only the caller; root (no user namespace here): the host's identity map.
    const expected = who === 'rootless' ? ['0', String(testUserIds().uid), '1'] : ['0', '0', '4294967295'];
    expect(v.uidmap.split(/\s+/)).toEqual(expected);
    expect(v.hostname).toBe('fhir-box');
    expect(v.nofile).toBe('321');
    expect(v.pid).toBe('1');
    expect(v.umask).toBe('0027');
    expect(v.cwd).toBe('/tmp');
    expect(v.kcore).toBe('masked');
    expect(v.procsys).toBe('readonly');
    expect(v.root).toBe('readonly');
    expect(v.env).toBe('bar');
  });

  it.skipIf(who === 'root' && !IS_ROOT)('propagates the exit code and runs as a non-root user with ambient capabilities', async () => {
    const { bundle, root } = makeBundle(who, (c) => {
      c.process!.args = ['sh', '-c', 'grep -E "^Cap(Eff|Amb):" /proc/self/status; id -u; exit 7'];
      c.process!.user = { uid: who === 'rootless' ? 0 : 1000, gid: who === 'rootless' ? 0 : 1000 };
      c.process!.capabilities = {
        bounding: ['CAP_NET_BIND_SERVICE'],
        effective: ['CAP_NET_BIND_SERVICE'],
        permitted: ['CAP_NET_BIND_SERVICE'],
        inheritable: ['CAP_NET_BIND_SERVICE'],
        ambient: ['CAP_NET_BIND_SERVICE'],
      };
    });
    const r = await apiRun(who, root, { bundle });
    expect(r.code).toBe(7);
    expect(r.stdout).toContain('CapEff:\t0000000000000400');
    expect(r.stdout).toContain('CapAmb:\t0000000000000400');
    expect(r.stdout).toContain(who === 'rootless' ? '\n0\n' : '\n1000\n');
  });
});
