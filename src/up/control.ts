// The control socket of a running `hako up`: ROOT/.ID.up.sock, where `hako rollout ID` asks it
// to roll out. One JSON line in, one JSON line out, one request per connection. Owner-only:
// the socket is 0600 (connect needs write permission on it) in the state root, which the
// store already requires to be the caller's own and not writable by others. The addon has no
// SO_PEERCRED, so the file mode is the guard: anyone who passes it could signal up anyway.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { HakoError } from '../errors.js';
import type { RolloutRequest, RolloutResult } from './rollout.js';

export interface Control {
  path: string;
  close(): void;
}

/** Longest a request line may be: a bundle path and a timeout. */
const MAX_REQUEST = 8192;

export function controlPath(root: string, id: string): string {
  return path.join(root, `.${id}.up.sock`);
}

/** Whether something listens at a unix socket path (a live up), or it is a leftover. */
function listening(p: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection(p);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Parses a request line; a sentence (thrown) for anything else. */
export function parseRequest(line: string): RolloutRequest {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new HakoError('the request is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HakoError('the request is not a JSON object');
  const { bundle, timeoutMs } = v as Record<string, unknown>;
  if (bundle !== undefined && (typeof bundle !== 'string' || !path.isAbsolute(bundle)))
    throw new HakoError('bundle: must be an absolute path');
  if (timeoutMs !== undefined && (typeof timeoutMs !== 'number' || !Number.isSafeInteger(timeoutMs) || timeoutMs < 1))
    throw new HakoError('timeoutMs: must be a positive integer');
  return { bundle, timeoutMs };
}

export async function openControl(
  root: string,
  id: string,
  handle: (req: RolloutRequest) => Promise<RolloutResult>,
  say: (s: string) => void,
): Promise<Control> {
  fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  const p = controlPath(root, id);
  if (fs.existsSync(p)) {
    if (await listening(p))
      throw new HakoError(`another hako up of ${id} runs (its control socket ${p} answers): stop it or pick another --id`);
    fs.rmSync(p, { force: true });
  }
  const server = net.createServer((conn) => {
    conn.on('error', () => {});
    let text = '';
    conn.setEncoding('utf8').on('data', (chunk: string) => {
      text += chunk;
      const nl = text.indexOf('\n');
      if (nl < 0 && text.length <= MAX_REQUEST) return;
      conn.removeAllListeners('data');
      const answer = (r: RolloutResult) => conn.end(`${JSON.stringify(r)}\n`);
      let req: RolloutRequest;
      try {
        if (nl < 0) throw new HakoError(`the request is longer than ${MAX_REQUEST} bytes`);
        req = parseRequest(text.slice(0, nl));
      } catch (e) {
        return answer({ ok: false, error: (e as Error).message });
      }
      say(`rollout asked through ${p}${req.bundle ? ` (bundle ${req.bundle})` : ''}`);
      void handle(req).then(answer, (e: Error) => answer({ ok: false, error: e.message }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new HakoError(`cannot open the control socket ${p}: ${e.message}`)));
    // Created owner-only: no moment at which another user could connect.
    const umask = process.umask(0o177);
    try {
      server.listen(p, () => resolve());
    } finally {
      process.umask(umask);
    }
  });
  server.unref();
  return {
    path: p,
    close() {
      server.close();
      fs.rmSync(p, { force: true });
    },
  };
}
