// The library's options turned into an OCI config, without containers: what each option
// sets, what the escape hatch merges, and the one sentence a wrong option gives.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it, expect, afterAll } from 'vitest';
import { buildConfig, merge, type ContainerOptions } from '../../src/harness/options.js';
import { HakoError } from '../../src/errors.js';

const rootfs = fs.mkdtempSync(path.join(os.tmpdir(), 'hrn-opts-'));
afterAll(() => fs.rmSync(rootfs, { recursive: true, force: true }));

function error(f: () => unknown): HakoError {
  try {
    f();
  } catch (e) {
    return e as HakoError;
  }
  throw new Error('no error');
}

describe('library options -> config', () => {
  it('a rootfs gets the default config, read-only, no terminal, rootless or not', () => {
    const { config, bundle } = buildConfig('start', { rootfs }, true);
    expect(config.root).toEqual({ path: rootfs, readonly: true });
    expect(config.process!.terminal).toBe(false);
    expect(config.linux!.namespaces!.map((n) => n.type)).toContain('user');
    expect(bundle).toBe(path.dirname(rootfs));
    expect(buildConfig('start', { rootfs }, false).config.linux!.namespaces!.map((n) => n.type)).not.toContain('user');
  });

  it('args, env (overriding), cwd, user, hostname, mounts, limits', () => {
    const { config } = buildConfig(
      'start',
      {
        rootfs,
        args: ['sh', '-c', 'true'],
        env: { PATH: '/bin', A: 'b=c' },
        cwd: '/tmp',
        user: { uid: 5, gid: 6, additionalGids: [7] },
        hostname: 'h',
        mounts: [{ source: rootfs, target: '/data', readonly: false }],
        limits: { memory: 1 << 20, pids: 4, cpus: 0.5, nofile: 64 },
      },
      false,
    );
    const p = config.process!;
    expect(p.args).toEqual(['sh', '-c', 'true']);
    expect(p.env).toEqual(['TERM=xterm', 'PATH=/bin', 'A=b=c']);
    expect(p.cwd).toBe('/tmp');
    expect(p.user).toEqual({ uid: 5, gid: 6, additionalGids: [7] });
    expect(config.hostname).toBe('h');
    expect(config.mounts!.at(-1)).toEqual({ destination: '/data', type: 'bind', source: rootfs, options: ['rbind', 'rw'] });
    expect(config.linux!.resources).toEqual({ memory: { limit: 1 << 20 }, pids: { limit: 4 }, cpu: { quota: 50_000, period: 100_000 } });
    expect(p.rlimits).toEqual([{ type: 'RLIMIT_NOFILE', hard: 64, soft: 64 }]);
  });

  it('no cgroup of its own where nothing needs one: not with limits, a cgroupsPath, a shared pid namespace or a cgroup mount asked for', () => {
    const cgroupMount = (c: { mounts?: Array<{ type?: string }> }) => c.mounts!.some((m) => m.type === 'cgroup');
    const plain = buildConfig('start', { rootfs }, false).config;
    expect(plain.annotations).toEqual({ 'run.hako.cgroup': 'none' });
    expect(cgroupMount(plain)).toBe(false);
    const needs: ContainerOptions[] = [
      { rootfs, limits: { pids: 4 } },
      { rootfs, config: { linux: { cgroupsPath: '/x/y' } } },
      { rootfs, config: { linux: { resources: { devices: [{ allow: false, access: 'rwm' }] } } } },
      { rootfs, config: { linux: { namespaces: [{ type: 'mount' }] } } },
      { rootfs, config: { mounts: [{ destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro'] }] } },
    ];
    for (const o of needs) {
      const c = buildConfig('start', o, false).config;
      expect(c.annotations?.['run.hako.cgroup']).toBeUndefined();
    }
    expect(cgroupMount(buildConfig('start', needs[0]!, false).config)).toBe(true);
    // nofile is an rlimit, not a cgroup's: still none.
    expect(buildConfig('start', { rootfs, limits: { nofile: 64 } }, false).config.annotations).toEqual({ 'run.hako.cgroup': 'none' });
    // The caller's own value is theirs (create refuses a wrong one).
    expect(buildConfig('start', { rootfs, config: { annotations: { 'run.hako.cgroup': 'none' } } }, false).config.annotations).toEqual({
      'run.hako.cgroup': 'none',
    });
  });

  it("network 'none' marks the config for no lo; ports declare socket activation", () => {
    const none = buildConfig('start', { rootfs, network: 'none' }, false).config;
    expect(none.annotations).toEqual({ 'run.hako.network': 'none', 'run.hako.cgroup': 'none' });
    const ports = buildConfig('start', { rootfs, ports: [{ container: 8080 }, { container: 53 }] }, false).config;
    expect(ports.process!.env!.slice(-3)).toEqual(['LISTEN_FDS=2', 'LISTEN_PID=1', 'LISTEN_FDNAMES=8080:53']);
    expect(ports.annotations).toEqual({ 'run.hako.cgroup': 'none' });
  });

  it('config merges objects key by key and replaces arrays', () => {
    expect(merge({ a: { b: 1, c: [1, 2] }, d: 1 }, { a: { c: [3] }, e: 2 })).toEqual({ a: { b: 1, c: [3] }, d: 1, e: 2 });
    const { config } = buildConfig('start', { rootfs, config: { process: { noNewPrivileges: false }, hostname: 'x' } }, false);
    expect(config.process!.noNewPrivileges).toBe(false);
    expect(config.process!.args).toEqual(['sh']);
    expect(config.hostname).toBe('x');
  });

  it('a wrong option is one sentence naming it, with the step', () => {
    const cases: Array<[object, string]> = [
      [{}, 'start: rootfs | bundle | image: give exactly one (got none)'],
      [{ rootfs, args: 'sh' }, 'start: args: expected a non-empty array of strings'],
      [{ rootfs, cwd: 'tmp' }, 'start: cwd: expected an absolute path'],
      [{ rootfs, user: -1 }, 'start: user: expected a uid, or { uid, gid }'],
      [{ rootfs, limits: { memory: -1 } }, 'start: limits.memory: expected a positive number'],
      [{ rootfs, limits: { swap: 1 } }, 'start: limits.swap: unknown limit (memory, pids, cpus, nofile)'],
      [{ rootfs, network: 'host' }, "start: network: expected 'none' or 'loopback'"],
      [{ rootfs, ports: [{ container: 70000 }] }, 'start: ports[0].container: expected a port number'],
      [{ rootfs, mounts: [{ source: rootfs, target: 'data' }] }, 'start: mounts[0].target: "data" must be an absolute path'],
      [{ rootfs, config: { process: { args: [] } } }, 'start: config: process.args: must name the program to run'],
      [{ bundle: rootfs }, `start: bundle: "${rootfs}" has no config.json`],
    ];
    for (const [o, message] of cases) {
      const e = error(() => buildConfig('start', o, false));
      expect(e).toBeInstanceOf(HakoError);
      expect(e.message).toBe(message);
      expect(e.step).toMatch(/^(options|bundle)$/);
    }
  });
});
