// The preload shim's decisions, without containers: the annotations parsed (and refused in one
// sentence), the configuration text the shim reads, where its steps go in the plan, the denial
// lines read back, and which layer holds each limit (native/preload, docs/limits.md).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it, expect } from 'vitest';
import { buildCreatePlan } from '../../src/plan/build.js';
import { defaultSpec } from '../../src/oci/default.js';
import type { HostFacts } from '../../src/host/facts.js';
import { HakoError } from '../../src/errors.js';
import { parseShimAnnotations, parseConnectRule, shimConfigText, shimContainerDir } from '../../src/plan/shim.js';
import { limitLayers, hostLimitLayers, shimCeilingsHeldByCgroups } from '../../src/plan/limit-layers.js';
import { parseDenial, describeDenial, readNewDenials } from '../../src/runtime/shim.js';

const host: HostFacts = { uid: 1000, gid: 1000, user: 'alice', lastCap: 40, landlockAbi: 7, cgroup2Unified: true };
const S = 'run.hako.shim.';

describe('run.hako.shim.* annotations', () => {
  it('parses sizes with K, M and G, counts, and both allowlists', () => {
    expect(
      parseShimAnnotations({
        [`${S}memory`]: '512M',
        [`${S}processes`]: '64',
        [`${S}files`]: '1024',
        [`${S}connect`]: '127.0.0.1:5432, 10.0.0.0/8:*, [::1]:443, [fd00::]/8:80, /run/db.sock, @abstract',
        [`${S}exec`]: '/usr/bin/node, /bin/../bin/sh',
        other: 'x',
      }),
    ).toEqual({
      memory: 512 * 1024 * 1024,
      processes: 64,
      files: 1024,
      connect: [
        { family: 'inet', addr: '127.0.0.1', prefix: 32, port: 5432 },
        { family: 'inet', addr: '10.0.0.0', prefix: 8, port: 0 },
        { family: 'inet6', addr: '::1', prefix: 128, port: 443 },
        { family: 'inet6', addr: 'fd00::', prefix: 8, port: 80 },
        { family: 'unix', path: '/run/db.sock' },
        { family: 'unix', path: '@abstract' },
      ],
      exec: ['/usr/bin/node', '/bin/sh'],
    });
    expect(parseShimAnnotations({ [`${S}memory`]: '2g' })!.memory).toBe(2 * 1024 ** 3);
    expect(parseShimAnnotations({ [`${S}memory`]: '1048576' })!.memory).toBe(1 << 20);
    expect(parseShimAnnotations({ a: 'b' })).toBeNull();
    expect(parseShimAnnotations(undefined)).toBeNull();
  });

  it.each([
    ['memory', '0', 'a ceiling of 0 would refuse every allocation'],
    ['memory', '-1G', 'is not a size'],
    ['memory', '1.5G', 'is not a size'],
    ['memory', '512', 'below 1M'],
    ['memory', '99999999999G', 'too large'],
    ['processes', '0', 'a ceiling of 0'],
    ['processes', 'ten', 'is not a whole number'],
    ['files', '-3', 'is not a whole number'],
    ['connect', 'localhost:80', 'is not an IPv4 address'],
    ['connect', '[::1]:0', 'the port must be 1 to 65535'],
    ['connect', '[nope]:80', 'is not an IPv6 address'],
    ['connect', '::1:80', 'is not ADDR'],
    ['exec', 'node', 'is not an absolute path'],
    ['limit', '1', 'unknown shim setting'],
  ])('refuses %s=%s in one sentence naming the annotation', (key, value, words) => {
    let err: unknown;
    try {
      parseShimAnnotations({ [`${S}${key}`]: value });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(HakoError);
    expect((err as Error).message).toContain(`config.json: annotations["${S}${key}"]`);
    expect((err as Error).message).toContain(words);
    expect((err as Error).message.split('\n')).toHaveLength(1);
  });

  it('writes the text native/preload/config.c reads', () => {
    const c = parseShimAnnotations({
      [`${S}memory`]: '64M',
      [`${S}connect`]: '127.0.0.1:80,/run/x.sock',
      [`${S}exec`]: '/bin/true',
    })!;
    expect(shimConfigText(c)).toBe(
      'memory 67108864\nconnect-set\nconnect inet 127.0.0.1 32 80\nconnect unix /run/x.sock\nexec-set\nexec /bin/true\n',
    );
    // An empty allowlist is still an allowlist: it allows nothing.
    expect(shimConfigText(parseShimAnnotations({ [`${S}connect`]: '' })!)).toBe('connect-set\n');
    expect(parseConnectRule('192.168.0.0/16:5432')).toEqual({ family: 'inet', addr: '192.168.0.0', prefix: 16, port: 5432 });
    // A unix path ending in * is a prefix (the FHIR server's lock sockets); a * elsewhere is refused.
    expect(parseConnectRule('/data/lock.*')).toEqual({ family: 'unix', path: '/data/lock.*' });
    expect(() => parseConnectRule('/data/*/lock')).toThrow(/a \* may only end a unix socket path/);
  });
});

describe('the shim in the launch plan', () => {
  const plan = (withShim: boolean) => {
    const cfg = defaultSpec(false);
    cfg.root = { path: 'rootfs' };
    cfg.process!.args = ['/usr/bin/node'];
    cfg.process!.terminal = false;
    const shim = withShim ? { hostDir: '/s/shim', config: { memory: 1 << 30 } } : null;
    return buildCreatePlan({ cfg, bundle: '/b', rootless: false, host, fifoPath: '/s/exec.fifo', shim });
  };

  it('binds its directory read-only in /dev, its shared files writable over themselves, and /etc/ld.so.preload read-only', () => {
    const steps = plan(true).steps;
    const whats = steps.map((s) => s.what);
    const at = (w: string) => whats.findIndex((x) => x.startsWith(w));
    expect(shimContainerDir(defaultSpec(false))).toBe('/dev/.hako-shim');
    // After the config's mounts (the /dev tmpfs), before pivot_root.
    expect(at("bind the preload shim's directory on /dev/.hako-shim")).toBeGreaterThan(at('mount tmpfs on /dev'));
    expect(at('bind the generated /etc/ld.so.preload')).toBeLessThan(at('pivot_root'));
    const mounts = steps.filter((s) => s.op === 'MOUNT' && String(s.args[1]).match(/hako-shim|ld\.so\.preload/));
    expect(mounts.map((s) => [s.args[0], s.args[1]])).toEqual([
      ['/s/shim', '/dev/.hako-shim'],
      ['', '/dev/.hako-shim'],
      ['/s/shim/table', '/dev/.hako-shim/table'],
      ['', '/dev/.hako-shim/table'],
      ['/s/shim/denials', '/dev/.hako-shim/denials'],
      ['', '/dev/.hako-shim/denials'],
      ['/s/shim/ld.so.preload', '/etc/ld.so.preload'],
      ['', '/etc/ld.so.preload'],
    ]);
    const ro = (dest: string) => (Number(mounts.find((s) => s.args[0] === '' && s.args[1] === dest)!.args[3]) & 1) === 1;
    expect([ro('/dev/.hako-shim'), ro('/dev/.hako-shim/table'), ro('/dev/.hako-shim/denials'), ro('/etc/ld.so.preload')]).toEqual([
      true,
      false,
      false,
      true,
    ]);
    // The load check comes last, as the process itself, right before the container is reported created.
    const check = steps.findIndex((s) => s.op === 'CHECK_PRELOAD');
    expect(steps[check + 1]!.op).toBe('REPORT_READY');
    expect(steps[check]!.args).toEqual(['/etc/ld.so.preload', '/dev/.hako-shim/hako-shim.so']);
  });

  it('adds nothing without the annotations', () => {
    expect(plan(false).steps.some((s) => s.op === 'CHECK_PRELOAD' || String(s.args[1]).includes('hako-shim'))).toBe(false);
  });
});

describe('denials read back', () => {
  it('parses only what the shim writes, and bounds what it keeps', () => {
    expect(
      parseDenial('{"shim":1,"kind":"memory","call":"malloc","requested":10,"used":5,"limit":12,"pid":7,"exe":"/usr/bin/node"}'),
    ).toEqual({
      kind: 'memory',
      call: 'malloc',
      requested: 10,
      used: 5,
      limit: 12,
      pid: 7,
      exe: '/usr/bin/node',
    });
    for (const bad of ['', 'nope', '[]', '{"kind":"memory","call":"x"}', '{"shim":1,"kind":3,"call":"x"}'])
      expect(parseDenial(bad)).toBeNull();
    expect(describeDenial('c1', { kind: 'connect', call: 'connect', target: '10.0.0.1:80', pid: 3, exe: '/x' })).toBe(
      'container c1: the preload shim refused connect to /x (pid 3): 10.0.0.1:80 is not in run.hako.shim.connect',
    );
  });

  it('reads each line once, and waits for the end of a half-written one', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shim-unit-'));
    try {
      fs.mkdirSync(path.join(dir, 'shim'));
      const log = path.join(dir, 'shim/denials');
      fs.writeFileSync(log, '{"shim":1,"kind":"exec","call":"execve","path":"/bin/ls"}\ngarbage\n{"shim":1,"kind":"fi');
      const got: string[] = [];
      expect(readNewDenials(dir, (d) => got.push(d.kind))).toBe(1);
      fs.appendFileSync(log, 'les","call":"open"}\n');
      expect(readNewDenials(dir, (d) => got.push(d.kind))).toBe(1);
      expect(readNewDenials(dir, (d) => got.push(d.kind))).toBe(0);
      expect(got).toEqual(['exec', 'files']);
      // A symlink planted in its place is not followed.
      fs.rmSync(log);
      fs.symlinkSync('/etc/passwd', log);
      expect(readNewDenials(dir, () => {})).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('which layer holds each limit', () => {
  const cfg = defaultSpec(false);
  it('on this kind of host rootless: no cgroup, so the shim (and rlimits) hold what is asked', () => {
    const c = structuredClone(cfg);
    c.linux!.resources = { memory: { limit: 1 << 30 }, pids: { limit: 100 } } as never;
    c.process!.rlimits = [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }];
    const layers = limitLayers(c, { v2: [], v1: [] }, { memory: 1 << 29, processes: 64, connect: [] });
    expect(layers).toEqual([
      { limit: 'memory', layers: ['shim'], unheld: ['linux.resources.memory.limit: no memory controller hako may use here'] },
      { limit: 'processes', layers: ['shim'], unheld: ['linux.resources.pids.limit: no pids controller hako may use here'] },
      { limit: 'files', layers: ['rlimit'] },
      { limit: 'connect', layers: ['shim'] },
      { limit: 'exec', layers: ['none'] },
    ]);
  });

  it('as root on a hybrid host: cgroup v1; with a delegated v2: cgroup v2', () => {
    const c = structuredClone(cfg);
    c.linux!.resources = { memory: { limit: 1 << 30 } } as never;
    expect(limitLayers(c, { v2: ['hugetlb'], v1: ['memory', 'pids'] }, null)[0]!.layers).toEqual(['cgroup v1']);
    expect(limitLayers(c, { v2: ['memory', 'pids'], v1: [] }, { memory: 1 << 29 })[0]!.layers).toEqual(['cgroup v2', 'shim']);
    expect(hostLimitLayers({ v2: [], v1: [] }).map((l) => l.layers)).toEqual([
      ['rlimit', 'shim'],
      ['rlimit', 'shim'],
      ['rlimit', 'shim'],
      ['shim'],
      ['shim'],
    ]);
  });
});

describe('the shim ceilings hako up leaves to cgroups', () => {
  const c = structuredClone(defaultSpec(false));
  c.linux!.resources = { memory: { limit: 1 << 29 }, pids: { limit: 512 } } as never;
  const shim = { memory: 1 << 29, processes: 64, connect: [] };
  it('none rootless here, both as root on a hybrid host, only what a controller holds', () => {
    expect(shimCeilingsHeldByCgroups(c, { v2: [], v1: [] }, shim)).toEqual([]);
    expect(shimCeilingsHeldByCgroups(c, { v2: ['hugetlb'], v1: ['memory', 'pids', 'cpu'] }, shim)).toEqual(['memory', 'processes']);
    expect(shimCeilingsHeldByCgroups(c, { v2: ['pids'], v1: [] }, shim)).toEqual(['processes']);
    // A ceiling the config does not also ask of the cgroups stays the shim's.
    expect(shimCeilingsHeldByCgroups(defaultSpec(false), { v2: ['memory', 'pids'], v1: [] }, shim)).toEqual([]);
    expect(shimCeilingsHeldByCgroups(c, { v2: ['memory', 'pids'], v1: [] }, null)).toEqual([]);
  });
});
