// The audit trail: an AuditEvent for every FHIR interaction and every login or token request,
// shaped after IHE BALP (Basic Audit Log Patterns): RESTful interactions as type `rest` with the
// interaction as subtype, logins as DICOM 110114 User Authentication / 110122 Login; the client
// (and the user) as the requesting agent with its network address, this server as the other
// agent, the resource and the query as entities.
//
// Events are written into the journal like any resource, batched: one transaction record (one
// fsync) per batch, so auditing a read costs a share of a write, not a write; and unvalidated,
// as the server builds them (their shape is checked once, by test/audit-shape.test.ts). The batch writer
// runs its own loop (started outside any request, so no request's transaction can capture it).
import type { AuditEvent, AuditEventAgent, AuditEventEntity, Coding } from '@medplum/fhirtypes';

/** Where events go: the repository's path for resources the server built itself. */
export type AuditStore = { createServerBuilt(resources: AuditEvent[]): Promise<void> };

export type Principal = {
  kind: 'client' | 'user' | 'supervisor' | 'admin';
  /** client_id (for a user: the app the user signed in with). */
  client: string;
  user?: string;
};

const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
const REST: Coding = { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest', display: 'Restful Operation' };
const USER_AUTH: Coding = { system: DCM, code: '110114', display: 'User Authentication' };
const LOGIN: Coding = { system: DCM, code: '110122', display: 'Login' };
const SOURCE_ROLE = { coding: [{ system: DCM, code: '110153', display: 'Source Role ID' }] };
const DEST_ROLE = { coding: [{ system: DCM, code: '110152', display: 'Destination Role ID' }] };
export const CLIENT_SYSTEM = 'https://hako.run/fhir/client';
export const USER_SYSTEM = 'https://hako.run/fhir/user';
const ACTION: Record<string, AuditEvent['action']> = {
  read: 'R',
  vread: 'R',
  'history-instance': 'R',
  'history-type': 'R',
  'history-system': 'R',
  'search-type': 'E',
  'search-system': 'E',
  create: 'C',
  update: 'U',
  patch: 'U',
  delete: 'D',
  batch: 'E',
  transaction: 'E',
  operation: 'E',
};

export type RestAudit = {
  interaction: string;
  status: number;
  who?: Principal;
  address: string;
  server: string;
  resourceType?: string;
  id?: string;
  query?: string;
  /** Why it was refused, or what happened. */
  description?: string;
};

export type LoginAudit = {
  success: boolean;
  /** What was attempted: "token (client_credentials)", "login", "token (authorization_code)", ... */
  what: string;
  client?: string;
  user?: string;
  address: string;
  server: string;
  description: string;
};

function outcome(status: number): AuditEvent['outcome'] {
  if (status < 400) return '0';
  return status < 500 ? '4' : '8';
}

function agents(who: Principal | { client?: string; user?: string } | undefined, address: string, server: string): AuditEventAgent[] {
  const requestor: AuditEventAgent[] = [];
  const network = { address, type: '2' as const };
  if (who?.user) {
    requestor.push({
      type: SOURCE_ROLE,
      who: { identifier: { system: USER_SYSTEM, value: who.user }, display: `user ${who.user}` },
      requestor: true,
      network,
    });
  }
  if (who?.client) {
    requestor.push({
      type: SOURCE_ROLE,
      who: { identifier: { system: CLIENT_SYSTEM, value: who.client }, display: `client ${who.client}` },
      requestor: !who.user,
      network,
    });
  }
  if (!requestor.length) requestor.push({ type: SOURCE_ROLE, who: { display: 'anonymous' }, requestor: true, network });
  return [...requestor, { type: DEST_ROLE, who: { display: 'hako-fhir' }, requestor: false, network: { address: server, type: '2' } }];
}

const SOURCE = {
  observer: { display: 'hako-fhir' },
  type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4', display: 'Application Server' }],
};

export function restEvent(a: RestAudit): AuditEvent {
  const entity: AuditEventEntity[] = [];
  const objectType = { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '2', display: 'System Object' };
  if (a.resourceType && a.id) entity.push({ what: { reference: `${a.resourceType}/${a.id}` }, type: objectType });
  else if (a.resourceType) entity.push({ what: { display: a.resourceType }, type: objectType });
  if (a.query) entity.push({ type: objectType, query: Buffer.from(a.query).toString('base64'), description: 'query' });
  return {
    resourceType: 'AuditEvent',
    type: REST,
    subtype: [{ system: 'http://hl7.org/fhir/restful-interaction', code: a.interaction }],
    action: ACTION[a.interaction] ?? 'E',
    recorded: new Date().toISOString(),
    outcome: outcome(a.status),
    outcomeDesc: a.description ?? `HTTP ${a.status}`,
    agent: agents(a.who, a.address, a.server),
    source: SOURCE,
    ...(entity.length ? { entity } : undefined),
  };
}

export function loginEvent(a: LoginAudit): AuditEvent {
  return {
    resourceType: 'AuditEvent',
    type: USER_AUTH,
    subtype: [LOGIN],
    action: 'E',
    recorded: new Date().toISOString(),
    outcome: a.success ? '0' : '4',
    outcomeDesc: `${a.what}: ${a.description}`,
    agent: agents({ client: a.client, user: a.user }, a.address, a.server),
    source: SOURCE,
  };
}

const MAX_QUEUE = 50_000;
const MAX_BATCH = 1_000;
/** How long events gather before a batch is written. */
const GATHER_MS = 10;

/** Writes queued events in batches, one journal transaction each. */
export class AuditWriter {
  private queue: AuditEvent[] = [];
  private wake: (() => void) | undefined;
  private closed = false;
  private dropped = 0;
  private readonly loop: Promise<void>;
  private flushed: (() => void)[] = [];

  constructor(
    private readonly repo: AuditStore,
    private readonly log: (sentence: string) => void,
  ) {
    this.loop = this.run();
  }

  record(event: AuditEvent): void {
    if (this.closed) return;
    if (this.queue.length >= MAX_QUEUE) {
      if (this.dropped++ === 0) this.log(`the audit queue is full (${MAX_QUEUE} events): dropping events until it drains`);
      return;
    }
    this.queue.push(event);
    this.wake?.();
  }

  /** Resolves once every event recorded so far is in the journal (tests, `audit tail`). */
  settled(): Promise<void> {
    if (!this.queue.length && !this.busy) return Promise.resolve();
    return new Promise((resolve) => this.flushed.push(resolve));
  }

  private busy = false;

  private async run(): Promise<void> {
    for (;;) {
      if (!this.queue.length) {
        for (const resolve of this.flushed.splice(0)) resolve();
        if (this.closed) return;
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
        continue;
      }
      this.busy = true;
      if (!this.closed) await new Promise((resolve) => setTimeout(resolve, GATHER_MS));
      const batch = this.queue.splice(0, MAX_BATCH);
      if (this.dropped) {
        this.log(`${this.dropped} audit events were dropped while the queue was full`);
        this.dropped = 0;
      }
      await this.write(batch);
      this.busy = false;
    }
  }

  private async write(batch: AuditEvent[]): Promise<void> {
    try {
      await this.repo.createServerBuilt(batch);
    } catch {
      // One bad event must not lose the others: write them one by one.
      for (const event of batch) {
        await this.repo.createServerBuilt([event]).catch((err: Error) => this.log(`an AuditEvent could not be written: ${err.message}`));
      }
    }
  }

  /** Writes what is queued and stops (before the journal closes). */
  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    await this.loop;
  }
}
