// The r4-*.test.ts files' server: the bundled FHIR server run bare on the host (as bare.test.ts
// does), one per test file on a fresh data directory and a free port, plus a raw HTTP helper
// for what a FHIR client does not send (a Host header of its choice, HEAD, OPTIONS, odd types).
// With authorization (the default) the file's client and raw() carry an access token of a client
// registered with every scope; { auth: false } serves with HAKO_FHIR_AUTH=off.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { bundleFhirServer } from '../build/server-bundle.js';
import { FULL_SCOPE, getToken, registerClient } from './auth-helper.js';
import { fhirClient, type FhirClient } from './scenario.js';

export type Bare = { baseUrl: string; client: FhirClient; child: ChildProcess; stderr: () => string; token?: string };

/** The access token raw() sends to a base URL (unless the request has an Authorization header). */
const tokens = new Map<string, string>();

export function useToken(baseUrl: string, token: string): void {
  tokens.set(new URL(baseUrl).origin, token);
}

/** A scratch directory under HAKO_TEST_WORK (or the system's tmp), removed by the caller. */
export function workDir(prefix: string): string {
  const parent = process.env.HAKO_TEST_WORK ?? tmpdir();
  mkdirSync(parent, { recursive: true });
  return mkdtempSync(join(parent, prefix));
}

/** Bundles the server once for the file and serves it bare for the file's tests. */
export function useBareServer(o: { auth?: boolean } = {}): { get: () => Bare } {
  const auth = o.auth ?? true;
  let work: string;
  let server: Bare | undefined;
  beforeAll(async () => {
    work = workDir('r4-bare-');
    await bundleFhirServer({ bundleDir: join(import.meta.dirname, '..'), outDir: join(work, 'app') });
    mkdirSync(join(work, 'data'));
    const test = auth ? await registerClient(join(work, 'data'), 'test', FULL_SCOPE) : undefined;
    server = await startBare(join(work, 'app', 'server.js'), join(work, 'data'), auth);
    if (test) {
      const token = await getToken(server.baseUrl, test, FULL_SCOPE);
      useToken(server.baseUrl, token);
      server = { ...server, token, client: fhirClient(server.baseUrl, token) };
    }
  });
  afterAll(async () => {
    if (server && server.child.exitCode === null && server.child.signalCode === null) {
      server.child.kill('SIGTERM');
      await once(server.child, 'exit');
    }
    if (work) rmSync(work, { recursive: true, force: true });
  });
  return {
    get: () => {
      if (!server) throw new Error('the server did not start');
      return server;
    },
  };
}

async function startBare(serverJs: string, dataDir: string, auth: boolean): Promise<Bare> {
  const child = spawn(process.execPath, [serverJs], {
    env: {
      PATH: process.env.PATH ?? '',
      UV_USE_IO_URING: '0',
      HAKO_FHIR_DATA: dataDir,
      HAKO_FHIR_LISTEN: '127.0.0.1:0',
      HAKO_FHIR_AUTH: auth ? 'on' : 'off',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let text = '';
  child.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    const port = /serving FHIR R4 on http:\/\/127\.0\.0\.1:(\d+)/.exec(text)?.[1];
    if (port) {
      const baseUrl = `http://127.0.0.1:${port}`;
      return { baseUrl, client: fhirClient(baseUrl), child, stderr: () => text };
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the server did not start: ${text}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

export type Raw = { status: number; headers: Record<string, string | string[] | undefined>; text: string; json: any };

/** One HTTP request with exactly these headers (node:http lets a test choose Host). */
export function raw(
  baseUrl: string,
  method: string,
  path: string,
  o: { headers?: Record<string, string>; body?: string } = {},
): Promise<Raw> {
  const url = new URL(path, baseUrl);
  const token = tokens.get(url.origin);
  const headers = { ...(token ? { authorization: `Bearer ${token}` } : undefined), ...o.headers };
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

/** The ids of a searchset's entries of one search mode (match by default). */
export function idsOf(
  bundle: { entry?: Array<{ resource: { resourceType: string; id?: string }; search?: { mode?: string } }> },
  mode = 'match',
): string[] {
  return (bundle.entry ?? []).filter((e) => (e.search?.mode ?? 'match') === mode).map((e) => `${e.resource.resourceType}/${e.resource.id}`);
}

export function link(bundle: { link?: Array<{ relation: string; url: string }> }, relation: string): string | undefined {
  return bundle.link?.find((l) => l.relation === relation)?.url;
}
