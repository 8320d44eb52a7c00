// The launch plan is pure data: these tests need no privileges.
import { describe, it, expect } from 'vitest';
import { buildCreatePlan, buildExecPlan } from '../../src/plan/build.js';
import { defaultSpec } from '../../src/oci/default.js';
import { validateConfig } from '../../src/oci/validate.js';
import { encodeSteps } from '../../src/plan/encode.js';
import { parseMountOptions, MS } from '../../src/plan/mount-options.js';
import { parseSubIds, planIdMaps } from '../../src/plan/idmap.js';
import { CLONE } from '../../src/plan/namespaces.js';
import type { HostFacts } from '../../src/host/facts.js';
import type { Config } from '../../src/oci/config.js';
import { HakoError } from '../../src/errors.js';

const host: HostFacts = { uid: 1000, gid: 1000, user: 'alice', lastCap: 40, landlockAbi: 7, cgroup2Unified: true };

function cfg(rootless = true, edit: (c: Config) => void = () => {}): Config {
  const c = defaultSpec(rootless);
  c.root = { path: '/nonexistent-rootfs', readonly: true };
  c.process!.terminal = false;
  if (rootless) {
    c.linux!.uidMappings = [{ containerID: 0, hostID: host.uid, size: 1 }];
    c.linux!.gidMappings = [{ containerID: 0, hostID: host.gid, size: 1 }];
  }
  edit(c);
  return validateConfig(JSON.parse(JSON.stringify(c)));
}

const plan = (c: Config, rootless = true, extra = {}) =>
  buildCreatePlan({ cfg: c, bundle: '/b', rootless, host, fifoPath: '/s/exec.fifo', ...extra });
const ops = (p: ReturnType<typeof plan>) => p.steps.map((s) => s.op);

describe('launch plan', () => {
  it('creates the namespaces with clone, the cgroup one first in the plan (the child runs it once the parent placed it)', () => {
    const p = plan(cfg());
    expect(p.cloneFlags).toBe(CLONE.NEWUSER | CLONE.NEWNS | CLONE.NEWUTS | CLONE.NEWIPC | CLONE.NEWPID | CLONE.NEWNET);
    expect(p.steps[0]).toMatchObject({ op: 'UNSHARE', args: [CLONE.NEWCGROUP] });
    expect(p.dumpableWhileMapped).toBe(true);
    expect(plan(cfg(), false).dumpableWhileMapped).toBe(false);
  });

  it('orders the steps: mounts, pivot, masks, identity, security, ready, wait, exec', () => {
    const o = ops(plan(cfg()));
    const at = (op: string) => o.indexOf(op as never);
    expect(at('OPEN_FIFO')).toBeLessThan(at('PIVOT_ROOT'));
    expect(at('PIVOT_ROOT')).toBeLessThan(at('MASK_PATH'));
    expect(at('MASK_PATH')).toBeLessThan(at('SETRESUID'));
    expect(at('CAPBSET_KEEP')).toBeLessThan(at('SETRESUID'));
    expect(at('SETRESUID')).toBeLessThan(at('CAPSET'));
    expect(at('NO_NEW_PRIVS')).toBeLessThan(at('REPORT_READY'));
    expect(o.slice(-3)).toEqual(['REPORT_READY', 'WAIT_FIFO', 'EXEC']);
  });

  it('maps only the caller rootless, and denies setgroups there', () => {
    const p = plan(
      cfg(true, (c) => {
        delete c.linux!.uidMappings;
        delete c.linux!.gidMappings;
      }),
    );
    expect(p.idmap).toEqual({
      uidMap: [{ containerID: 0, hostID: 1000, size: 1 }],
      gidMap: [{ containerID: 0, hostID: 1000, size: 1 }],
      denySetgroups: true,
      useHelpers: false,
    });
    expect(ops(p)).not.toContain('SETGROUPS');
  });

  it('uses newuidmap for ranges covered by /etc/subuid, and names the field when not covered', () => {
    const read = (() => 'alice:100000:65536\n') as never;
    const c = cfg(true, (x) => {
      x.linux!.uidMappings = [
        { containerID: 0, hostID: 1000, size: 1 },
        { containerID: 1, hostID: 100000, size: 65536 },
      ];
      x.linux!.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    });
    expect(planIdMaps(c, host, true, read)?.useHelpers).toBe(true);
    c.linux!.gidMappings = [{ containerID: 0, hostID: 300000, size: 10 }];
    expect(() => planIdMaps(c, host, true, read)).toThrow(/linux\.gidMappings\[0\]: host ids 300000-300009 are not in user alice's ranges/);
    expect(parseSubIds('alice:1:2\n1000:5:6\nbob:7:8', 'alice', 1000)).toEqual([
      { start: 1, count: 2 },
      { start: 5, count: 6 },
    ]);
  });

  it('binds host sysfs and devices rootless, mknods them as root', () => {
    const rl = plan(
      cfg(true, (c) =>
        c.linux!.namespaces!.splice(
          c.linux!.namespaces!.findIndex((n) => n.type === 'network'),
          1,
        ),
      ),
    );
    const sys = rl.steps.find((s) => s.op === 'MOUNT' && s.args[1] === '/sys')!;
    expect(sys.args[0]).toBe('/sys');
    expect(ops(rl)).not.toContain('MKNOD_IN_ROOT');
    const root = plan(cfg(false), false);
    expect(root.steps.filter((s) => s.op === 'MKNOD_IN_ROOT').map((s) => s.args[0])).toEqual([
      '/dev/null',
      '/dev/zero',
      '/dev/full',
      '/dev/random',
      '/dev/urandom',
      '/dev/tty',
    ]);
  });

  it('resolves mount options into flags, propagation and data', () => {
    expect(parseMountOptions(['ro', 'nosuid', 'rslave', 'mode=755', 'noexec', 'exec'])).toEqual({
      flags: MS.RDONLY | MS.NOSUID,
      propagation: [MS.SLAVE | MS.REC],
      data: ['mode=755'],
    });
  });

  it('remounts a bind mount to apply its flags', () => {
    const p = plan(cfg(true, (c) => c.mounts!.push({ destination: '/data', source: '/tmp', options: ['rbind', 'ro', 'nodev'] })));
    const i = p.steps.findIndex((s) => s.op === 'MOUNT' && s.args[1] === '/data');
    expect(p.steps[i].args[3]).toBe(MS.BIND | MS.REC);
    expect(p.steps[i + 1].args[3]).toBe(MS.REMOUNT | MS.BIND | MS.RDONLY | MS.NODEV);
  });

  it('finds the program along PATH and names the missing pieces', () => {
    const p = plan(
      cfg(true, (c) => {
        c.process!.args = ['busybox', 'true'];
        c.process!.env = ['PATH=/bin:/usr/bin'];
      }),
    );
    expect(p.steps.find((s) => s.op === 'FIND_EXEC')!.args).toEqual(['/bin/busybox', '/usr/bin/busybox']);
    expect(() =>
      plan(
        cfg(false, (c) => (c.linux!.namespaces = [{ type: 'mount' }])),
        true,
      ),
    ).toThrow(/rootless container needs a user namespace/);
    expect(() => plan(cfg(true, (c) => (c.linux!.timeOffsets = { monotonic: { secs: 5 } })))).toThrow(/needs a new time namespace/);
  });

  it('creates the time namespace with its offsets', () => {
    const p = plan(
      cfg(true, (c) => {
        c.linux!.namespaces!.push({ type: 'time' });
        c.linux!.timeOffsets = { monotonic: { secs: 86400 } };
      }),
    );
    expect(p.steps.find((s) => s.op === 'WRITE_FILE')!.args).toEqual(['/proc/self/timens_offsets', 'monotonic 86400 0']);
  });

  it('joins a namespace by path; pid by the parent thread around clone', () => {
    const p = plan(
      cfg(true, (c) => {
        c.linux!.namespaces = c.linux!.namespaces!.map((n) =>
          n.type === 'network'
            ? { type: 'network', path: '/proc/1/ns/net' }
            : n.type === 'pid'
              ? { type: 'pid', path: '/proc/1/ns/pid' }
              : n,
        );
      }),
    );
    expect(p.cloneFlags & CLONE.NEWNET).toBe(0);
    expect(p.parentNamespaces).toEqual(['/proc/1/ns/pid']);
    expect(p.steps.find((s) => s.op === 'SETNS')!.args).toEqual(['/proc/1/ns/net', CLONE.NEWNET]);
  });

  it('exec joins the namespaces that differ, mount last, then forks', () => {
    const c = cfg();
    const p = buildExecPlan(
      { cfg: c, bundle: '/b', rootless: true, host, initPid: 42, process: c.process!, setgroupsDenied: true },
      (ns) => ns !== 'time',
    );
    const joins = p.steps.filter((s) => s.op === 'SETNS').map((s) => s.args[0]);
    expect(joins[0]).toBe('/proc/42/ns/user');
    expect(joins.at(-1)).toBe('/proc/42/ns/mnt');
    expect(joins).not.toContain('/proc/42/ns/time');
    expect(p.steps[joins.length].op).toBe('FORK');
  });

  it('refuses additionalGids when setgroups is denied', () => {
    expect(() =>
      plan(
        cfg(true, (c) => {
          delete c.linux!.uidMappings;
          delete c.linux!.gidMappings;
          c.process!.user.additionalGids = [5];
        }),
      ),
    ).toThrow(HakoError);
  });

  it('encodes into the executor wire format', () => {
    const b = encodeSteps([
      { op: 'SETHOSTNAME', args: ['hi'], what: '' },
      { op: 'RLIMIT', args: [7, 1n << 40n, 3], what: '' },
    ]);
    expect(b.subarray(0, 4).toString()).toBe('HAKO');
    expect(b.readUInt32LE(8)).toBe(2);
    expect(b.readUInt32LE(12)).toBe(17);
    expect(b.subarray(28, 31).toString('latin1')).toBe('hi\0');
  });
});
