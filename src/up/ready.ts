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

/** Longest answer read: a FHIR CapabilityStatement is well below it. */
const MAX_BODY = 8 << 20;

export interface HttpAnswer {
  status: number;
  body: string;
}

/** One GET to the server on the listening socket (readiness, `hako rollout`'s version); undefined
 *  when nothing answered within timeoutMs or the answer was cut or too long. */
export function httpGet(addr: ListenAddress, urlPath: string, timeoutMs: number, accept?: string): Promise<HttpAnswer | undefined> {
  return new Promise((resolve) => {
    const req = http.get(
      {
        host: probeHost(addr.host),
        port: addr.port,
        path: urlPath,
        timeout: timeoutMs,
        agent: false,
        family: net.isIPv6(addr.host) ? 6 : undefined,
        headers: accept ? { accept } : undefined,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => {
          body += d;
          if (body.length > MAX_BODY) req.destroy();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', () => resolve(undefined));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

/** Resolves true once the server answers, false if `running()` turns false first. */
export async function waitServing(addr: ListenAddress, running: () => boolean, intervalMs = 50): Promise<boolean> {
  while (running()) {
    if (await httpGet(addr, '/', 2_000)) return running();
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return false;
}
