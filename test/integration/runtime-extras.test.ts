// The rest of the runtime's promises on real containers: devices, domain name
// and oom score, features, concurrent calls on one id, a missing newuidmap.
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { describe, it, expect } from 'vitest';
import { makeBundle, hako, WHO, testUserIds, testUserSubIds } from '../helpers/hako.js';
import { IS_ROOT, CLI, TEST_USER } from '../helpers/env.js';

describe.each(WHO)('runtime extras (%s)', (who) => {
  const run = it.skipIf(who === 'root' && !IS_ROOT);

  run('linux.devices, domainname and oomScoreAdj reach the container', () => {
    const { bundle, root } = makeBundle(who, (c) => {
      // Root creates the node; rootless binds the host's (same path).
      c.linux!.devices = [
        who === 'root'
          ? { type: 'c', path: '/dev/mynull', major: 1, minor: 3, fileMode: 0o620 }
          : { type: 'c', path: '/dev/fuse', major: 10, minor: 229 },
      ];
      c.domainname = 'example.org';
      c.process!.oomScoreAdj = 432;
      c.process!.args = [
        'sh',
        '-c',
        `stat -c '%t:%T' ${who === 'root' ? '/dev/mynull' : '/dev/fuse'}; cat /proc/sys/kernel/domainname; cat /proc/self/oom_score_adj`,
      ];
    });
    const r = hako(who, root, ['run', '-b', bundle, 'x1']);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toEqual([who === 'root' ? '1:3' : 'a:e5', 'example.org', '432']);
  });

  run('features lists what the runtime supports', () => {
    const f = JSON.parse(hako(who, '/tmp', ['features']).stdout);
    expect(f.ociVersionMax).toBe('1.2.0');
    expect(f.linux.namespaces).toContain('time');
    expect(f.linux.seccomp.actions).toContain('SCMP_ACT_NOTIFY');
    expect(f.linux.seccomp.operators).toContain('SCMP_CMP_MASKED_EQ');
    expect(f.hooks).toContain('startContainer');
    expect(f.mountOptions).toContain('rslave');
  });

  run('concurrent creates of one id: exactly one wins, the state stays whole', async () => {
    const { bundle, root } = makeBundle(who, (c) => (c.process!.args = ['sleep', '30']));
    const argv = who === 'root' ? [CLI] : ['setpriv', '--reuid', TEST_USER, '--regid', TEST_USER, '--init-groups', CLI];
    const results = await Promise.all(
      Array.from(
        { length: 5 },
        () =>
          new Promise<{ code: number | null; err: string }>((resolve) => {
            const p = spawn(argv[0]!, [...argv.slice(1), '--root', root, 'create', '-b', bundle, 'same'], {
              stdio: ['ignore', 'ignore', 'pipe'],
            });
            let err = '';
            p.stderr.on('data', (d) => (err += d));
            p.on('exit', (code) => resolve({ code, err }));
          }),
      ),
    );
    expect(results.filter((r) => r.code === 0)).toHaveLength(1);
    for (const r of results.filter((x) => x.code !== 0)) expect(r.err).toBe('hako: container "same" already exists\n');
    expect(JSON.parse(hako(who, root, ['state', 'same']).stdout).status).toBe('created');
    expect(hako(who, root, ['delete', 'same']).status).toBe(0);
    expect(fs.readdirSync(root).filter((f) => !f.startsWith('.'))).toEqual([]);
  });
});

describe('bad input: a missing newuidmap (rootless)', () => {
  it.skipIf(!IS_ROOT)('says which helper is missing and leaves nothing', () => {
    const { uid, gid } = testUserIds();
    const sub = testUserSubIds('/etc/subuid');
    const { bundle, root } = makeBundle('rootless', (c) => {
      c.linux!.uidMappings = [
        { containerID: 0, hostID: uid, size: 1 },
        { containerID: 1, hostID: sub.start, size: 10 },
      ];
      c.linux!.gidMappings = [{ containerID: 0, hostID: gid, size: 1 }];
    });
    const r = spawnSync(
      '/usr/bin/setpriv',
      ['--reuid', TEST_USER, '--regid', TEST_USER, '--init-groups', CLI, '--root', root, 'create', '-b', bundle, 'nomap'],
      {
        encoding: 'utf8',
        env: { PATH: path.join(root, 'empty-path') },
      },
    );
    expect(r.status).not.toBe(0);
    expect(r.stderr).toBe('hako: newuidmap is not installed (Debian package uidmap): it is needed to map a range of ids rootless\n');
    expect(fs.readdirSync(root).filter((f) => !f.startsWith('.'))).toEqual([]);
  });
});
