// cgroup v1 on a hybrid (or legacy) host, as root: the limits go to the v1 hierarchies that
// hold their controllers and the container joins its cgroup in each, as runc does (issue 10 C).
// Rootless, v1 has no delegation: one clear warning, an error when strict.
// Runs where the host is like this machine: v1 holds memory, pids, cpu (and freezer).
import fs from 'node:fs';
import path from 'node:path';
import { describe, it, expect, afterAll } from 'vitest';
import { hako, scratchForThisFile } from '../helpers/hako.js';
import { IS_ROOT } from '../helpers/env.js';
import { detect } from '../../src/cgroups/detect.js';

const { makeBundle } = scratchForThisFile();
const host = detect({ uid: 0 });
const V1 = IS_ROOT && (host.v1?.length ?? 0) > 0;
const holds = (c: string) => host.v1?.find((h) => h.controllers.includes(c));
const dirOf = (c: string, id: string) => path.join(holds(c)!.mount, 'hako', id);
const read = (c: string, id: string, file: string) => fs.readFileSync(path.join(dirOf(c, id), file), 'utf8').trim();
/** Every directory the container's cgroup could have: each v1 hierarchy and the v2 tree. */
const allDirs = (id: string) => [
  ...(host.v1 ?? []).map((h) => path.join(h.mount, 'hako', id)),
  ...(host.mount ? [path.join(host.mount, 'hako', id)] : []),
];

const started: { root: string; id: string }[] = [];
afterAll(() => {
  for (const { root, id } of started) hako('root', root, ['delete', '--force', id]);
});

function start(id: string, resources: object, args = ['sleep', '60']): string {
  const { bundle, root } = makeBundle('root', (c) => {
    c.process!.args = args;
    c.linux!.resources = { ...c.linux!.resources, ...resources };
  });
  const r = hako('root', root, ['run', '-d', '-b', bundle, id], { detached: true });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  started.push({ root, id });
  return root;
}

describe.skipIf(!V1)('cgroup v1 limits as root (hybrid host)', () => {
  it('puts the container in its cgroup in every v1 hierarchy and in v2, with the limits written', () => {
    const root = start('v1a', {
      memory: { limit: 64 << 20, swap: 64 << 20 },
      pids: { limit: 32 },
      cpu: { quota: 20000, period: 100000, shares: 512 },
    });
    const pid = JSON.parse(hako('root', root, ['state', 'v1a']).stdout).pid as number;
    for (const dir of allDirs('v1a')) expect(fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n')).toContain(String(pid));
    expect(read('memory', 'v1a', 'memory.limit_in_bytes')).toBe(String(64 << 20));
    expect(read('pids', 'v1a', 'pids.max')).toBe('32');
    expect(read('cpu', 'v1a', 'cpu.cfs_quota_us')).toBe('20000');
    expect(read('cpu', 'v1a', 'cpu.cfs_period_us')).toBe('100000');
    expect(read('cpu', 'v1a', 'cpu.shares')).toBe('512');
    // runc's device rules: deny all, then the default nodes.
    expect(read('devices', 'v1a', 'devices.list').split('\n')).toEqual(expect.arrayContaining(['c 1:3 rwm', 'c 136:* rwm', 'c *:* m']));
    expect(read('devices', 'v1a', 'devices.list')).not.toContain('a *:* rwm');
    // update goes to v1 too: raising memory and memory+swap together (memsw first).
    const u = hako('root', root, [
      'update',
      '--memory',
      '128m',
      '--memory-swap',
      '128m',
      '--cpu-quota',
      '30000',
      '--pids-limit',
      '40',
      'v1a',
    ]);
    expect(u.stderr).toBe('');
    expect(read('memory', 'v1a', 'memory.limit_in_bytes')).toBe(String(128 << 20));
    expect(read('memory', 'v1a', 'memory.memsw.limit_in_bytes')).toBe(String(128 << 20));
    expect(read('cpu', 'v1a', 'cpu.cfs_quota_us')).toBe('30000');
    expect(read('pids', 'v1a', 'pids.max')).toBe('40');
    const stats = JSON.parse(hako('root', root, ['events', '--stats', 'v1a']).stdout);
    expect(stats.data.memory.usage.limit).toBe(128 << 20);
    expect(stats.data.pids).toMatchObject({ limit: 40 });
    expect(stats.data.pids.current).toBeGreaterThanOrEqual(1);
    expect(stats.data.cpu.usage.total).toBeGreaterThan(0);
  });

  it('a process allocating past the memory limit is OOM-killed', () => {
    const root = start('v1mem', { memory: { limit: 32 << 20, swap: 32 << 20 } });
    // dd reads 96 MiB into one buffer it allocated: past 32 MiB of memory (and of memory+swap).
    const r = hako('root', root, ['exec', 'v1mem', 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=96M', 'count=1']);
    expect(r.status).toBe(137);
    expect(read('memory', 'v1mem', 'memory.oom_control')).toMatch(/oom_kill [1-9]/);
    expect(Number(read('memory', 'v1mem', 'memory.max_usage_in_bytes'))).toBeLessThanOrEqual(32 << 20);
    // The container's init lives on: only the allocating process died.
    expect(JSON.parse(hako('root', root, ['state', 'v1mem']).stdout).status).toBe('running');
  });

  it('a fork bomb is bounded by pids.max', () => {
    const root = start('v1pids', { pids: { limit: 10 } });
    // busybox sh gives up at the first fork the limit refuses ("can't fork"): 40 never start.
    const r = hako('root', root, [
      'exec',
      'v1pids',
      'sh',
      '-c',
      'i=0; while [ $i -lt 40 ]; do sleep 30 >/dev/null 2>&1 & i=$((i+1)); done',
    ]);
    expect(r.stderr).toMatch(/can't fork/);
    expect(Number(read('pids', 'v1pids', 'pids.current'))).toBeLessThanOrEqual(10);
    expect(read('pids', 'v1pids', 'pids.events')).toMatch(/max [1-9]/);
    // ps and kill --all see every process of the container.
    const ps = hako('root', root, ['ps', '--format', 'json', 'v1pids']);
    const pids = JSON.parse(ps.stdout) as number[];
    expect(pids.length).toBeGreaterThan(1);
    expect(pids.length).toBeLessThanOrEqual(10);
    expect(hako('root', root, ['kill', '--all', 'v1pids', 'KILL']).status).toBe(0);
    const deadline = Date.now() + 5000;
    while (pids.some((p) => fs.existsSync(`/proc/${p}`)) && Date.now() < deadline);
    expect(pids.filter((p) => fs.existsSync(`/proc/${p}`))).toEqual([]);
  });

  it('pause and resume go through the v1 freezer', () => {
    const root = start('v1frz', {}, ['sh', '-c', 'while :; do :; done']);
    expect(hako('root', root, ['pause', 'v1frz']).status).toBe(0);
    expect(read('freezer', 'v1frz', 'freezer.state')).toBe('FROZEN');
    expect(JSON.parse(hako('root', root, ['state', 'v1frz']).stdout).status).toBe('paused');
    const pid = JSON.parse(hako('root', root, ['state', 'v1frz']).stdout).pid as number;
    expect(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1][0]).not.toBe('R');
    expect(hako('root', root, ['resume', 'v1frz']).status).toBe(0);
    expect(read('freezer', 'v1frz', 'freezer.state')).toBe('THAWED');
    expect(JSON.parse(hako('root', root, ['state', 'v1frz']).stdout).status).toBe('running');
  });

  it('delete leaves no cgroup directory behind in any hierarchy', () => {
    const root = start('v1del', { memory: { limit: 64 << 20 }, pids: { limit: 20 } });
    expect(hako('root', root, ['exec', '-d', 'v1del', 'sleep', '60'], { detached: true }).status).toBe(0);
    for (const dir of allDirs('v1del')) expect(fs.existsSync(dir)).toBe(true);
    const d = hako('root', root, ['delete', '--force', 'v1del']);
    expect(d.stderr).toBe('');
    for (const dir of allDirs('v1del')) expect(fs.existsSync(dir)).toBe(false);
    // A container that exits on its own (run in the foreground) too.
    const { bundle, root: r2 } = makeBundle('root', (c) => (c.linux!.resources = { ...c.linux!.resources, pids: { limit: 5 } }));
    expect(hako('root', r2, ['run', '-b', bundle, 'v1fg']).status).toBe(0);
    for (const dir of allDirs('v1fg')) expect(fs.existsSync(dir)).toBe(false);
  });

  it('a create that fails leaves no cgroup behind', () => {
    const { bundle, root } = makeBundle('root', (c) => {
      c.linux!.resources = { ...c.linux!.resources, memory: { limit: 64 << 20 } };
      c.process!.args = ['/no/such/program'];
    });
    const r = hako('root', root, ['create', '-b', bundle, 'v1bad']);
    expect(r.status).not.toBe(0);
    for (const dir of allDirs('v1bad')) expect(fs.existsSync(dir)).toBe(false);
  });
});

describe.skipIf(!IS_ROOT || !(host.v1?.length || host.mode === 'hybrid'))('cgroup v1 rootless: no delegation', () => {
  it('runs without the limits after one clear warning', () => {
    const { bundle, root } = makeBundle('rootless', (c) => (c.linux!.resources = { memory: { limit: 64 << 20 }, pids: { limit: 20 } }));
    const r = hako('rootless', root, ['run', '-b', bundle, 'rl1']);
    expect(r.status).toBe(0);
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /level=warn msg="linux\.resources: limits are not applied because cgroup v1 holds memory, pids, cpu here \(hybrid mode\), and cgroup v1 cannot be delegated to uid \d+: limits need root on this host, or a cgroup v2 host with a delegated subtree \(set HAKO_CGROUP_STRICT=1 to refuse instead\)"$/,
    );
  });

  it('strict refuses instead, and leaves nothing', () => {
    const { bundle, root } = makeBundle('rootless', (c) => (c.linux!.resources = { memory: { limit: 64 << 20 } }));
    const r = hako('rootless', root, ['run', '-b', bundle, 'rl2'], { env: { HAKO_CGROUP_STRICT: '1' } });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("cannot apply the container's limits: linux.resources: limits are not applied because cgroup v1 holds");
    expect(fs.readdirSync(root).filter((f) => !f.startsWith('.'))).toEqual([]);
  });
});
