// The OCI lifecycle with runc's command surface, on real containers, rootless
// and as root: create (init waits) -> state -> start -> kill -> delete; list;
// pid file; hooks with the state on stdin; nothing left behind.
import fs from 'node:fs';
import path from 'node:path';
import { describe, it, expect } from 'vitest';
import { makeBundle, hako, WHO, scratch } from '../helpers/hako.js';
import { IS_ROOT } from '../helpers/env.js';

function waitFor(pred: () => boolean, ms = 5000): boolean {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (pred()) return true;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
  return pred();
}

const alive = (pid: number) => {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/\) [ZX] /.test(st);
  } catch {
    return false;
  }
};

describe.each(WHO)('lifecycle (%s)', (who) => {
  it.skipIf(who === 'root' && !IS_ROOT)('create waits for start; state, kill, delete leave nothing', () => {
    const { bundle, root } = makeBundle(who, (c) => {
      c.process!.args = ['sh', '-c', 'trap "exit 3" TERM; echo started > /tmp/started; while true; do sleep 0.1; done'];
      c.root!.readonly = false;
      c.mounts!.push({ destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev'] });
    });
    const pidFile = path.join(bundle, 'init.pid');
    // detached: the created init inherits hako's stdio and would hold a pipe open.
    const c = hako(who, root, ['create', '--bundle', bundle, '--pid-file', pidFile, 'life1'], { detached: true });
    expect(c.stderr).toBe('');
    expect(c.status).toBe(0);
    const pidText = fs.readFileSync(pidFile, 'utf8');
    expect(pidText).toMatch(/^\d+$/);
    const pid = Number(pidText);
    expect(alive(pid)).toBe(true);

    const s1 = JSON.parse(hako(who, root, ['state', 'life1']).stdout);
    expect(s1).toMatchObject({ ociVersion: '1.2.0', id: 'life1', status: 'created', pid, bundle });

    const list = JSON.parse(hako(who, root, ['list', '--format', 'json']).stdout);
    expect(list.map((x: { id: string }) => x.id)).toEqual(['life1']);

    expect(hako(who, root, ['start', 'life1']).status).toBe(0);
    expect(JSON.parse(hako(who, root, ['state', 'life1']).stdout).status).toBe('running');
    const again = hako(who, root, ['start', 'life1']);
    expect(again.status).not.toBe(0);
    expect(again.stderr).toContain('it is running, not created');

    const del = hako(who, root, ['delete', 'life1']);
    expect(del.status).not.toBe(0);
    expect(del.stderr).toContain('not stopped');

    expect(hako(who, root, ['kill', 'life1', 'TERM']).status).toBe(0);
    expect(waitFor(() => !alive(pid))).toBe(true);
    expect(JSON.parse(hako(who, root, ['state', 'life1']).stdout).status).toBe('stopped');
    const k = hako(who, root, ['kill', 'life1', '9']);
    expect(k.status).not.toBe(0);
    expect(k.stderr).toContain('not running');
    expect(hako(who, root, ['kill', '--all', 'life1', '9']).status).toBe(0);

    expect(hako(who, root, ['delete', 'life1']).status).toBe(0);
    expect(fs.readdirSync(root).filter((f) => !f.startsWith('.'))).toEqual([]);
    const gone = hako(who, root, ['state', 'life1']);
    expect(gone.status).not.toBe(0);
    expect(gone.stderr).toContain('does not exist');
  });

  it.skipIf(who === 'root' && !IS_ROOT)('delete --force kills a running container and every process in it', () => {
    const { bundle, root } = makeBundle(who, (c) => {
      c.process!.args = ['sh', '-c', 'sleep 100 & sleep 100 & wait'];
    });
    expect(hako(who, root, ['run', '-d', '-b', bundle, 'life2'], { detached: true }).status).toBe(0);
    const pid = JSON.parse(hako(who, root, ['state', 'life2']).stdout).pid as number;
    expect(waitFor(() => fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).length === 2)).toBe(true);
    const kids = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
    expect(hako(who, root, ['delete', '--force', 'life2']).status).toBe(0);
    expect(waitFor(() => !alive(pid) && kids.every((k) => !alive(k)))).toBe(true);
    expect(fs.existsSync(path.join(root, 'life2'))).toBe(false);
  });

  it.skipIf(who === 'root' && !IS_ROOT)('runs hooks with the state on stdin, and a hanging hook times out and leaves nothing', () => {
    const out = scratch(who, 'h-');
    const hook = (name: string) => ({ path: '/bin/sh', args: ['sh', '-c', `cat > ${out}/${name}.json`] });
    const { bundle, root } = makeBundle(who, (c) => {
      c.mounts!.push({ destination: '/tmp', type: 'tmpfs', source: 'tmpfs' });
      c.process!.args = ['cat', '/tmp/start.json'];
      c.hooks = {
        createRuntime: [hook('createRuntime')],
        // Runs inside the container (its /bin/sh, its /tmp), before the process.
        startContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'cat > /tmp/start.json'] }],
        poststart: [hook('poststart')],
        poststop: [hook('poststop')],
      };
    });
    const r = hako(who, root, ['run', '-b', bundle, 'hooks1']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ id: 'hooks1', status: 'running', bundle });
    const cr = JSON.parse(fs.readFileSync(path.join(out, 'createRuntime.json'), 'utf8'));
    expect(cr).toMatchObject({ id: 'hooks1', status: 'creating', bundle });
    expect(cr.pid).toBeGreaterThan(0);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'poststart.json'), 'utf8')).status).toBe('running');
    expect(JSON.parse(fs.readFileSync(path.join(out, 'poststop.json'), 'utf8')).status).toBe('stopped');

    const hanging = makeBundle(who, (c) => {
      c.hooks = { createRuntime: [{ path: '/bin/sleep', args: ['sleep', '30'], timeout: 1 }] };
    });
    const h = hako(who, hanging.root, ['create', '-b', hanging.bundle, 'hooks2']);
    expect(h.status).not.toBe(0);
    expect(h.stderr).toBe('hako: createRuntime hook /bin/sleep timed out after 1 s\n');
    expect(fs.readdirSync(hanging.root).filter((f) => !f.startsWith('.'))).toEqual([]);
  });
});
