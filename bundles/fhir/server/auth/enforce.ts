// Scope enforcement on every interaction: which interaction a request is, what its scopes must
// allow before it runs (type and letter; for patient/ scopes, the resource written or the one
// there now must be in the patient's compartment), and what of its result the client may see
// afterwards (a read of a resource outside the compartment is refused; search matches,
// _include/_revinclude results and history entries it may not see are left out).
//
//   read, vread, history        r          create        c (+ s for If-None-Exist)
//   search (type, system)       s; included resources need r or s on their own type
//   update, patch               u          delete        d
//   conditional update/patch/delete: u/d and s, with a system/ or user/ scope (no patient/)
//   batch, transaction          each entry by these rules; a transaction with a refused entry
//                               is refused whole, a batch answers 403 for that entry only
//   $operations                 $graphql reads any type: it needs r and s on * and AuditEvent
//   AuditEvent                  never updated, patched or deleted, whatever the scopes
import { deepClone } from '@medplum/core';
import type { FhirRepository } from '@medplum/fhir-router';
import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';
import { applyPatch, type Operation } from 'rfc6902';
import { allows, AUDIT_TYPE, mayAccess, mayAccessAll, type Grant, type Letter } from './scopes.js';

export type Interaction = {
  interaction: string;
  type?: string;
  id?: string;
  conditional: boolean;
};

/** What a request is, from its method and path segments (HEAD already turned into GET). */
export function classify(method: string, segments: string[], body?: unknown, conditionalCreate = false): Interaction {
  const [a, b, c, d] = segments;
  const n = segments.length;
  const at = (interaction: string, type?: string, id?: string, conditional = false): Interaction => ({
    interaction,
    type,
    id,
    conditional,
  });
  if (segments.some((s) => s.startsWith('$'))) return at('operation', a?.startsWith('$') ? undefined : a);
  if (method === 'GET') {
    if (n === 0 || (n === 1 && a === '_search')) return at('search-system');
    if (n === 1 && a === '_history') return at('history-system');
    if (n === 1) return at('search-type', a);
    if (n === 2 && b === '_history') return at('history-type', a);
    if (n === 2) return at('read', a, b);
    if (n === 3 && c === '_history') return at('history-instance', a, b);
    if (n === 4 && c === '_history') return at('vread', a, b);
  }
  if (method === 'POST') {
    if (n === 0) return at((body as Bundle | undefined)?.type === 'transaction' ? 'transaction' : 'batch');
    if (n === 1 && a === '_search') return at('search-system');
    if (n === 2 && b === '_search') return at('search-type', a);
    if (n === 1) return at('create', a, undefined, conditionalCreate);
  }
  const write: Record<string, string> = { PUT: 'update', PATCH: 'patch', DELETE: 'delete' };
  if (write[method] && n === 2) return at(write[method], a, b);
  if (write[method] && n === 1) return at(write[method], a, undefined, true);
  return at('unknown', a, b ?? d);
}

const LETTER: Record<string, Letter> = {
  read: 'r',
  vread: 'r',
  'history-instance': 'r',
  'history-type': 'r',
  'history-system': 'r',
  'search-type': 's',
  'search-system': 's',
  create: 'c',
  update: 'u',
  patch: 'u',
  delete: 'd',
};

/** Why the grant does not allow this interaction (undefined: it may run). */
export async function refusal(grant: Grant, i: Interaction, repo: FhirRepository, body?: unknown): Promise<string | undefined> {
  const scope = `(scopes: ${grant.scope})`;
  if (i.interaction === 'operation') {
    const all = (['r', 's'] as const).every((l) => grant.rules.some((r) => r.type === '*' && r.context !== 'patient' && r.letters.has(l)));
    if (all && mayAccessAll(grant, AUDIT_TYPE, 'r') && mayAccessAll(grant, AUDIT_TYPE, 's')) return undefined;
    return `operations read any type: they need r and s on every type (*) and on AuditEvent ${scope}`;
  }
  if (i.interaction === 'batch' || i.interaction === 'transaction') return undefined; // checked entry by entry
  if (i.interaction === 'search-system' || i.interaction === 'history-system') {
    const letter = LETTER[i.interaction];
    return grant.rules.some((r) => r.letters.has(letter)) ? undefined : `no scope allows ${letter} on any type ${scope}`;
  }
  const letter = LETTER[i.interaction];
  const type = i.type;
  if (!letter || !type) return `this request is not a FHIR interaction the server authorizes`;
  if (type === AUDIT_TYPE && (letter === 'u' || letter === 'd')) return 'AuditEvents cannot be updated, patched or deleted through the API';
  if (!mayAccess(grant, type, letter)) return `no scope allows ${letter} on ${type} ${scope}`;
  if (i.conditional) {
    const needs: Letter[] = letter === 'c' ? ['s'] : [letter, 's'];
    for (const l of needs)
      if (!mayAccessAll(grant, type, l))
        return `a conditional ${i.interaction} needs ${needs.join(' and ')} on ${type} without patient context ${scope}`;
  }
  // patient/ scopes: the resource sent, and the one there now, must be in the compartment.
  if (letter === 'c' || letter === 'u') {
    const resource = body as Resource | undefined;
    if (i.interaction !== 'patch' && resource?.resourceType === type && !allows(grant, resource, letter))
      return `the ${type} sent is not in the compartment of ${grant.patient ?? 'a patient in context'} ${scope}`;
  }
  if ((letter === 'u' || letter === 'd') && i.id && !i.conditional) {
    const existing = await repo.readResource(type, i.id).catch(() => undefined);
    if (existing && !allows(grant, existing, letter)) return `${type}/${i.id} is not in the compartment of ${grant.patient} ${scope}`;
    // A patch must not move a resource out of the compartment either: judge what it would make.
    if (existing && i.interaction === 'patch' && Array.isArray(body)) {
      const patched = deepClone(existing);
      const failed = applyPatch(patched, body as Operation[]).some(Boolean);
      if (!failed && !allows(grant, patched, letter))
        return `the patch would move ${type}/${i.id} out of the compartment of ${grant.patient} ${scope}`;
    }
  }
  return undefined;
}

/** What of a result the grant lets through: a resource or undefined; bundles filtered entry by entry. */
export function visible<T extends Resource>(grant: Grant, resource: T): T | undefined {
  if (resource.resourceType === 'Bundle') {
    const bundle = resource as Bundle;
    if (bundle.type !== 'searchset' && bundle.type !== 'history') return resource;
    const entry = (bundle.entry ?? []).filter((e) => entryVisible(grant, e));
    const removed = (bundle.entry?.length ?? 0) - entry.length;
    return {
      ...bundle,
      ...(bundle.total !== undefined ? { total: bundle.total - removed } : undefined),
      entry: entry.length ? entry : undefined,
    } as T;
  }
  if (resource.resourceType === 'OperationOutcome') return resource;
  return allows(grant, resource, 'r') || allows(grant, resource, 's') ? resource : undefined;
}

function entryVisible(grant: Grant, e: BundleEntry): boolean {
  if (e.resource) return e.resource.resourceType === 'OperationOutcome' || allows(grant, e.resource, 'r') || allows(grant, e.resource, 's');
  // A deleted version in a history: judged by its type.
  const type = e.request?.url?.split(/[/?]/)[0];
  return !!type && mayAccess(grant, type, 'r');
}

/** The search layer's filter: matches need s, included resources r or s. */
export function searchFilter(grant: Grant): (resource: Resource, mode: 'match' | 'include') => boolean {
  return (resource, mode) => allows(grant, resource, 's') || (mode === 'include' && allows(grant, resource, 'r'));
}
