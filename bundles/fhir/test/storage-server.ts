// The bundled server run bare for the storage tests (lock, stop, history, snapshots, crashes):
// bundled once per file, started on a data directory, stopped or killed. Without authorization
// (HAKO_FHIR_AUTH=off) unless the env says otherwise: these tests count journal records and
// bytes, and the audit trail would write its own.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { bundleFhirServer } from '../build/server-bundle.js';

export type Server = { child: ChildProcess; baseUrl: string; stderr: () => string; exited: Promise<number | null> };

/** A scratch directory for this file (HAKO_TEST_WORK or the temp dir), removed after it. */
export function storageWork(): { dir: () => string; serverJs: () => string; dataDir: () => string } {
  let work = '';
  beforeAll(async () => {
    work = mkdtempSync(join(process.env.HAKO_TEST_WORK ?? tmpdir(), 'storage-'));
    await bundleFhirServer({ bundleDir: join(import.meta.dirname, '..'), outDir: join(work, 'app') });
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  return { dir: () => work, serverJs: () => join(work, 'app', 'server.js'), dataDir: () => mkdtempSync(join(work, 'data-')) };
}

export function spawnServer(serverJs: string, data: string, env: Record<string, string> = {}): Server {
  const child = spawn(process.execPath, [serverJs], {
    env: {
      PATH: process.env.PATH ?? '',
      UV_USE_IO_URING: '0',
      HAKO_FHIR_DATA: data,
      HAKO_FHIR_LISTEN: '127.0.0.1:0',
      HAKO_FHIR_AUTH: 'off',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let text = '';
  child.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, baseUrl: '', stderr: () => text, exited };
}

/** Waits for "serving FHIR R4 on URL"; throws with stderr when the server ends first. */
export async function serving(s: Server, ms = 60_000): Promise<Server> {
  const deadline = Date.now() + ms;
  for (;;) {
    const port = /serving FHIR R4 on http:\/\/127\.0\.0\.1:(\d+)/.exec(s.stderr())?.[1];
    if (port) return { ...s, baseUrl: `http://127.0.0.1:${port}` };
    if (s.child.exitCode !== null || s.child.signalCode !== null || Date.now() > deadline)
      throw new Error(`the server did not start: ${s.stderr()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function start(serverJs: string, data: string, env: Record<string, string> = {}): Promise<Server> {
  return serving(spawnServer(serverJs, data, env));
}

export async function stop(s: Server): Promise<number | null> {
  if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGTERM');
  return s.exited;
}

export async function kill(s: Server): Promise<void> {
  if (s.child.exitCode === null && s.child.signalCode === null) {
    s.child.kill('SIGKILL');
    await once(s.child, 'exit');
  }
}

/** A FHIR request with fetch: status, headers and the body as text (byte-for-byte checks) and JSON. */
export async function fhir(
  base: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; text: string; json: any; headers: Headers }> {
  const res = await fetch(`${base}/${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/fhir+json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    // a request caught by a stop must end, not hang the test
    signal: AbortSignal.timeout(20_000),
  });
  const text = await res.text();
  return { status: res.status, text, json: text ? JSON.parse(text) : undefined, headers: res.headers };
}
