// Landlock on real containers, rootless and as root (docs/landlock.md): writes outside the
// read-write paths are refused, TCP connect and bind only to the listed ports, and bad
// annotations are refused with one sentence and nothing left behind.
import fs from 'node:fs';
import { describe, it, expect } from 'vitest';
import { makeBundle, hako, WHO, type Who } from '../helpers/hako.js';
import { IS_ROOT } from '../helpers/env.js';
import type { Config } from '../../src/oci/config.js';

const LL = 'run.hako.landlock.';
const abi = (): number => {
  const r = hako('root', fs.mkdtempSync('/tmp/hako-f-'), ['features']);
  return Number((JSON.parse(r.stdout) as { annotations: Record<string, string> }).annotations[`${LL}abi`]);
};

function runSh(who: Who, annotations: Record<string, string>, script: string, edit: (c: Config) => void = () => {}) {
  const { bundle, root } = makeBundle(who, (c) => {
    c.process!.args = ['sh', '-c', script];
    // /tmp and /run: writable tmpfs mounts over the read-only busybox rootfs.
    c.mounts!.push({ destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev'] });
    c.mounts!.push({ destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev'] });
    c.annotations = { ...c.annotations, ...annotations };
    edit(c);
  });
  return { ...hako(who, root, ['run', '-b', bundle, 'll1']), root };
}

const left = (root: string) => fs.readdirSync(root).filter((f) => !f.startsWith('.'));

describe.each(WHO)('Landlock in containers (%s)', (who) => {
  const run = it.skipIf((who === 'root' && !IS_ROOT) || abi() < 4);

  run('fs.ro=/ with fs.rw=/tmp: writes beneath /tmp work, elsewhere they are refused', () => {
    const script =
      'echo a > /tmp/a && cat /tmp/a && mkdir /tmp/d && echo made; echo b > /run/b || echo run-refused; mkdir /dev/x || echo dev-refused; ls /bin/busybox';
    const r = runSh(who, { [`${LL}fs.ro`]: '/', [`${LL}fs.rw`]: '/tmp' }, script);
    expect(r.stdout).toBe('a\nmade\nrun-refused\ndev-refused\n/bin/busybox\n');
    expect(r.stderr).toMatch(/\/run\/b: Permission denied/);
    expect(r.stderr).toMatch(/can't create directory '\/dev\/x': Permission denied/);
    expect(r.status).toBe(0);
    // Without the annotations the same writes succeed.
    const bare = runSh(who, {}, 'echo b > /run/b && mkdir /dev/x && echo both');
    expect(bare.stdout).toBe('both\n');
  });

  run('fs.ro only: nothing is writable, reading and executing work', () => {
    const r = runSh(who, { [`${LL}fs.ro`]: '/' }, 'grep -q root /etc/passwd && echo read; touch /tmp/t || echo refused');
    expect(r.stdout).toBe('read\nrefused\n');
  });

  run('net.connect: a TCP connect to the listed port works, to another port it is refused', () => {
    const script = [
      '(nc -l -p 5001 > /tmp/got1 &) ; (nc -l -p 5002 > /tmp/got2 &)',
      // Both listening before connecting.
      'for i in $(seq 100); do [ "$(netstat -ltn | grep -cE \':500[12] \')" = 2 ] && break; sleep 0.05; done',
      'echo hello1 | nc -w 2 127.0.0.1 5001 && echo sent1',
      'echo hello2 | nc -w 2 127.0.0.1 5002 || echo refused2',
      'for i in $(seq 400); do [ -s /tmp/got1 ] && break; sleep 0.05; done; cat /tmp/got1',
    ].join('; ');
    const r = runSh(who, { [`${LL}net.connect`]: '5001' }, script);
    expect(r.stdout).toBe('sent1\nrefused2\nhello1\n');
    expect(r.stderr).toMatch(/Permission denied/);
    // Without it both connect.
    const bare = runSh(who, {}, script.replace('|| echo refused2', '&& echo sent2'));
    expect(bare.stdout).toBe('sent1\nsent2\nhello1\n');
  });

  run('net.bind: only the listed port can be bound', () => {
    const r = runSh(
      who,
      { [`${LL}net.bind`]: '5001' },
      '(nc -l -p 5001 >/dev/null &); for i in $(seq 100); do netstat -ltn | grep -q :5001 && break; sleep 0.05; done; echo x | nc -w 1 127.0.0.1 5001 && echo bound1; nc -l -p 5002 || echo refused2',
    );
    expect(r.stdout).toBe('bound1\nrefused2\n');
  });

  run('best effort: a path missing from the rootfs drops its rule with a warning, the rest holds', () => {
    const r = runSh(
      who,
      { [`${LL}fs.ro`]: '/:/nope', [`${LL}fs.rw`]: '/tmp' },
      'echo a > /tmp/a && echo ok; echo b > /run/b || echo refused',
    );
    expect(r.stdout).toBe('ok\nrefused\n');
    expect(r.stderr).toContain(`${LL}fs.ro: /nope does not exist in the container, its rule was dropped`);
    expect(r.status).toBe(0);
  });

  const refused = (annotations: Record<string, string>, message: string) => {
    const r = runSh(who, annotations, 'echo should-not-run');
    expect(r.status).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toEqual([`hako: config.json: ${message}`]);
    expect(left(r.root)).toEqual([]);
  };

  run('strict: a path that does not exist refuses to start', () => {
    refused(
      { [`${LL}fs.ro`]: '/:/nope', [`${LL}strict`]: 'true' },
      `${LL}fs.ro: /nope does not exist in the container, its rule was dropped (${LL}strict is true)`,
    );
  });

  run('a path reached through a symlink inside the rootfs exists (sh -> busybox)', () => {
    const r = runSh(
      who,
      { [`${LL}fs.ro`]: '/bin/sh:/bin:/etc:/proc:/dev', [`${LL}fs.rw`]: '/tmp', [`${LL}strict`]: 'true' },
      'echo a > /tmp/a && echo ok',
    );
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('ok\n');
  });

  run('bad annotations: unknown key, bad port, bad strict value, relative path', () => {
    refused(
      { [`${LL}fs.rox`]: '/' },
      `annotation ${LL}fs.rox: unknown Landlock annotation (known: ${['fs.ro', 'fs.rw', 'net.bind', 'net.connect', 'strict'].map((k) => LL + k).join(', ')})`,
    );
    refused({ [`${LL}net.connect`]: '80,70000' }, `annotation ${LL}net.connect: "70000" is not a TCP port (0..65535)`);
    refused({ [`${LL}fs.ro`]: '/', [`${LL}strict`]: 'yes' }, `annotation ${LL}strict: must be "true" or "false", not "yes"`);
    refused({ [`${LL}fs.rw`]: 'tmp' }, `annotation ${LL}fs.rw: "tmp" is not an absolute path`);
  });
});
