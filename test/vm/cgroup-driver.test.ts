// The cgroup v2 driver on a real kernel: run by test/vm/run.sh inside the VM, once as
// root and once as uid 1000 with a delegated subtree (/user/1000, as systemd delegates).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CgroupError, CgroupManager, detect, prepareCgroup, type HostCgroups, type LinuxResources } from '../../src/cgroups/index.js';

const inVm = process.env.HAKO_VM === '1';
const rootless = process.getuid?.() !== 0;
const CG = '/sys/fs/cgroup';

let host: HostCgroups;
let seq = 0;
const live: CgroupManager[] = [];
const children: ChildProcessWithoutNullStreams[] = [];

function make(resources?: LinuxResources, cgroupsPath?: string): CgroupManager {
  const id = `t${process.pid}-${++seq}`;
  const { manager, warnings } = prepareCgroup({ id, cgroupsPath, resources, host, strict: true });
  expect(warnings).toEqual([]);
  live.push(manager!);
  manager!.create();
  return manager!;
}

/** A shell that waits for a line on stdin before running `script`, so it can join the cgroup first. */
function gated(script: string): { child: ChildProcessWithoutNullStreams; go: () => void } {
  const child = spawn('sh', ['-c', `read go; ${script}`]);
  children.push(child);
  return { child, go: () => child.stdin.write('go\n') };
}

async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const read = (m: CgroupManager, file: string) => readFileSync(`${m.dir}/${file}`, 'utf8').trim();

describe.runIf(inVm)(`cgroup v2 driver as ${rootless ? 'uid 1000 (delegated subtree)' : 'root'}`, () => {
  beforeAll(() => {
    host = detect();
  });

  afterEach(async () => {
    for (const c of children.splice(0)) c.kill('SIGKILL');
    for (const m of live.splice(0)) await m.destroy();
  });

  it('detects a unified host and the subtree this user may write', () => {
    expect(host.mode).toBe('unified');
    expect(host.mount).toBe(CG);
    expect(host.problem).toBeNull();
    expect(host.base).toBe(rootless ? '/user/1000' : '/');
    expect(host.baseControllers).toEqual(expect.arrayContaining(['cpu', 'memory', 'pids', 'io']));
  });

  it('puts the cgroup at the default path, with the controllers enabled down to it', () => {
    const m = make({ pids: { limit: 7 } });
    expect(m.dir).toBe(rootless ? `${CG}/user/1000/hako/t${process.pid}-${seq}` : `${CG}/hako/t${process.pid}-${seq}`);
    expect(read(m, 'cgroup.controllers').split(' ')).toEqual(expect.arrayContaining(['cpu', 'memory', 'pids']));
    expect(read(m, 'pids.max')).toBe('7');
  });

  it('OOM-kills a process allocating past memory.max and counts it in memory.events', async () => {
    const m = make({ memory: { limit: 16 << 20, swap: 16 << 20 } });
    expect(read(m, 'memory.max')).toBe(String(16 << 20));
    expect(read(m, 'memory.swap.max')).toBe('0');
    const ooms: number[] = [];
    const stop = m.watchOom((e) => ooms.push(e.oomKill));
    const { child, go } = gated('exec tail /dev/zero');
    m.addProcess(child.pid!);
    go();
    const [, signal] = await once(child, 'exit');
    expect(signal).toBe('SIGKILL');
    expect(m.oomEvents().oomKill).toBeGreaterThanOrEqual(1);
    await until(() => ooms.length > 0, 'the OOM watch to fire');
    stop();
    expect(m.stats('x').data.memory.usage.limit).toBe(16 << 20);
  });

  it('stops a fork loop at pids.max', async () => {
    const m = make({ pids: { limit: 5 } });
    const { child, go } = gated('for i in 1 2 3 4 5 6 7 8 9 10; do sleep 30 & done; echo spawned; wait');
    m.addProcess(child.pid!);
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    go();
    await until(
      () => Number(read(m, 'pids.events').split(' ')[1]) > 0 && /fork/i.test(err),
      'pids.events max to count and the shell to fail a fork',
    );
    expect(Number(read(m, 'pids.current'))).toBeLessThanOrEqual(5);
    expect(m.pids().length).toBeLessThanOrEqual(5);
  });

  it('throttles a busy loop with cpu.max', async () => {
    const m = make({ cpu: { quota: 10000, period: 100000 } });
    expect(read(m, 'cpu.max')).toBe('10000 100000');
    const { child, go } = gated('while :; do :; done');
    m.addProcess(child.pid!);
    const t0 = Date.now();
    go();
    await sleep(2000);
    const { cpu } = m.stats('x').data;
    const wall = (Date.now() - t0) * 1e6;
    expect(cpu.throttling.throttledPeriods).toBeGreaterThan(0);
    // 10% of a CPU; an unthrottled loop would use close to 100% of the wall time.
    expect(cpu.usage.total).toBeLessThan(wall * 0.3);
  });

  it('freezes and thaws every process', async () => {
    const m = make();
    const ticks = [gated('while :; do echo t; sleep 0.05; done'), gated('while :; do echo t; sleep 0.05; done')];
    const counts = ticks.map(() => 0);
    ticks.forEach(({ child, go }, i) => {
      m.addProcess(child.pid!);
      child.stdout.on('data', (d: Buffer) => (counts[i] += d.toString().split('\n').length - 1));
      go();
    });
    await until(() => counts.every((c) => c > 2), 'both processes to tick');
    await m.freeze();
    expect(m.frozen()).toBe(true);
    const before = [...counts];
    await sleep(800);
    expect(counts).toEqual(before);
    await m.thaw();
    expect(m.frozen()).toBe(false);
    await until(() => counts.every((c, i) => c > before[i] + 2), 'both processes to tick again');
  });

  it('changes limits on a live cgroup with apply()', async () => {
    const m = make({ memory: { limit: 64 << 20 }, pids: { limit: 10 } });
    const { child, go } = gated('sleep 60');
    m.addProcess(child.pid!);
    go();
    expect(m.apply({ memory: { limit: 32 << 20 }, pids: { limit: 3 }, cpu: { shares: 1024 } })).toEqual([]);
    expect(read(m, 'memory.max')).toBe(String(32 << 20));
    expect(read(m, 'pids.max')).toBe('3');
    expect(read(m, 'cpu.weight')).toBe('39');
    expect(m.pids()).toContain(child.pid);
  });

  it('lists and signals every process, and killAll(SIGKILL) uses cgroup.kill', async () => {
    const m = make();
    const a = gated('sleep 60');
    const b = gated('trap "exit 3" TERM; sleep 60 & wait');
    for (const { child, go } of [a, b]) {
      m.addProcess(child.pid!);
      go();
    }
    await until(() => m.pids().length === 4, 'both shells and their sleeps to start');
    m.killAll('SIGTERM');
    const [code] = await once(b.child, 'exit');
    expect(code).toBe(3);
    m.killAll('SIGKILL');
    await until(() => m.pids().length === 0, 'every process to die');
  });

  it('destroy() kills leftovers and leaves no cgroup, nor the parent it made', async () => {
    const parent = rootless ? `${CG}/user/1000/nested-${process.pid}` : `${CG}/nested-${process.pid}`;
    const m = make({ pids: { limit: 20 } }, `${parent.slice(CG.length)}/c`);
    const { child, go } = gated('sleep 60');
    m.addProcess(child.pid!);
    go();
    const exited = once(child, 'exit'); // before destroy(): the exit may come while it waits
    await m.destroy();
    const [, signal] = await exited;
    expect(signal).toBe('SIGKILL');
    expect(existsSync(m.dir)).toBe(false);
    expect(existsSync(parent)).toBe(false);
    await m.destroy(); // idempotent
  });

  it('a failed create leaves no cgroup behind', () => {
    const path = `${host.base === '/' ? '' : host.base}/failing-${process.pid}/c`;
    const { manager } = prepareCgroup({ id: 'f', cgroupsPath: path, resources: { unified: { 'memory.bogus': '1' } }, host });
    expect(() => manager!.create()).toThrow('linux.resources.unified["memory.bogus"]: memory.bogus does not exist in this kernel');
    expect(existsSync(`${CG}/${path}`)).toBe(false);
    expect(existsSync(`${CG}${path.replace(/\/c$/, '')}`)).toBe(false);
  });

  it('refuses bad input with one sentence and creates nothing', () => {
    const before = existsSync(`${CG}${host.base === '/' ? '' : host.base}/hako`);
    expect(() => prepareCgroup({ id: 'bad', resources: { memory: { limit: -5 } }, host })).toThrow(
      new CgroupError('linux.resources.memory.limit: -5 is not a valid limit'),
    );
    expect(() => prepareCgroup({ id: 'bad', cgroupsPath: '/../../x', host })).toThrow(/linux.cgroupsPath: .* may not contain/);
    expect(existsSync(`${CG}${host.base === '/' ? '' : host.base}/hako/bad`)).toBe(false);
    expect(existsSync(`${CG}${host.base === '/' ? '' : host.base}/hako`)).toBe(before);
  });

  it.runIf(rootless)('refuses a cgroupsPath outside the delegated subtree', () => {
    expect(() => prepareCgroup({ id: 'x', cgroupsPath: '/system.slice/x', host })).toThrow(
      'linux.cgroupsPath: "/system.slice/x" resolves to /system.slice/x, outside the cgroup subtree /user/1000 this user may write',
    );
  });

  it('reports stats in the shape of runc events --stats', async () => {
    const m = make({ memory: { limit: 256 << 20 }, pids: { limit: 50 } });
    const { child, go } = gated('i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 60');
    m.addProcess(child.pid!);
    go();
    await until(() => m.pids().length === 2, 'the loop to finish and sleep to start');
    const s = m.stats('c');
    expect(s).toMatchObject({ type: 'stats', id: 'c' });
    expect(s.data.memory.usage.usage).toBeGreaterThan(0);
    expect(s.data.memory.usage.limit).toBe(256 << 20);
    expect(s.data.memory.raw.anon).toBeGreaterThanOrEqual(0);
    expect(s.data.pids).toEqual({ current: 2, limit: 50 });
  });
});
