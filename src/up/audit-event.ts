// A refused system call as a FHIR R4 AuditEvent, shaped after IHE BALP's security alert
// (DICOM 110113 "Security Alert"), written into the served FHIR server's own store so the
// health system hears of it in its own language: GET /AuditEvent?type=110113.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { Config } from '../oci/config.js';
import type { Refusal } from '../profile/agent-worker.js';
import { errnoName } from '../sys/errno.js';
import type { ListenAddress } from './listen.js';
import { probeHost } from './ready.js';

export const SYSCALL_SUBTYPES = 'https://hako.run/fhir/CodeSystem/syscall';
export const SECURITY_ALERT = { system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110113', display: 'Security Alert' };

export interface Alert {
  /** The subtype: a syscall name, or 'other' (a shim denial: its call, in SHIM_SUBTYPES). */
  code: string;
  /** The subtype's code system when not SYSCALL_SUBTYPES. */
  system?: string;
  display: string;
  recorded: string;
  period?: { start: string; end: string };
  outcomeDesc: string;
  who: string;
  detail: Array<{ type: string; valueString: string }>;
}

/** The shape every hako security alert shares; what differs comes in `a`. */
export function securityAlert(a: Alert, container: string): Record<string, unknown> {
  return {
    resourceType: 'AuditEvent',
    type: SECURITY_ALERT,
    subtype: [{ system: a.system ?? SYSCALL_SUBTYPES, code: a.code, display: a.display }],
    action: 'E',
    ...(a.period ? { period: a.period } : undefined),
    recorded: a.recorded,
    // 4: minor failure — the attempt failed; the server keeps serving.
    outcome: '4',
    outcomeDesc: a.outcomeDesc,
    agent: [
      {
        type: {
          coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'AUT', display: 'author (originator)' }],
        },
        who: { display: a.who },
        requestor: true,
      },
    ],
    source: {
      site: os.hostname(),
      observer: { display: `hako supervisor of container ${container}` },
      type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4', display: 'Application Server' }],
    },
    entity: [
      {
        what: { display: `container ${container}` },
        type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '2', display: 'System Object' },
        detail: a.detail,
      },
    ],
  };
}

export function auditEventFor(r: Refusal, container: string): Record<string, unknown> {
  const call = `${r.syscall}(${r.args.join(', ')})`;
  const proc = `pid ${r.pid} (${r.command || 'unknown'}${r.exec ? ', started by hako exec' : ''})`;
  return securityAlert(
    {
      code: r.syscall,
      display: `system call ${r.syscall} refused`,
      recorded: r.time,
      outcomeDesc: `hako refused ${call} from ${proc} in container ${container} during ${r.phase} with ${errnoName(r.errno)}`,
      who: `${proc} in container ${container}`,
      detail: [
        { type: 'syscall', valueString: r.syscall },
        { type: 'arguments', valueString: r.args.join(' ') },
        { type: 'phase', valueString: r.phase },
        { type: 'errno', valueString: errnoName(r.errno) },
        { type: 'pid', valueString: String(r.pid) },
      ],
    },
    container,
  );
}

/** The refusals a flood left unwritten one by one (audit-budget.ts): one event per call. */
export function overflowEventFor(call: string, count: number, from: Date, to: Date, container: string): Record<string, unknown> {
  const calls = call === '*' ? 'other system calls' : call;
  const [start, end] = [from.toISOString(), to.toISOString()];
  return securityAlert(
    {
      code: call === '*' ? 'other' : call,
      display: `system call ${calls} refused`,
      recorded: end,
      period: { start, end },
      outcomeDesc: `hako refused ${calls} ${count} more times in container ${container} between ${start} and ${end} (too many in one second to write one by one)`,
      who: `processes in container ${container}`,
      detail: [
        { type: 'syscall', valueString: calls },
        { type: 'count', valueString: String(count) },
      ],
    },
    container,
  );
}

const SUPERVISOR_SECRET = /^hako-supervisor\.[A-Za-z0-9_-]{16,200}$/;

/**
 * The Authorization header for the served FHIR server's own credential for hako up,
 * DATA/auth/supervisor.secret in the volume mounted at /data (the server makes it on its first
 * start, so it is read at each POST); undefined while there is none. The volume is the
 * container's: no link is followed, nothing but a small regular file is read, and only a
 * secret's shape is sent.
 */
export function supervisorAuthorization(cfg: Config, bundle: string): string | undefined {
  const data = cfg.mounts?.find((m) => m.destination === '/data' && m.source);
  if (!data) return undefined;
  const file = path.join(path.resolve(bundle, data.source!), 'auth', 'supervisor.secret');
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.size > 256) return undefined;
    const buf = Buffer.alloc(256);
    const secret = buf
      .subarray(0, fs.readSync(fd, buf, 0, 256, 0))
      .toString('utf8')
      .trim();
    return SUPERVISOR_SECRET.test(secret) ? `Bearer ${secret}` : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** POSTs the event to BASE/AuditEvent, with the Authorization header when given; resolves with the status (0: not reached). */
export function postAuditEvent(address: ListenAddress, event: Record<string, unknown>, authorization?: string): Promise<number> {
  const body = JSON.stringify(event);
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: probeHost(address.host),
        port: address.port,
        path: '/AuditEvent',
        method: 'POST',
        agent: false,
        timeout: 5_000,
        headers: {
          'content-type': 'application/fhir+json',
          'content-length': Buffer.byteLength(body),
          ...(authorization ? { authorization } : undefined),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
    req.end(body);
  });
}
