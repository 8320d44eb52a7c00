// What `hako up` adds to and requires of a bundle's config: socket activation, a pid and a
// user namespace, and writable data volumes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { withSocketActivation, listenerFds as activationFds } from '../../src/runtime/activation.js';
import { checkVolumes, dataVolumes, writableByMode } from '../../src/up/volumes.js';
import type { Config } from '../../src/oci/config.js';

function config(namespaces: string[], env = ['PATH=/bin']): Config {
  return {
    ociVersion: '1.2.0',
    root: { path: 'rootfs' },
    process: { cwd: '/', args: ['/node'], env, user: { uid: 0, gid: 0 } },
    linux: { namespaces: namespaces.map((type) => ({ type })) },
  } as Config;
}

describe('socket activation', () => {
  it('adds LISTEN_FDS=1 and LISTEN_PID=1, replacing stale values, and puts the socket at fd 3', () => {
    const out = withSocketActivation(config(['pid', 'user', 'mount'], ['PATH=/bin', 'LISTEN_PID=77']));
    expect(out.process!.env).toEqual(['PATH=/bin', 'LISTEN_FDS=1', 'LISTEN_PID=1']);
    expect(activationFds(21)).toEqual([{ from: 21, to: 3 }]);
  });

  it('needs a new pid namespace (LISTEN_PID=1) and a user namespace', () => {
    expect(() => withSocketActivation(config(['user', 'mount']))).toThrow('hako up needs a new pid namespace');
    expect(() => withSocketActivation(config(['pid', 'mount']))).toThrow('hako up needs a new user namespace');
  });
});

describe('data volumes', () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

  it('are the bind mounts that are not read-only, resolved against the bundle', () => {
    const cfg = config(['pid', 'user']);
    cfg.mounts = [
      { destination: '/data', type: 'bind', source: 'data', options: ['rbind', 'rw'] },
      { destination: '/etc/x', type: 'bind', source: '/etc/x', options: ['rbind', 'ro'] },
      { destination: '/srv', source: '/srv', options: ['bind'] },
      { destination: '/tmp', type: 'tmpfs', source: 'tmpfs' },
    ];
    expect(dataVolumes(cfg, '/b')).toEqual([
      { source: '/b/data', destination: '/data' },
      { source: '/srv', destination: '/srv' },
    ]);
  });

  it('are judged writable by the mode bits, since the container has no DAC override even as root', () => {
    expect(writableByMode({ uid: 0, gid: 0, mode: 0o40500 }, 0, [0])).toBe(false);
    expect(writableByMode({ uid: 0, gid: 0, mode: 0o40700 }, 0, [0])).toBe(true);
    expect(writableByMode({ uid: 5, gid: 7, mode: 0o40770 }, 6, [7])).toBe(true);
    expect(writableByMode({ uid: 5, gid: 7, mode: 0o40775 }, 6, [8])).toBe(false);
  });

  it('missing or unwritable: one sentence naming the volume', () => {
    const bundle = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-up-'));
    dirs.push(bundle);
    const cfg = config(['pid', 'user']);
    cfg.mounts = [{ destination: '/data', type: 'bind', source: 'data', options: ['rbind', 'rw'] }];
    const data = path.join(bundle, 'data');
    expect(() => checkVolumes(cfg, bundle)).toThrow(
      `the data volume ${data} (mounted at /data) does not exist: create it (mkdir -p ${data})`,
    );
    fs.mkdirSync(data, { mode: 0o500 });
    expect(() => checkVolumes(cfg, bundle)).toThrow(
      `the data volume ${data} (mounted at /data) is not writable by uid ${process.geteuid!()}`,
    );
    fs.chmodSync(data, 0o700);
    expect(() => checkVolumes(cfg, bundle)).not.toThrow();
  });
});
