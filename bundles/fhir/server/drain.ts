// Stopping an HTTP server without failing a keep-alive client. http.Server.close() drops idle
// keep-alive connections at once, but "idle" is the server's view: a client may have sent its
// next request on one that very moment, and it gets a reset ("other side closed"). So during a
// drain the server stops accepting (the listening socket stays with hako up, and new
// connections wait in its backlog for the next server), answers every request it still gets with
// "Connection: close" — the client then opens a new connection instead of reusing this one —
// and closes a connection that stays idle through IDLE_GRACE_MS only then. The residual race
// is a client that stays idle that long and sends exactly as it is closed (docs/rollout.md).
import { Server as NetServer } from 'node:net';
import type { Server, ServerResponse } from 'node:http';

/** How long an idle keep-alive connection may still bring a request after the stop. */
const IDLE_GRACE_MS = 250;

export type Drain = (done: () => void, drainMs: number) => void;

/** Call once after createServer; returns the stop: drain, then done() once every connection is gone. */
export function drainable(server: Server): Drain {
  const inFlight = new Set<ServerResponse>();
  let draining = false;
  server.on('request', (_req, res: ServerResponse) => {
    if (draining) res.shouldKeepAlive = false;
    inFlight.add(res);
    res.on('close', () => inFlight.delete(res));
  });
  return (done, drainMs) => {
    draining = true;
    for (const res of inFlight) if (!res.headersSent) res.shouldKeepAlive = false;
    if (!server.listening) return done();
    // net's close, not http's: stop accepting, keep the connections (see above).
    NetServer.prototype.close.call(server, () => done());
    setTimeout(() => server.closeIdleConnections(), IDLE_GRACE_MS).unref();
    // In-flight requests get drainMs to finish; then their connections are cut.
    setTimeout(() => server.closeAllConnections(), drainMs).unref();
  };
}
