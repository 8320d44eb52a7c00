import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { detect, parseMountinfo, parseProcCgroup } from '../../src/cgroups/detect.js';
import { cgroupFeatures, describeHost, isStrict } from '../../src/cgroups/host.js';

let dir: string;

/** A fake /proc/self and cgroup v2 mount inside a temporary directory. */
function fakeHost(opts: { v1: string[]; controllers: string; own?: string }): string {
  dir = mkdtempSync(join(tmpdir(), 'hako-cg-'));
  const cg = join(dir, 'cg');
  mkdirSync(join(dir, 'proc/self'), { recursive: true });
  mkdirSync(cg);
  writeFileSync(join(cg, 'cgroup.controllers'), `${opts.controllers}\n`);
  writeFileSync(join(cg, 'cgroup.procs'), '');
  const lines = [`31 23 0:28 / ${cg} rw,relatime - cgroup2 cgroup2 rw,nsdelegate`];
  opts.v1.forEach((c, i) => {
    mkdirSync(join(dir, 'v1', c), { recursive: true });
    writeFileSync(join(dir, 'v1', c, 'cgroup.procs'), '');
    lines.push(`${40 + i} 23 0:${40 + i} / ${join(dir, 'v1', c)} rw,relatime - cgroup cgroup rw,${c}`);
  });
  writeFileSync(join(dir, 'proc/self/mountinfo'), `${lines.join('\n')}\n`);
  writeFileSync(join(dir, 'proc/self/cgroup'), `4:memory:/x\n0::${opts.own ?? '/'}\n`);
  return cg;
}

afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('cgroup host detection', () => {
  it('parses mountinfo, octal escapes included, and the v2 line of /proc/self/cgroup', () => {
    const [m] = parseMountinfo('36 25 0:30 / /sys/fs/my\\040cg rw shared:1 - cgroup2 cgroup2 rw,nsdelegate\n');
    expect(m).toEqual({ mountPoint: '/sys/fs/my cg', fsType: 'cgroup2', superOptions: 'rw,nsdelegate' });
    expect(parseProcCgroup('12:pids:/a\n0::/user.slice/u.scope\n')).toBe('/user.slice/u.scope');
    expect(parseProcCgroup('12:pids:/a\n')).toBe('/');
  });

  it('sees a unified host with every controller as usable for root', () => {
    const cg = fakeHost({ v1: [], controllers: 'cpuset cpu io memory hugetlb pids' });
    const host = detect({ proc: join(dir, 'proc'), uid: 0 });
    expect(host).toMatchObject({ mode: 'unified', mount: cg, base: '/', rootless: false, problem: null });
    expect(host.baseControllers).toContain('memory');
    expect(describeHost(host).at(-1)).toBe('cgroups: ok: memory, pids and cpu limits are enforced');
  });

  it('uses the v1 hierarchies as root on a hybrid host whose v2 tree offers only hugetlb (this machine)', () => {
    const cg = fakeHost({ v1: ['memory', 'pids', 'cpu'], controllers: 'hugetlb' });
    const host = detect({ proc: join(dir, 'proc'), uid: 0 });
    expect(host.mode).toBe('hybrid');
    expect(host.v1Controllers).toEqual(['cpu', 'memory', 'pids']);
    expect(host.problem).toBeNull();
    expect(host.v1).toEqual([
      { mount: join(dir, 'v1/memory'), controllers: ['memory'], own: '/x' },
      { mount: join(dir, 'v1/pids'), controllers: ['pids'], own: '/' },
      { mount: join(dir, 'v1/cpu'), controllers: ['cpu'], own: '/' },
    ]);
    expect(describeHost(host)).toContain('cgroups: hybrid mode: cgroup v2 at ' + cg + ', cgroup v1 holds cpu memory pids');
    expect(describeHost(host).at(-1)).toBe('cgroups: ok: memory, pids and cpu limits are enforced (through cgroup v1)');
  });

  it('explains a hybrid host rootless: cgroup v1 has no delegation', () => {
    const cg = fakeHost({ v1: ['memory', 'pids', 'cpu'], controllers: 'hugetlb' });
    const host = detect({ proc: join(dir, 'proc'), uid: 1000 });
    expect(host.v1).toBeUndefined();
    expect(host.problem).toBe(
      `cgroup v2 runs in hybrid mode here: memory, pids, cpu belong to cgroup v1, which cannot be delegated to uid 1000, and ${cg} offers only hugetlb`,
    );
  });

  it('keeps to v2 where it is whole, even with a v1 hierarchy mounted', () => {
    fakeHost({ v1: ['net_cls'], controllers: 'cpuset cpu io memory hugetlb pids' });
    const host = detect({ proc: join(dir, 'proc'), uid: 0 });
    expect(host.v1).toBeUndefined();
    expect(host.problem).toBeNull();
  });

  it('reads the environment switch for strict mode', () => {
    expect(isStrict({ HAKO_CGROUP_STRICT: '1' })).toBe(true);
    expect(isStrict({})).toBe(false);
    expect(cgroupFeatures()).toEqual({ v1: true, v2: true, systemd: false, systemdUser: false, rdma: true });
  });
});
