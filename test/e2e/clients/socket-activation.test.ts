// Socket activation through the runc surface: hako started with LISTEN_FDS (as
// systemd starts a socket-activated service), and --preserve-fds with LISTEN_FDS
// declared in config.json. The container's process, pid 1 of its own pid
// namespace with an empty network namespace, gets the host's listening socket at
// fd 3, LISTEN_FDS=1 and LISTEN_PID=1.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { spawn } from 'node:child_process';
import { afterAll, describe, expect, test } from 'vitest';
import { CLI, IS_ROOT, TEST_USER } from '../../helpers/env.js';
import { scratchForThisFile, type Who } from '../../helpers/hako.js';

const { scratch, makeBundle } = scratchForThisFile();

const PROBE =
  'echo "fds=$LISTEN_FDS pid=$LISTEN_PID me=$$ sock=$(readlink /proc/self/fd/3) net=$(awk -F: "NR>2{print \\$1}" /proc/net/dev | tr -d " " | tr "\\n" " ")"';
const servers: net.Server[] = [];

async function listener(): Promise<{ fd: number; inode: string }> {
  const server = net.createServer();
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
  return { fd, inode: fs.readlinkSync(`/proc/self/fd/${fd}`) };
}

/** Runs `sh -c SCRIPT` with the listening socket at fd 3, as root or the test user. */
function runWithFd(who: Who, fd: number, script: string): Promise<{ code: number | null; out: string; err: string }> {
  const argv =
    who === 'root' ? ['sh', '-c', script] : ['setpriv', '--reuid', TEST_USER, '--regid', TEST_USER, '--init-groups', 'sh', '-c', script];
  const p = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe', fd], cwd: os.tmpdir(), env: { PATH: process.env.PATH } });
  let out = '';
  let err = '';
  p.stdout!.on('data', (d) => (out += d));
  p.stderr!.on('data', (d) => (err += d));
  return new Promise((res) => p.on('close', (code) => res({ code, out, err })));
}

afterAll(() => {
  for (const s of servers) s.close();
});

for (const who of (IS_ROOT ? ['rootless', 'root'] : ['rootless']) as Who[]) {
  describe(`socket activation (${who})`, () => {
    test('hako activated with LISTEN_FDS=1: the container gets the socket at fd 3, LISTEN_FDS=1, LISTEN_PID=1', async () => {
      const { fd, inode } = await listener();
      const { bundle } = makeBundle(who, (c) => {
        c.process!.args = ['sh', '-c', PROBE];
      });
      const root = scratch(who, 'root-');
      // LISTEN_PID=$$ then exec: the pid systemd would name is hako's own.
      const r = await runWithFd(who, fd, `LISTEN_FDS=1 LISTEN_PID=$$ exec '${CLI}' --root '${root}' run -b '${bundle}' act-${who}`);
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      expect(r.out).toContain(`fds=1 pid=1 me=1 sock=${inode} `);
      // The network namespace is empty but for lo: the socket is the only way in.
      expect(r.out).toMatch(/net=(lo )?\n/);
    });

    test('--preserve-fds 1 with LISTEN_FDS=1 in config.json: LISTEN_PID is set to the container process (1)', async () => {
      const { fd, inode } = await listener();
      const { bundle } = makeBundle(who, (c) => {
        c.process!.args = ['sh', '-c', PROBE];
        c.process!.env = [...(c.process!.env ?? []), 'LISTEN_FDS=1', 'LISTEN_PID=12345'];
      });
      const root = scratch(who, 'root-');
      const r = await runWithFd(who, fd, `exec '${CLI}' --root '${root}' run --preserve-fds 1 -b '${bundle}' pres-${who}`);
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      expect(r.out).toContain(`fds=1 pid=1 me=1 sock=${inode} `);
    });

    test('LISTEN_FDS without a new pid namespace is refused with a sentence', async () => {
      const { fd } = await listener();
      const { bundle } = makeBundle(who, (c) => {
        c.process!.args = ['true'];
        c.linux!.namespaces = c.linux!.namespaces!.filter((n) => n.type !== 'pid');
      });
      const root = scratch(who, 'root-');
      const r = await runWithFd(who, fd, `LISTEN_FDS=1 exec '${CLI}' --root '${root}' run -b '${bundle}' nopid-${who}`);
      expect(r.code).not.toBe(0);
      expect(r.err).toContain('socket activation needs a new pid namespace');
    });
  });
}
