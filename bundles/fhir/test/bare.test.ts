// The bundled FHIR server run bare on the host (no container), driven by a real FHIR client
// with an access token (SMART Backend Services: a client registered in the data directory).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleFhirServer } from '../build/server-bundle.js';
import { FULL_SCOPE, getToken, registerClient } from './auth-helper.js';
import {
  createAndFindChart,
  failure,
  fhirClient,
  type FhirClient,
  invalidResourceRefused,
  statusOf,
  transactionRewritesReferences,
  type Resource,
} from './scenario.js';

type Running = { child: ChildProcess; baseUrl: string; stderr: () => string; token: string; client: FhirClient };

let work: string;
let serverJs: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'hako-fhir-e2e-'));
  await bundleFhirServer({ bundleDir: join(import.meta.dirname, '..'), outDir: join(work, 'app') });
  serverJs = join(work, 'app', 'server.js');
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

function run(env: Record<string, string>): { child: ChildProcess; stderr: () => string } {
  const child = spawn(process.execPath, [serverJs], {
    env: { PATH: process.env.PATH ?? '', UV_USE_IO_URING: '0', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let text = '';
  child.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { child, stderr: () => text };
}

/** Registers client "test" (a fresh key; the server reads the registry when it opens), starts the
 *  server and gets the client's token. */
async function start(dataDir: string): Promise<Running> {
  const test = await registerClient(dataDir, 'test', FULL_SCOPE);
  const { child, stderr } = run({ HAKO_FHIR_DATA: dataDir, HAKO_FHIR_LISTEN: '127.0.0.1:0' });
  const deadline = Date.now() + 30_000;
  for (;;) {
    const port = /serving FHIR R4 on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr())?.[1];
    if (port) {
      const baseUrl = `http://127.0.0.1:${port}`;
      const token = await getToken(baseUrl, test, FULL_SCOPE);
      return { child, baseUrl, stderr, token, client: fhirClient(baseUrl, token) };
    }
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the server did not start: ${stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
  return child.exitCode;
}

async function withServer<T>(dataDir: string, body: (client: FhirClient, server: Running) => Promise<T>): Promise<T> {
  const server = await start(dataDir);
  try {
    return await body(server.client, server);
  } finally {
    server.child.kill('SIGTERM');
    await exitOf(server.child);
  }
}

describe('FHIR server, bare on the host', () => {
  it('creates, reads, searches, updates, patches and deletes Patient, Observation and Encounter', async () => {
    const data = await mkdtemp(join(work, 'data-'));
    await withServer(data, async (client) => {
      const { patient, observation } = await createAndFindChart(client);
      const read = await client.read({ resourceType: 'Patient', id: patient.id! });

      const updated = await client.update({
        resourceType: 'Patient',
        id: patient.id!,
        body: { ...read, birthDate: '1980-02-04' },
      });
      expect(updated.meta.versionId).not.toBe(read.meta.versionId);
      const first = await client.vread({ resourceType: 'Patient', id: patient.id!, version: read.meta.versionId });
      expect(first.birthDate).toBe('1980-02-03');
      const patched = await client.patch({
        resourceType: 'Patient',
        id: patient.id!,
        jsonPatch: [{ op: 'add', path: '/gender', value: 'female' }],
      });
      expect(patched.gender).toBe('female');
      const history = await client.history({ resourceType: 'Patient', id: patient.id! });
      expect(history.entry.map((e: { resource: Resource }) => e.resource.birthDate)).toEqual(['1980-02-04', '1980-02-04', '1980-02-03']);

      await client.delete({ resourceType: 'Observation', id: observation.id! });
      const gone = await failure(client.read({ resourceType: 'Observation', id: observation.id! }));
      expect(gone.status).toBe(410); // Gone: it was deleted (FHIR R4 http.html#read)
      expect(gone.data.resourceType).toBe('OperationOutcome');
    });
  });

  it('applies a transaction Bundle and rewrites its urn:uuid references', async () => {
    const data = await mkdtemp(join(work, 'data-'));
    await withServer(data, async (client) => {
      await transactionRewritesReferences(client);
    });
  });

  it('applies nothing of a transaction that has one invalid entry, before and after a restart', async () => {
    const data = await mkdtemp(join(work, 'data-'));
    const transaction = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { resourceType: 'Patient', name: [{ family: 'Atomic' }] }, request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'Patient', birthDate: 'never' }, request: { method: 'POST', url: 'Patient' } },
      ],
    };
    await withServer(data, async (client) => {
      const bad = await failure(client.transaction({ body: transaction }));
      expect(bad.status).toBe(400);
      expect((await client.search({ resourceType: 'Patient', searchParams: { family: 'Atomic' } })).total).toBe(0);
    });
    await withServer(data, async (client) => {
      expect((await client.search({ resourceType: 'Patient', searchParams: { family: 'Atomic' } })).total).toBe(0);
    });
  });

  it('answers an invalid resource with 400 and an OperationOutcome naming the element', async () => {
    const data = await mkdtemp(join(work, 'data-'));
    await withServer(data, async (client) => {
      await invalidResourceRefused(client);
      const none = await client.search({ resourceType: 'Patient', searchParams: {} });
      expect(none.total).toBe(0);
    });
  });

  it('keeps every acknowledged write across SIGKILL in the middle of a write load', async () => {
    const data = await mkdtemp(join(work, 'data-'));
    const server = await start(data);
    const { client } = server;
    const acknowledged: string[] = [];
    const loop = async (worker: number): Promise<void> => {
      for (let n = 0; n < 75; n++) {
        try {
          const created = await client.create({
            resourceType: 'Patient',
            body: { resourceType: 'Patient', name: [{ family: `Load${worker}`, given: [`n${n}`] }] },
          });
          if (statusOf(created) === 201) acknowledged.push(created.id);
        } catch {
          return; // the server is gone
        }
        if (acknowledged.length === 100) server.child.kill('SIGKILL');
      }
    };
    await Promise.all([0, 1, 2, 3].map(loop));
    expect(await exitOf(server.child)).toBe(null); // it died of the signal, not an exit
    expect(acknowledged.length).toBeGreaterThanOrEqual(100);
    expect(acknowledged.length).toBeLessThan(300);

    await withServer(data, async (after) => {
      const all = await after.search({ resourceType: 'Patient', searchParams: { _count: 1000 } });
      const present = new Set(all.entry.map((e: { resource: Resource }) => e.resource.id));
      expect(acknowledged.filter((id) => !present.has(id))).toEqual([]);
    });
  });

  it('stops with exit 0 on SIGTERM and keeps its data, and the AuditEvents of the last requests, for the next start', async () => {
    const data = await mkdtemp(join(work, 'data-'));
    const server = await start(data);
    const { client } = server;
    const patient = await client.create({ resourceType: 'Patient', body: { resourceType: 'Patient', active: true } });
    server.child.kill('SIGTERM');
    expect(await exitOf(server.child)).toBe(0);
    await withServer(data, async (again, restarted) => {
      expect((await again.read({ resourceType: 'Patient', id: patient.id })).active).toBe(true);
      expect(restarted.stderr()).toMatch(/\(\d+ journal records replayed\)/);
      // Written before the journal closed: the create's AuditEvent, naming the client.
      const trail = await again.search({ resourceType: 'AuditEvent', searchParams: { _count: 1000 } });
      const created = trail.entry
        .map((e: { resource: Resource }) => e.resource)
        .find((a: any) => a.subtype?.[0]?.code === 'create' && a.entity?.[0]?.what?.reference === `Patient/${patient.id}`);
      expect(created?.outcome).toBe('0');
      expect(JSON.stringify(created.agent)).toContain('"value":"test"');
    });
  });

  it('answers 401 without a token and 403 for a scope that does not cover the request', async () => {
    const data = await mkdtemp(join(work, 'data-'));
    const reader = await registerClient(data, 'reader', 'system/Patient.rs');
    await withServer(data, async (client, server) => {
      const patient = await client.create({ resourceType: 'Patient', body: { resourceType: 'Patient', active: true } });
      const anonymous = await failure(fhirClient(server.baseUrl).read({ resourceType: 'Patient', id: patient.id }));
      expect(anonymous.status).toBe(401);
      const readOnly = fhirClient(server.baseUrl, await getToken(server.baseUrl, reader, 'system/Patient.rs'));
      expect((await readOnly.read({ resourceType: 'Patient', id: patient.id })).active).toBe(true);
      const refused = await failure(readOnly.create({ resourceType: 'Patient', body: { resourceType: 'Patient' } }));
      expect(refused.status).toBe(403);
      expect(refused.data.resourceType).toBe('OperationOutcome');
    });
  });

  it('says so in one sentence and exits non-zero when the data directory is missing', async () => {
    const { child, stderr } = run({ HAKO_FHIR_DATA: join(work, 'nowhere'), HAKO_FHIR_LISTEN: '127.0.0.1:0' });
    expect(await exitOf(child)).toBe(1);
    expect(stderr()).toBe(
      `hako-fhir: data directory ${join(work, 'nowhere')} does not exist (set HAKO_FHIR_DATA or mount a volume there)\n`,
    );
  });

  it('says so in one sentence and exits non-zero when the port is in use', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as { port: number };
    try {
      const data = await mkdtemp(join(work, 'data-'));
      await registerClient(data, 'test', FULL_SCOPE); // no first-start advice on how to get a token
      const { child, stderr } = run({ HAKO_FHIR_DATA: data, HAKO_FHIR_LISTEN: `127.0.0.1:${port}` });
      expect(await exitOf(child)).toBe(1);
      expect(stderr()).toBe(`hako-fhir: cannot listen on 127.0.0.1:${port}: the address is already in use\n`);
    } finally {
      blocker.close();
    }
  });
});
