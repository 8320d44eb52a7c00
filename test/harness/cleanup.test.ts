// Disposal leaves nothing, whatever happens: 50 containers at once, a script that throws
// mid-way, one that is SIGKILLed, vitest tests that throw or time out. Each runs in a
// process of its own, rootless (as the test user) and as root; what is left is checked
// from outside: state dirs, cgroups, processes, mounts.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, it, expect, afterAll } from 'vitest';
import { BUSYBOX_ROOTFS, IS_ROOT, REPO } from '../helpers/env.js';
import { scratchForThisFile, WHO } from '../helpers/hako.js';
import { runScenario, leftovers, snapshot, alive, nodeAs, NOTHING_LEFT } from './scenario.js';

const { scratch } = scratchForThisFile();

describe.skipIf(!IS_ROOT).each(WHO)('the library leaves nothing (%s)', (who) => {
  const root = scratch(who, 'hrn-root-');
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('50 containers started at once from one process all complete, and nothing is left', () => {
    const before = snapshot();
    const r = runScenario(who, 'parallel', { root, rootfs: BUSYBOX_ROOTFS, count: 50 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const res = r.result as { ok: boolean; bad: unknown[]; pids: number[]; maxRunning: number; ms: number; timerTicks: number };
    expect(res.bad).toEqual([]);
    expect(res.ok).toBe(true);
    expect(res.pids).toHaveLength(50);
    // They ran at the same time (each sleeps 0.3 s), and the event loop kept turning meanwhile.
    expect(res.maxRunning).toBeGreaterThan(10);
    expect(res.timerTicks).toBeGreaterThan(res.ms / 10 / 4);
    expect(leftovers(root, [`hako-${r.pid}-`], res.pids, before)).toEqual(NOTHING_LEFT);
  });

  it('a script that throws mid-way with containers running leaves nothing (the exit guard)', () => {
    const before = snapshot();
    const r = runScenario(who, 'throws', { root, rootfs: BUSYBOX_ROOTFS });
    expect(r.stderr).toContain('the test failed here');
    expect(r.status).toBe(1);
    const pids = JSON.parse(r.stdout.split('\n')[0]!).pids as number[];
    expect(pids).toHaveLength(3);
    expect(leftovers(root, [`hako-${r.pid}-`], pids, before)).toEqual(NOTHING_LEFT);
  });

  it('a SIGKILLed script: its containers die with it, the next Hako on the root sweeps the rest', () => {
    const before = snapshot();
    const r = runScenario(who, 'killed', { root, rootfs: BUSYBOX_ROOTFS });
    expect(r.signal).toBe('SIGKILL');
    const pids = JSON.parse(r.stdout.split('\n')[0]!).pids as number[];
    expect(pids).toHaveLength(2);
    // PR_SET_PDEATHSIG: the kernel kills them as their creator dies; give it a moment.
    for (let i = 0; i < 200 && alive(pids).length; i++) spawnSync('sleep', ['0.01']);
    expect(alive(pids)).toEqual([]);
    // Nothing ran in the killed process: its state dirs are still there…
    expect(fs.readdirSync(root).filter((f) => f.startsWith(`hako-${r.pid}-`))).toHaveLength(2);
    // …until the next library process starts a container on the same root.
    const s = runScenario(who, 'sweep', { root, rootfs: BUSYBOX_ROOTFS });
    expect(s.status).toBe(0);
    // pino's JSON line on stderr (quotes escaped).
    expect(s.stderr).toMatch(/removed container \\"hako-\d+-\d+\\", left by library process \d+ which is gone/);
    expect(leftovers(root, [`hako-${r.pid}-`], pids, before)).toEqual(NOTHING_LEFT);
    expect(leftovers(root, [`hako-${s.pid}-`], [], before)).toEqual(NOTHING_LEFT);
  });

  it('vitest tests that throw or time out leave nothing (fixture and `await using`)', () => {
    const before = snapshot();
    const work = scratch(who, 'hrn-vitest-');
    const pidsFile = path.join(work, 'pids');
    const env = {
      PATH: process.env.PATH!,
      HRN_ROOT: root,
      HRN_ROOTFS: BUSYBOX_ROOTFS,
      HRN_PIDS: pidsFile,
      HRN_CACHE: path.join(work, 'cache'),
      HOME: work,
      NO_COLOR: '1',
    };
    const [cmd, argv] = nodeAs(who, [path.join(REPO, 'node_modules/vitest/vitest.mjs'), 'run', '--configLoader', 'runner'], env);
    const r = spawnSync(cmd, argv, { encoding: 'utf8', cwd: path.join(REPO, 'test/harness/fixtures'), env, timeout: 120_000 });
    const out = r.stdout + r.stderr;
    expect(out).toMatch(/Tests\s+\S*4 failed\S*\s+\S*\|\S*\s+\S*1 passed/);
    expect(out).toContain('failed mid-way');
    expect(out.match(/Test timed out in 2000ms/g)).toHaveLength(2);
    // The fixture closed its containers when its test ended, not only when the process did.
    expect(out).not.toContain('fixture containers left after their test');
    const noted = fs
      .readFileSync(pidsFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' '));
    expect(noted).toHaveLength(6);
    const pids = noted.map(([pid]) => Number(pid));
    expect(
      leftovers(
        root,
        noted.map(([, id]) => id!),
        pids,
        before,
      ),
    ).toEqual(NOTHING_LEFT);
  });
});
