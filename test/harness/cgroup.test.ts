// A library container without limits gets no cgroup of its own (making and removing one was most
// of a short container's cost on this cgroup v1 host), yet keeps what a cgroup defended: as root
// without a user namespace the v1 devices cgroup stays, and its rules hold against a container
// given CAP_MKNOD (the control: a rule that allows the device, and the same attack opens it).
// A container with limits keeps its whole cgroup; asking for none where one is needed is one
// sentence, and nothing is left.
import fs from 'node:fs';
import { describe, it, expect, afterAll } from 'vitest';
import { Hako, HakoError } from '../../src/index.js';
import { BUSYBOX_ROOTFS, IS_ROOT } from '../helpers/env.js';
import { scratchForThisFile } from '../helpers/hako.js';
import { cgroupsNamed } from './scenario.js';

const { scratch } = scratchForThisFile();
const DEFAULT_CAPS = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];
const withMknod = [...DEFAULT_CAPS, 'CAP_MKNOD'];
// /dev is the container's own tmpfs: the node is made there, then opened (loop-control: 10:237,
// not among the devices a container gets; opening it needs no capability, only the cgroup's leave).
const ATTACK = 'mknod /dev/lc c 10 237 && if (exec 3</dev/lc) 2>/dev/null; then echo opened; else echo refused; fi';

describe.skipIf(!IS_ROOT)('a library container without limits: no cgroup of its own, the devices defence kept (root)', () => {
  const root = scratch('root', 'd-cg-');
  const hako = new Hako({ root });
  afterAll(async () => {
    await hako.close();
    expect(fs.readdirSync(root).filter((f) => !f.startsWith('.'))).toEqual([]);
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('without a user namespace only the v1 devices cgroup is made, and it refuses a device it does not allow', async () => {
    const config = { process: { capabilities: { bounding: withMknod, effective: withMknod, permitted: withMknod } } };
    const c = await hako.start({ rootfs: BUSYBOX_ROOTFS, id: 'd-cg-attack', args: ['sh', '-c', `${ATTACK}; sleep 60`], config });
    const state = JSON.parse(fs.readFileSync(`${root}/d-cg-attack/state.json`, 'utf8'));
    expect(state.annotations['run.hako.cgroup']).toBe('none');
    expect(state.cgroup.v1.map((h: { controllers: string[] }) => h.controllers)).toEqual([['devices']]);
    // No cgroup in any other hierarchy, nor in the v2 tree.
    expect(cgroupsNamed('d-cg-attack')).toEqual(['/sys/fs/cgroup/devices/hako/d-cg-attack']);
    const line = await new Promise<string>((resolve) => c.stdout.once('data', (d: Buffer) => resolve(String(d))));
    expect(line).toBe('refused\n');
    await c.close();
    expect(cgroupsNamed('d-cg-attack')).toEqual([]);

    // The control: the same attack where a rule allows the device (a resource: the whole cgroup).
    const allowed = await hako.run({
      rootfs: BUSYBOX_ROOTFS,
      id: 'd-cg-control',
      args: ['sh', '-c', ATTACK],
      config: { ...config, linux: { resources: { devices: [{ allow: true, type: 'c', major: 10, minor: 237, access: 'rwm' }] } } },
    });
    expect(allowed).toEqual({ code: 0, signal: null, stdout: 'opened\n', stderr: '' });
    expect(cgroupsNamed('d-cg-control')).toEqual([]);
  });

  it('a container with limits keeps its whole cgroup (every v1 hierarchy), and /sys/fs/cgroup', async () => {
    const c = await hako.start({
      rootfs: BUSYBOX_ROOTFS,
      id: 'd-cg-limits',
      args: ['sh', '-c', 'ls /sys/fs/cgroup; sleep 60'],
      limits: { pids: 50 },
    });
    const state = JSON.parse(fs.readFileSync(`${root}/d-cg-limits/state.json`, 'utf8'));
    expect(state.annotations['run.hako.cgroup']).toBeUndefined();
    expect(state.cgroup.v1.flatMap((h: { controllers: string[] }) => h.controllers)).toEqual(
      expect.arrayContaining(['pids', 'memory', 'devices', 'freezer']),
    );
    expect(state.cgroup.legacy).toBeUndefined();
    const listing = await new Promise<string>((resolve) => c.stdout.once('data', (d: Buffer) => resolve(String(d))));
    expect(listing).toContain('pids');
    await c.close();
    expect(cgroupsNamed('d-cg-limits')).toEqual([]);
  });

  it('without a cgroup the container does not see the host cgroup tree (no /sys/fs/cgroup mount), and state() works', async () => {
    const c = await hako.start({ rootfs: BUSYBOX_ROOTFS, id: 'd-cg-view', args: ['sh', '-c', 'ls /sys/fs/cgroup | wc -l; sleep 60'] });
    expect(c.state().status).toBe('running');
    const count = await new Promise<string>((resolve) => c.stdout.once('data', (d: Buffer) => resolve(String(d))));
    expect(count.trim()).toBe('0');
    await c.close();
  });

  it('asking for no cgroup where one is needed is one sentence, and nothing is left', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ limits: { pids: 9 } }, 'annotations["run.hako.cgroup"]: a container without a cgroup cannot have linux.resources (pids)'],
      [{}, 'annotations["run.hako.cgroup"]: expected "none", got "off"'],
      [{ config: { linux: { cgroupsPath: '/d-cg/x' } } }, 'a container without a cgroup cannot have linux.cgroupsPath'],
    ];
    for (const [extra, sentence] of cases) {
      const annotation = sentence.includes('"off"') ? 'off' : 'none';
      const config = { ...(extra.config as object), annotations: { 'run.hako.cgroup': annotation } };
      const e = await hako.run({ rootfs: BUSYBOX_ROOTFS, id: 'd-cg-bad', args: ['true'], ...extra, config }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(HakoError);
      expect((e as Error).message).toContain(sentence);
      expect((e as Error).message.split('\n')).toHaveLength(1);
      expect(fs.existsSync(`${root}/d-cg-bad`)).toBe(false);
      expect(cgroupsNamed('d-cg-bad')).toEqual([]);
    }
  });
});
