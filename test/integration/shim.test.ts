// The preload shim in real containers, rootless and as root (docs/limits.md): each ceiling
// stops its loop with the errno a real allocator or kernel gives, and the process can still
// print and exit cleanly; the allowlists refuse with EACCES; unsetting LD_PRELOAD or `env -i`
// does not remove the shim; a preload file the container cannot read makes create refuse, a
// first process that does not load the shim makes start refuse; bad annotations get one
// sentence and leave nothing behind.
import fs from 'node:fs';
import path from 'node:path';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { scratchForThisFile, hako, WHO, type Who } from '../helpers/hako.js';
import { IS_ROOT } from '../helpers/env.js';
import { makeShimRootfs } from '../helpers/shim-rootfs.js';
import type { Config } from '../../src/oci/config.js';

const S = 'run.hako.shim.';
const { scratch, makeBundle } = scratchForThisFile();
let rootfs = '';

beforeAll(() => {
  rootfs = makeShimRootfs(path.join(scratch('root', 'shimfs-'), 'rootfs'));
  fs.chmodSync(path.dirname(rootfs), 0o755);
});
afterAll(() => fs.rmSync(path.dirname(rootfs), { recursive: true, force: true }));

function bundleFor(who: Who, annotations: Record<string, string>, args: string[], edit: (c: Config) => void = () => {}) {
  return makeBundle(who, (c) => {
    c.root = { path: rootfs, readonly: true };
    c.process!.args = args;
    c.process!.env = ['PATH=/usr/bin:/bin', 'LD_PRELOAD='];
    c.annotations = { ...c.annotations, ...annotations };
    edit(c);
  });
}

function run(who: Who, annotations: Record<string, string>, args: string[], edit?: (c: Config) => void) {
  const { bundle, root } = bundleFor(who, annotations, args, edit);
  const r = hako(who, root, ['run', '-b', bundle, 'shim1'], { timeout: 60_000 });
  return { ...r, root };
}

/** Nothing of a container is left in the state root. */
const left = (root: string) => fs.readdirSync(root).filter((f) => !f.startsWith('.') && !f.endsWith('.lock'));

describe.each(WHO)('the preload shim (%s)', (who) => {
  const test = it.skipIf(who === 'root' && !IS_ROOT);

  test('an allocation loop stops at the memory ceiling with ENOMEM, and the process still prints and exits', () => {
    const r = run(who, { [`${S}memory`]: '64M' }, ['shimtest', 'alloc', '1048576']);
    expect(r.stdout).toMatch(/^malloc stopped after (6[0-3]) MiB: ENOMEM\nstill alive\n$/);
    expect(r.status).toBe(0);
    // hako logged the denial, with the container's id.
    expect(r.stderr).toMatch(
      /container shim1: the preload shim refused malloc to \/usr\/bin\/shimtest \(pid \d+\): 1048576 more bytes would pass its memory ceiling of 67108864/,
    );
    expect(left(r.root)).toEqual([]);
  });

  test('so does an mmap loop (MAP_FAILED, ENOMEM); PROT_NONE reservations do not count', () => {
    const r = run(who, { [`${S}memory`]: '64M' }, ['shimtest', 'exec', '/bin/sh', '-c', 'shimtest mmap 1048576; shimtest reserve']);
    expect(r.stdout).toMatch(
      /^mmap stopped after 6[0-4] MiB: ENOMEM\nstill alive\nreserved 8 GiB, committed 1 MiB; committing 1 GiB more: ENOMEM\n$/,
    );
    expect(r.status).toBe(0);
  });

  test('a fork loop and a thread loop stop at the container-wide process ceiling (EAGAIN)', () => {
    // The first process holds one of the 10 slots.
    const r = run(who, { [`${S}processes`]: '10' }, ['shimtest', 'fork']);
    expect(r.stdout).toBe('fork stopped after 9 children: EAGAIN\nstill alive\n');
    const t = run(who, { [`${S}processes`]: '10' }, ['shimtest', 'threads']);
    expect(t.stdout).toBe('pthread_create stopped after 9 threads: EAGAIN\nstill alive\n');
    expect(t.stderr).toMatch(/refused pthread_create .*ceiling of 10 processes and threads/);
  });

  test("the process count is the container's: a child's children count against it too", () => {
    // sh (static: it keeps the slot of the shimtest it replaced) and the shimtest it forks
    // hold 2 of the 10 slots: 8 are left for the fork loop.
    const r = run(who, { [`${S}processes`]: '10' }, ['shimtest', 'exec', '/bin/sh', '-c', '/usr/bin/shimtest fork; true']);
    expect(r.stdout).toBe('fork stopped after 8 children: EAGAIN\nstill alive\n');
  });

  test('an fd loop stops at the descriptor ceiling (EMFILE)', () => {
    const r = run(who, { [`${S}files`]: '16' }, ['shimtest', 'files']);
    // stdin, stdout and stderr are 3 of the 16.
    expect(r.stdout).toBe('open stopped after 13 more descriptors: EMFILE\nstill alive\n');
  });

  test('connect: a listed address and port works, another is refused with EACCES', () => {
    const r = run(who, { [`${S}connect`]: '127.0.0.1:5001, [::1]:5003, /run/x.sock' }, ['shimtest', 'connect', '5001', '5002']);
    expect(r.stdout).toBe('connect 127.0.0.1:5001: ok\nconnect 127.0.0.1:5002: EACCES\n');
    expect(r.stderr).toMatch(/refused connect .*127\.0\.0\.1:5002 is not in run\.hako\.shim\.connect/);
  });

  test('exec: a listed program runs, another fails with EACCES', () => {
    const ok = run(who, { [`${S}exec`]: '/usr/bin/shimtest-b' }, ['shimtest', 'exec', '/usr/bin/shimtest-b', 'loaded']);
    expect(ok.stdout).toBe('shim loaded, LD_PRELOAD \n');
    const no = run(who, { [`${S}exec`]: '/usr/bin/shimtest-b' }, ['shimtest', 'exec', '/bin/busybox', 'true']);
    expect(no.stdout).toBe('exec /bin/busybox failed: EACCES\n');
  });

  test('unset LD_PRELOAD and env -i do not remove it', () => {
    const r = run(who, { [`${S}processes`]: '64' }, [
      'shimtest',
      'exec',
      '/bin/sh',
      '-c',
      'unset LD_PRELOAD; /usr/bin/shimtest loaded; env -i /usr/bin/shimtest loaded',
    ]);
    expect(r.stdout).toBe('shim loaded, LD_PRELOAD unset\nshim loaded, LD_PRELOAD unset\n');
  });

  test('a preload file the container cannot read makes create refuse, leaving nothing', () => {
    // Landlock lets the process read only /usr, /lib* and /bin: not /etc/ld.so.preload.
    const ll = { 'run.hako.landlock.fs.ro': '/usr,/lib,/lib64,/bin' };
    const { bundle, root } = bundleFor(who, { [`${S}memory`]: '64M', ...ll }, ['shimtest', 'loaded']);
    const r = hako(who, root, ['create', '-b', bundle, 'shim2'], { detached: true });
    expect(r.stderr).toMatch(/check the container's process can load the preload shim .* failed: EACCES/);
    expect(r.status).not.toBe(0);
    expect(left(root)).toEqual([]);
  });

  test('a first process that does not load the shim (static) makes start refuse', () => {
    const { bundle, root } = bundleFor(who, { [`${S}memory`]: '64M' }, ['/bin/sleep', '30']);
    const r = hako(who, root, ['run', '-b', bundle, 'shim3'], { timeout: 30_000 });
    expect(r.stderr).toMatch(/the preload shim did not load in its first process \(\/bin\/busybox did not load it/);
    expect(r.status).not.toBe(0);
    expect(left(root)).toEqual([]);
  });

  test.each([
    ['memory', '0', /a ceiling of 0 would refuse every allocation/],
    ['memory', '-5M', /"-5M" is not a size/],
    ['memory', 'lots', /"lots" is not a size/],
    ['processes', '0', /a ceiling of 0 would refuse everything/],
    ['files', '-1', /"-1" is not a whole number/],
    ['connect', '10.0.0.1', /"10.0.0.1" is not ADDR\[\/PREFIX\]:PORT/],
    ['connect', '10.0.0.0/33:80', /the prefix must be 0 to 32/],
    ['exec', 'bin/sh', /"bin\/sh" is not an absolute path/],
    ['memroy', '1G', /unknown shim setting/],
  ])('bad input: %s=%s gets one sentence and leaves nothing', (key, value, sentence) => {
    const { bundle, root } = bundleFor(who, { [`${S}${key}`]: value }, ['shimtest', 'loaded']);
    const r = hako(who, root, ['create', '-b', bundle, 'shim4']);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(new RegExp(`annotations\\["run\\.hako\\.shim\\.${key}"\\]`));
    expect(r.stderr).toMatch(sentence);
    expect(r.status).not.toBe(0);
    expect(left(root)).toEqual([]);
  });
});
