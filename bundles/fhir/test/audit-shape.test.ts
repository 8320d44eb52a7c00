// The server writes its own AuditEvents without validating each one (repository.ts
// createServerBuilt: validation cost ten times the read being audited). This is where their
// shape is validated instead: every kind of event the audit module builds — each interaction,
// each outcome, every agent combination, queries, odd and empty inputs — must pass the same
// R4 validation a client's POST gets, and must be found by the search parameters audit tail uses.
import { validateResource } from '@medplum/core';
import type { AuditEvent } from '@medplum/fhirtypes';
import { beforeAll, describe, expect, it } from 'vitest';
import { definitionsSourceDir } from '../build/server-bundle.js';
import { loginEvent, restEvent, type Principal } from '../server/auth/audit.js';
import { loadDefinitions } from '../server/definitions.js';

beforeAll(() => loadDefinitions(definitionsSourceDir()));

const who: (Principal | undefined)[] = [
  undefined,
  { kind: 'client', client: 'backend' },
  { kind: 'user', client: 'app', user: 'alice' },
  { kind: 'supervisor', client: 'hako-up' },
  { kind: 'admin', client: 'hako-fhir-admin' },
];
const interactions = [
  'read',
  'vread',
  'history-instance',
  'history-type',
  'history-system',
  'search-type',
  'search-system',
  'create',
  'update',
  'patch',
  'delete',
  'batch',
  'transaction',
  'operation',
  'something-new',
];

function events(): AuditEvent[] {
  const out: AuditEvent[] = [];
  for (const principal of who)
    for (const interaction of interactions)
      for (const status of [200, 201, 401, 403, 404, 429, 500])
        out.push(
          restEvent({
            interaction,
            status,
            who: principal,
            address: '127.0.0.1',
            server: '10.0.0.2:8080',
            resourceType: 'Patient',
            id: status < 300 ? 'a1b2' : undefined,
            query: interaction.startsWith('search') ? 'name=Ünïcode&_count=5' : undefined,
            description: status === 403 ? 'the scope system/Observation.rs does not cover Patient' : undefined,
          }),
        );
  // Odd inputs: no type, an empty description and address, a long query.
  out.push(restEvent({ interaction: 'search-system', status: 200, address: '', server: '', description: '', query: 'x'.repeat(10_000) }));
  for (const success of [true, false])
    for (const [client, user] of [
      [undefined, undefined],
      ['app', undefined],
      ['app', 'bob'],
      [undefined, 'bob'],
    ] as const)
      out.push(
        loginEvent({
          success,
          what: 'token (client_credentials)',
          client,
          user,
          address: '::1',
          server: '',
          description: 'invalid_client: unknown',
        }),
      );
  return out;
}

describe('server-built AuditEvents', () => {
  it('pass R4 validation in every shape the audit module makes', () => {
    const all = events();
    expect(all.length).toBeGreaterThan(500);
    for (const event of all) {
      const stored = { ...event, id: 'x', meta: { versionId: 'v', lastUpdated: new Date().toISOString() } };
      expect(() => validateResource(stored), JSON.stringify(event).slice(0, 300)).not.toThrow();
    }
  });

  it('would be caught if a shape went wrong (control)', () => {
    const good = restEvent({ interaction: 'read', status: 200, address: '1', server: '2' });
    const { recorded: _recorded, ...noTime } = good;
    expect(() => validateResource({ ...noTime, id: 'x' } as AuditEvent)).toThrow(/recorded/);
    expect(() => validateResource({ ...good, id: 'x', outcomeDesc: 42 } as unknown as AuditEvent)).toThrow(/outcomeDesc/);
  });
});
