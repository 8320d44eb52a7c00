// The driver's policy and file-writing logic against a temporary directory posing as a
// cgroup root. Real cgroup behaviour (limits, freezing, OOM) is proven in test/vm.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { HostCgroups } from '../../src/cgroups/detect.js';
import { CgroupManager } from '../../src/cgroups/manager.js';
import { prepareCgroup } from '../../src/cgroups/host.js';

let root: string;
let host: HostCgroups;

function cgroupDir(path: string, controllers: string, files: string[] = []): void {
  mkdirSync(path, { recursive: true });
  for (const f of ['cgroup.controllers', 'cgroup.subtree_control', 'cgroup.procs', 'cgroup.events', ...files]) {
    writeFileSync(join(path, f), f === 'cgroup.controllers' ? controllers : f === 'cgroup.events' ? 'populated 0\nfrozen 0\n' : '');
  }
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'hako-cgroot-'));
  cgroupDir(root, 'cpu memory pids');
  host = {
    mode: 'unified',
    mount: root,
    controllers: ['cpu', 'memory', 'pids'],
    v1Controllers: [],
    uid: 0,
    rootless: false,
    ownCgroup: '/',
    base: '/',
    baseControllers: ['cpu', 'memory', 'pids'],
    problem: null,
  };
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('cgroup manager on a fake root', () => {
  it('plans without touching the filesystem', () => {
    const plan = CgroupManager.plan({ id: 'c1', resources: { memory: { limit: 1 << 20 } }, host });
    expect(plan).toMatchObject({ path: '/hako/c1', mount: root, warnings: [] });
    expect(plan.writes).toEqual([{ file: 'memory.max', value: '1048576', controller: 'memory', field: 'linux.resources.memory.limit' }]);
    expect(existsSync(join(root, 'hako'))).toBe(false);
  });

  it('creates parents, enables controllers in them, writes limits, and records what it made', () => {
    // A fake leaf cannot grow interface files by itself: make it beforehand, as the kernel would.
    cgroupDir(join(root, 'hako'), 'cpu memory pids');
    cgroupDir(join(root, 'hako/c1'), 'cpu memory pids', ['memory.max', 'pids.max']);
    const m = prepareCgroup({ id: 'c1', resources: { memory: { limit: 1 << 20 }, pids: { limit: 9 } }, host }).manager!;
    expect(m.create()).toEqual([]);
    expect(readFileSync(join(root, 'hako/c1/memory.max'), 'utf8')).toBe('1048576');
    expect(readFileSync(join(root, 'hako/c1/pids.max'), 'utf8')).toBe('9');
    expect(readFileSync(join(root, 'cgroup.subtree_control'), 'utf8')).toBe('+pids'); // the fake keeps only the last write
    expect(m.toJSON()).toMatchObject({ path: '/hako/c1', created: ['/hako/c1'] });
    expect(new CgroupManager(m.toJSON()).dir).toBe(join(root, 'hako/c1'));
  });

  it('removes what it created when a write fails', () => {
    cgroupDir(join(root, 'shared'), 'cpu memory pids');
    const m = prepareCgroup({ id: 'c2', cgroupsPath: '/shared/c2', resources: { pids: { limit: 3 } }, host }).manager!;
    // The fake leaf has no cgroup.controllers, so the pids limit cannot be applied.
    expect(() => m.create()).toThrow(`linux.resources.pids.limit: the pids controller is not enabled for ${join(root, 'shared/c2')}`);
    expect(existsSync(join(root, 'shared/c2'))).toBe(false);
    expect(existsSync(join(root, 'shared'))).toBe(true); // not ours: it stays
  });

  it('drops limits of missing controllers with one warning, or refuses when strict', () => {
    const hybrid: HostCgroups = { ...host, mode: 'hybrid', baseControllers: ['hugetlb'], problem: 'hybrid' };
    const res = { memory: { limit: 1 << 20 }, pids: { limit: 5 }, hugepageLimits: [{ pageSize: '2MB', limit: 0 }] };
    const { plan, warnings } = prepareCgroup({ id: 'c3', resources: res, host: hybrid, strict: false });
    expect(plan!.writes.map((w) => w.file)).toEqual(['hugetlb.2MB.max']);
    expect(warnings).toEqual([
      `memory, pids limits are not applied: ${root} offers no such controller (set HAKO_CGROUP_STRICT=1 to refuse instead)`,
    ]);
    expect(() => prepareCgroup({ id: 'c3', resources: res, host: hybrid, strict: true })).toThrow(
      `linux.resources.memory.limit: the memory controller is not available in ${root} (it offers: hugetlb)`,
    );
    expect(() => prepareCgroup({ id: 'c3', resources: { unified: { 'memory.high': '1' } }, host: hybrid, strict: false })).toThrow(
      'linux.resources.unified["memory.high"]: the memory controller is not available',
    );
  });

  it('runs without a cgroup and one warning when nothing is writable, unless strict', () => {
    const none: HostCgroups = {
      ...host,
      rootless: true,
      uid: 1000,
      base: null,
      baseControllers: [],
      problem: 'no cgroup v2 subtree is delegated to uid 1000',
    };
    expect(prepareCgroup({ id: 'c4', host: none })).toEqual({ manager: null, plan: null, warnings: [] });
    const res = { pids: { limit: 5 } };
    expect(prepareCgroup({ id: 'c4', resources: res, host: none, strict: false }).warnings).toEqual([
      'linux.resources: limits are not applied because no cgroup v2 subtree is delegated to uid 1000 (set HAKO_CGROUP_STRICT=1 to refuse instead)',
    ]);
    expect(() => prepareCgroup({ id: 'c4', resources: res, host: none, strict: true })).toThrow(
      'linux.resources: limits are not applied because no cgroup v2 subtree is delegated to uid 1000',
    );
    expect(() => prepareCgroup({ id: 'c4', resources: { pids: { limit: -7 } }, host: none })).toThrow(
      'linux.resources.pids.limit: -7 is not a valid limit',
    );
  });
});
