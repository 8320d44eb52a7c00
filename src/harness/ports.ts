// A published port: a TCP socket listening on the host, handed to the container as an
// inherited fd (socket activation: LISTEN_FDS, LISTEN_PID=1, LISTEN_FDNAMES), so the
// container serves on a host address with no network of its own.
//
// net.Server would accept connections itself, racing the container, and Node has no dup():
// the server's fd is sent to ourselves over a private unix socket (SCM_RIGHTS makes the
// duplicate) and the server is closed in the same tick, before the event loop polls it.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { HakoError } from '../errors.js';
import { native } from '../sys/native.js';

export interface PortOption {
  /** The port the container's program serves (its LISTEN_FDNAMES name for the fd). */
  container: number;
  /** The host port; 0 (default) lets the kernel pick a free one. */
  host?: number;
  /** The host address to listen on; default 127.0.0.1. */
  address?: string;
}

export interface PublishedPort {
  container: number;
  host: string;
  port: number;
  /** The listening socket; the container gets it at fd 3 + its index. */
  fd: number;
}

export async function publish(p: PortOption, where: string): Promise<PublishedPort> {
  const address = p.address ?? '127.0.0.1';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-port-'));
  const sock = path.join(dir, 'fd.sock');
  const unixFd = native.listenUnix(sock);
  try {
    const received = native.recvFd(unixFd, 10_000);
    const server = net.createServer();
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => {
        // Unblock the receiver's pool thread, and close what it gets.
        native.sendFdTo(sock, unixFd, 'none');
        received.then(
          (r) => r.fd >= 0 && native.closeFd(r.fd),
          () => undefined,
        );
        reject(
          new HakoError(`${where}: cannot listen on ${address}:${p.host ?? 0}: ${e.code ?? e.message}`, 1, {
            step: 'ports',
            errno: e.code,
          }),
        );
      });
      server.once('listening', () => {
        const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
        native.sendFdTo(sock, fd, 'listener');
        const bound = (server.address() as net.AddressInfo).port;
        server.close();
        resolve(bound);
      });
      server.listen({ host: address, port: p.host ?? 0, exclusive: true });
    });
    const { fd } = await received;
    return { container: p.container, host: address, port, fd };
  } finally {
    native.closeFd(unixFd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
