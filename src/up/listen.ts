// The listening TCP socket `hako up` opens on the host and hands to the container
// as fd 3 (socket activation): the container needs no network of its own to serve.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { HakoError } from '../errors.js';
import { native } from '../sys/native.js';

export interface ListenAddress {
  host: string;
  port: number;
}

/** HOST:PORT or [IPv6]:PORT; port 0 lets the kernel pick one. */
export function parseListen(text: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new HakoError(`--listen: "${text}" is not HOST:PORT (e.g. 127.0.0.1:8080)`);
  return { host: m[1] ?? m[2], port };
}

export function formatAddress({ host, port }: ListenAddress): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

function listenError(addr: ListenAddress, e: NodeJS.ErrnoException): HakoError {
  const where = formatAddress(addr);
  switch (e.code) {
    case 'EADDRINUSE':
      return new HakoError(`cannot listen on ${where}: the address is already in use (is another server running there?)`);
    case 'EACCES':
      return new HakoError(`cannot listen on ${where}: permission denied (ports below 1024 need privileges)`);
    case 'EADDRNOTAVAIL':
      return new HakoError(`cannot listen on ${where}: no local interface has the address ${addr.host}`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new HakoError(`cannot listen on ${where}: the host name ${addr.host} does not resolve`);
    default:
      return new HakoError(`cannot listen on ${where}: ${e.message}`);
  }
}

/**
 * Opens a listening socket and returns a plain fd that Node's event loop does not watch.
 *
 * Node's net.Server would accept connections itself (racing the container for them), and
 * Node has no dup(). So: listen with net.Server, pass its fd to ourselves over a private
 * unix socket (SCM_RIGHTS makes a duplicate), and close the server in the same tick, before
 * the event loop ever polls it. The duplicate keeps the socket listening across restarts.
 */
export async function openListener(addr: ListenAddress): Promise<{ fd: number; port: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-up-'));
  const sockPath = path.join(dir, 'fd.sock');
  let unixFd = -1;
  try {
    unixFd = native.listenUnix(sockPath);
    const received = native.recvFd(unixFd, 10_000);
    const server = net.createServer();
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', (e) => reject(listenError(addr, e as NodeJS.ErrnoException)));
      server.once('listening', () => {
        const { port } = server.address() as net.AddressInfo;
        try {
          native.sendFdTo(sockPath, (server as unknown as { _handle: { fd: number } })._handle.fd, 'listener');
        } catch (e) {
          reject(e);
        }
        server.close();
        resolve(port);
      });
      server.listen({ host: addr.host, port: addr.port, exclusive: true });
    }).catch(async (e) => {
      // Unblock the receiver so its worker thread does not linger until its timeout.
      native.sendFdTo(sockPath, unixFd, 'none');
      await received.then(
        (r) => r.fd >= 0 && fs.closeSync(r.fd),
        () => {},
      );
      throw e;
    });
    const { fd, data } = await received;
    if (data !== 'listener' || fd < 0) throw new HakoError(`cannot listen on ${formatAddress(addr)}: the socket was not handed over`);
    return { fd, port };
  } finally {
    if (unixFd >= 0) fs.closeSync(unixFd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
