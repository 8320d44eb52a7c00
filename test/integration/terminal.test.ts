// Terminals: the pty master reaches a --console-socket as one SCM_RIGHTS
// message whose data is the pty's name (what containerd and conmon expect),
// and `run` without a console socket relays the terminal itself.
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { describe, it, expect } from 'vitest';
import { makeBundle, hako, WHO, scratch } from '../helpers/hako.js';
import { IS_ROOT, CLI, TEST_USER } from '../helpers/env.js';
import { native } from '../../src/sys/native.js';

const asWho = (who: string, argv: string[]) =>
  who === 'root' ? argv : ['setpriv', '--reuid', TEST_USER, '--regid', TEST_USER, '--init-groups', ...argv];

describe.each(WHO)('terminal (%s)', (who) => {
  const run = it.skipIf(who === 'root' && !IS_ROOT);

  run('sends the pty master over --console-socket', async () => {
    const { bundle, root } = makeBundle(who, (c) => {
      c.process!.terminal = true;
      c.process!.args = ['sh', '-c', 'tty; echo in-a-tty'];
    });
    const dir = scratch(who, 'sock-');
    const sock = path.join(dir, 'console.sock');
    const lfd = native.listenUnix(sock);
    fs.chmodSync(sock, 0o777);
    const got = native.recvFd(lfd, 20_000);
    const argv = asWho(who, [CLI, '--root', root, 'create', '--console-socket', sock, '-b', bundle, 'tty1']);
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const { fd, data } = await got;
    expect(await new Promise((r) => child.on('exit', r))).toBe(0);
    expect(err).toBe('');
    expect(data).toMatch(/^\/dev\/pts\/\d+$/);
    expect(hako(who, root, ['start', 'tty1']).status).toBe(0);
    let out = '';
    await new Promise<void>((resolve) => {
      const s = fs.createReadStream('', { fd, autoClose: true });
      s.on('data', (d) => (out += d));
      s.on('error', () => resolve());
      s.on('end', () => resolve());
    });
    fs.closeSync(lfd);
    expect(out.replace(/\r/g, '')).toBe(`${data}\nin-a-tty\n`);
    expect(hako(who, root, ['delete', 'tty1']).status).toBe(0);
  });

  run('run relays the terminal itself, window size included', () => {
    const { bundle, root } = makeBundle(who, (c) => {
      c.process!.terminal = true;
      c.process!.args = ['sh', '-c', 'stty size; exit 4'];
    });
    const cmd = asWho(who, [CLI, '--root', root, 'run', '-b', bundle, 'tty2'])
      .map((a) => `'${a}'`)
      .join(' ');
    const r = spawnSync('script', ['-qec', `stty rows 33 cols 101; ${cmd}`, '/dev/null'], { encoding: 'utf8', timeout: 30_000 });
    // `script` echoes a ^@ of its own (its stdin is at EOF) before or after the container's line.
    expect(r.stdout.replace(/\^@|[\r\0]/g, '').trim()).toBe('33 101');
    expect(r.status).toBe(4);
  });
});
