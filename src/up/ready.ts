// "Serving" means an HTTP answer on the listening socket. A bare TCP connect proves
// nothing here: the host holds the socket listening, so the kernel completes connections
// before the container accepts any.
import http from 'node:http';
import net from 'node:net';
import type { ListenAddress } from './listen.js';

/** Where to reach a server listening on a wildcard address from this host. */
export function probeHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}

function answers(addr: ListenAddress, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(
      {
        host: probeHost(addr.host),
        port: addr.port,
        path: '/',
        timeout: timeoutMs,
        agent: false,
        family: net.isIPv6(addr.host) ? 6 : undefined,
      },
      (res) => {
        res.resume();
        resolve(true);
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/** Resolves true once the server answers, false if `running()` turns false first. */
export async function waitServing(addr: ListenAddress, running: () => boolean, intervalMs = 50): Promise<boolean> {
  while (running()) {
    if (await answers(addr, 2_000)) return running();
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return false;
}
