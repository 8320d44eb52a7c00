// Two edges between the plan and the C core, on real containers: a
// startContainer hook fills one executor step up to the op table's limit (and
// one string more is refused before anything starts), and a pid namespace the
// parent thread joins is a pid namespace whatever its path says (the addon used
// to take any path containing "time" for a time namespace).
import fs from 'node:fs';
import path from 'node:path';
import { describe, it, expect } from 'vitest';
import { hako, WHO, scratchForThisFile } from '../helpers/hako.js';
import { IS_ROOT } from '../helpers/env.js';
import { LIMIT } from '../../src/plan/ops.js';
import type { Config } from '../../src/oci/config.js';

const { makeBundle, scratch } = scratchForThisFile();
const vars = (n: number) => Array.from({ length: n }, (_, i) => `V${i}=${i}`);
const left = (root: string) => fs.readdirSync(root).filter((f) => !f.startsWith('.'));

describe.each(WHO)('the op table at work (%s)', (who) => {
  const run = it.skipIf(who === 'root' && !IS_ROOT);
  // A RUN_HOOK step: timeout, argc, then argv and env (native/plan_ops.def).
  const room = LIMIT.MAX_ARGS - 2;
  const hookBundle = (envCount: number) =>
    makeBundle(who, (c) => {
      c.mounts!.push({ destination: '/tmp', type: 'tmpfs', source: 'tmpfs' });
      c.process!.args = ['cat', '/tmp/n'];
      c.hooks = { startContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'env | grep -c "^V" > /tmp/n'], env: vars(envCount) }] };
    });

  run('a startContainer hook with as many strings as one step holds runs in the container', () => {
    const { bundle, root } = hookBundle(room - 3);
    const r = hako(who, root, ['run', '-b', bundle, 'limit1']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(String(room - 3));
  });

  run('one string more is refused when the plan is built, naming the hook and the limit, and leaves nothing', () => {
    const { bundle, root } = hookBundle(room - 2);
    const r = hako(who, root, ['run', '-b', bundle, 'limit2']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toBe(
      `hako: config.json: hooks.startContainer[0]: args and env hold ${room + 1} strings together, more than the ${room} a startContainer hook can take (it runs inside the container from one plan step of at most ${LIMIT.MAX_ARGS} arguments)\n`,
    );
    expect(left(root)).toEqual([]);
  });
});

// Root only: joining a pid namespace takes CAP_SYS_ADMIN in the runtime's own user
// namespace as well (the kernel's pidns_install), which a rootless runtime lacks.
describe('a pid namespace the runtime joins around clone (root)', () => {
  const who = 'root';
  it.skipIf(!IS_ROOT)('joins a pid namespace through a path that contains "time"', () => {
    const a = makeBundle(who, (c) => (c.process!.args = ['sleep', '30']));
    expect(hako(who, a.root, ['run', '-d', '-b', a.bundle, 'pidA'], { detached: true }).status).toBe(0);
    const pidA = JSON.parse(hako(who, a.root, ['state', 'pidA']).stdout).pid as number;
    try {
      // A symlink open() follows: the path names A's pid namespace, and says "time".
      const dir = path.join(scratch(who, 'ns-'), 'time');
      fs.mkdirSync(dir, { mode: 0o755 });
      fs.symlinkSync(`/proc/${pidA}/ns/pid`, path.join(dir, 'pid'));
      const b = makeBundle(who, (c: Config) => {
        // A new user namespace with a joined pid one: the runtime's thread joins it around clone.
        c.linux!.namespaces!.push({ type: 'user' });
        c.linux!.uidMappings = [{ containerID: 0, hostID: 0, size: 65536 }];
        c.linux!.gidMappings = [{ containerID: 0, hostID: 0, size: 65536 }];
        c.linux!.namespaces = c.linux!.namespaces!.map((n) => (n.type === 'pid' ? { type: 'pid', path: path.join(dir, 'pid') } : n));
        // A proc for A's pid namespace needs the user namespace that owns it (the host's): none is mounted.
        c.mounts = c.mounts!.filter((m) => m.destination !== '/proc');
        c.linux!.maskedPaths = [];
        c.linux!.readonlyPaths = [];
        c.process!.args = ['sleep', '30'];
      });
      const r = hako(who, b.root, ['run', '-d', '-b', b.bundle, 'pidB'], { detached: true });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const pidB = JSON.parse(hako(who, b.root, ['state', 'pidB']).stdout).pid as number;
      expect(fs.readlinkSync(`/proc/${pidB}/ns/pid`)).toBe(fs.readlinkSync(`/proc/${pidA}/ns/pid`));
      expect(fs.readlinkSync(`/proc/${pidB}/ns/user`)).not.toBe(fs.readlinkSync(`/proc/${pidA}/ns/user`));
      hako(who, b.root, ['delete', '--force', 'pidB']);
    } finally {
      hako(who, a.root, ['delete', '--force', 'pidA']);
    }
  });
});
