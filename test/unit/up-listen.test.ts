// The host-side listening socket of `hako up`: parsed addresses, a plain fd nobody else
// accepts on, and a clear sentence when the port is taken.
import fs from 'node:fs';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { openListener, parseListen, formatAddress } from '../../src/up/listen.js';

describe('--listen', () => {
  it('parses HOST:PORT and [IPv6]:PORT, and names the flag otherwise', () => {
    expect(parseListen('127.0.0.1:8080')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(parseListen('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseListen('localhost:80')).toEqual({ host: 'localhost', port: 80 });
    expect(formatAddress({ host: '::1', port: 9 })).toBe('[::1]:9');
    for (const bad of ['8080', '127.0.0.1', '127.0.0.1:70000', '::1:80', 'a:b'])
      expect(() => parseListen(bad)).toThrow(`--listen: "${bad}" is not HOST:PORT`);
  });

  it('gives a listening fd that this process does not accept on: a later server gets the queued connection', async () => {
    const { fd, port } = await openListener({ host: '127.0.0.1', port: 0 });
    let adopted = false;
    try {
      expect(fs.readlinkSync(`/proc/self/fd/${fd}`)).toMatch(/^socket:/);
      const client = net.connect(port, '127.0.0.1');
      await new Promise((resolve) => client.once('connect', resolve));
      // Give the event loop time to accept it, were anything in this process watching the socket.
      await new Promise((r) => setTimeout(r, 100));
      const server = net.createServer();
      const accepted = new Promise<void>((resolve) => server.once('connection', (s) => (s.destroy(), resolve())));
      server.listen({ fd });
      adopted = true;
      await accepted;
      client.destroy();
      await new Promise((r) => server.close(r));
    } finally {
      if (!adopted) fs.closeSync(fd);
    }
  });

  it('says in one sentence that the port is in use', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as net.AddressInfo;
    try {
      await expect(openListener({ host: '127.0.0.1', port })).rejects.toThrow(
        `cannot listen on 127.0.0.1:${port}: the address is already in use (is another server running there?)`,
      );
    } finally {
      blocker.close();
    }
  });
});
