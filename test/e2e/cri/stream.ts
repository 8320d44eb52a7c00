// The client end of a CRI streaming exec (the URL `Exec` returns), as `kubectl exec` reaches it
// through the kubelet: a WebSocket (RFC 6455) with the v4.channel.k8s.io subprotocol, where each
// binary message starts with its channel (1 stdout, 2 stderr, 3 the final status as JSON).
// Read-only here (no stdin, no tty): enough to see the command's output and exit code.
import crypto from 'node:crypto';
import http from 'node:http';
import type { Socket } from 'node:net';

export interface StreamResult {
  stdout: string;
  stderr: string;
  /** The v4 status: {status: "Success"} or {status: "Failure", details: {causes: [{reason: "ExitCode", message}]}}. */
  status: { status?: string; reason?: string; details?: { causes?: { reason: string; message: string }[] } };
}

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Splits the unmasked frames a server sends; returns the complete ones and the rest. */
function frames(buf: Buffer): { list: { op: number; payload: Buffer }[]; rest: Buffer } {
  const list: { op: number; payload: Buffer }[] = [];
  let at = 0;
  for (;;) {
    if (buf.length - at < 2) break;
    const op = buf[at] & 0x0f;
    let len = buf[at + 1] & 0x7f;
    let head = 2;
    if (len === 126) {
      if (buf.length - at < 4) break;
      len = buf.readUInt16BE(at + 2);
      head = 4;
    } else if (len === 127) {
      if (buf.length - at < 10) break;
      len = Number(buf.readBigUInt64BE(at + 2));
      head = 10;
    }
    if (buf.length - at < head + len) break;
    list.push({ op, payload: buf.subarray(at + head, at + head + len) });
    at += head + len;
  }
  return { list, rest: buf.subarray(at) };
}

export function execStream(url: string, timeoutMs = 30_000): Promise<StreamResult> {
  return new Promise((resolve, reject) => {
    const key = crypto.randomBytes(16).toString('base64');
    const req = http.request(url, {
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': key,
        'Sec-WebSocket-Protocol': 'v4.channel.k8s.io',
      },
      timeout: timeoutMs,
    });
    req.on('timeout', () => req.destroy(new Error(`exec stream ${url}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.on('response', (res) => reject(new Error(`exec stream ${url}: HTTP ${res.statusCode} instead of a WebSocket upgrade`)));
    req.on('upgrade', (res, socket: Socket, head: Buffer) => {
      const accept = crypto
        .createHash('sha1')
        .update(key + GUID)
        .digest('base64');
      if (res.headers['sec-websocket-accept'] !== accept) return reject(new Error('exec stream: wrong Sec-WebSocket-Accept'));
      if (res.headers['sec-websocket-protocol'] !== 'v4.channel.k8s.io')
        return reject(new Error(`exec stream: subprotocol ${res.headers['sec-websocket-protocol']}`));
      const out: Record<number, Buffer[]> = { 1: [], 2: [], 3: [] };
      let pending = head;
      const timer = setTimeout(() => socket.destroy(new Error(`exec stream: not closed after ${timeoutMs} ms`)), timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        const text = (c: number) => Buffer.concat(out[c]).toString();
        resolve({ stdout: text(1), stderr: text(2), status: text(3) ? JSON.parse(text(3)) : {} });
      };
      const take = (data: Buffer) => {
        const { list, rest } = frames(Buffer.concat([pending, data]));
        pending = rest;
        for (const f of list) {
          if (f.op === 8) {
            socket.end();
            return finish();
          }
          // Binary (2) messages carry a channel byte; an empty one opens the channel.
          if (f.op === 2 && f.payload.length > 1 && out[f.payload[0]]) out[f.payload[0]].push(f.payload.subarray(1));
        }
      };
      socket.on('data', take);
      socket.on('end', finish);
      socket.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      take(Buffer.alloc(0));
    });
    req.end();
  });
}
