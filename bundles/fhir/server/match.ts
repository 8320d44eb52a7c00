// Search-parameter matching for the search layer (search.ts): which search parameters this server
// supports, the values a resource has for one, and whether they match one query clause — per
// FHIR R4 search.html: string (starts-with, :exact, :contains), token (:not, :text), reference
// (Type/id, bare id, absolute URL, :Type, :identifier), date, number and quantity (prefixes,
// implicit precision), uri (:below, :above), and :missing on all of them.
import {
  convertToSearchableDates,
  convertToSearchableNumbers,
  convertToSearchableQuantities,
  convertToSearchableReferences,
  convertToSearchableTokens,
  getParsedExpressionForResourceType,
  globalSchema,
  splitSearchOnComma,
  toPeriod,
  toTypedValue,
  typedValueToString,
  type TypedValue,
} from '@medplum/core';
import type { Address, HumanName, Period, Resource, SearchParameter } from '@medplum/fhirtypes';

/** Search-parameter types this server evaluates; composite and special are not supported. */
const SUPPORTED_TYPES = new Set(['string', 'token', 'reference', 'date', 'number', 'quantity', 'uri']);
/** Not offered: Medplum's own _compartment (not R4; meta.compartment is never set here), and
 *  phonetic, which would only be a plain string match here, not a sounds-like one. */
const NOT_OFFERED = new Set(['_compartment', 'phonetic']);

export const MODIFIERS: Record<string, readonly string[]> = {
  string: ['missing', 'exact', 'contains'],
  token: ['missing', 'not', 'text'],
  reference: ['missing', 'identifier'], // plus :[Type]
  date: ['missing'],
  number: ['missing'],
  quantity: ['missing'],
  uri: ['missing', 'below', 'above'],
};

const PREFIXES = new Set(['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap']);
const TEXT = '\u0000text'; // the pseudo-system Medplum gives a CodeableConcept's text and a Coding's display

export class SearchError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: 'invalid' | 'not-supported' | 'not-found' = 'invalid',
  ) {
    super(message);
  }
}

const supportedCache = new Map<string, Map<string, SearchParameter>>();

/** The search parameters of a resource type that this server supports, by code. */
export function supportedSearchParams(resourceType: string): Map<string, SearchParameter> {
  let result = supportedCache.get(resourceType);
  if (!result) {
    result = new Map();
    for (const sp of Object.values(globalSchema.types[resourceType]?.searchParams ?? {})) {
      if (!sp.code || NOT_OFFERED.has(sp.code) || !SUPPORTED_TYPES.has(sp.type) || !sp.expression) continue;
      if (!expressionFor(resourceType, sp)) continue;
      result.set(sp.code, sp);
    }
    supportedCache.set(resourceType, result);
  }
  return result;
}

type Atom = ReturnType<typeof getParsedExpressionForResourceType>;
const expressionCache = new Map<string, Atom | null>();

function expressionFor(resourceType: string, sp: SearchParameter): Atom | undefined {
  const key = `${resourceType}.${sp.code}`;
  let atom = expressionCache.get(key);
  if (atom === undefined) {
    try {
      atom = getParsedExpressionForResourceType(resourceType, sp.expression as string);
    } catch {
      atom = null; // an expression Medplum's FHIRPath cannot parse: the parameter is not offered
    }
    expressionCache.set(key, atom);
  }
  return atom ?? undefined;
}

/** The typed values of a search parameter in a resource (none when the expression fails). */
export function valuesOf(resource: Resource, sp: SearchParameter): TypedValue[] {
  const atom = expressionFor(resource.resourceType, sp);
  if (!atom) return [];
  try {
    return atom.eval({ variables: {} }, [toTypedValue(resource)]);
  } catch {
    return [];
  }
}

/** Reference values as "Type/id" where they are one (absolute and versioned references shortened). */
export function normalizeReference(ref: string): string {
  const m = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(ref);
  return m ? `${m[1]}/${m[2]}` : ref;
}

export function referencesOf(resource: Resource, sp: SearchParameter): string[] {
  return convertToSearchableReferences(valuesOf(resource, sp)).map(normalizeReference);
}

/** One query clause on one (resolved, non-chained) search parameter. */
export type Clause = {
  sp: SearchParameter;
  modifier: string; // '' or a modifier; for references a resource type
  value: string;
  /** Chained search: the references a chain resolved to ("Type/id"). */
  chainTargets?: Set<string>;
};

/** Validates a clause's modifier and value up front, so a bad query is a 400 and not a silent miss. */
export function checkClause(clause: Clause, key: string): void {
  const { sp, modifier, value } = clause;
  if (modifier && !(MODIFIERS[sp.type] ?? []).includes(modifier)) {
    const isType = sp.type === 'reference' && /^[A-Z][A-Za-z]+$/.test(modifier);
    if (!isType)
      throw new SearchError(400, `The modifier :${modifier} of ${key} is not supported (parameter type ${sp.type})`, 'not-supported');
  }
  if (modifier === 'missing') {
    if (value !== 'true' && value !== 'false') throw new SearchError(400, `${key} must be true or false`);
    return;
  }
  for (const v of splitSearchOnComma(value)) {
    if (sp.type === 'date' && !toPeriod(splitPrefix(v).value)) throw new SearchError(400, `${key}=${v} is not a FHIR date`);
    if ((sp.type === 'number' || sp.type === 'quantity') && !Number.isFinite(parseNumber(splitPrefix(v.split('|')[0]).value))) {
      throw new SearchError(400, `${key}=${v} is not a number`);
    }
  }
}

export function matchesClause(resource: Resource, clause: Clause): boolean {
  const values = valuesOf(resource, clause.sp);
  if (clause.modifier === 'missing') return (values.length === 0) === (clause.value === 'true');
  const alternatives = splitSearchOnComma(clause.value);
  switch (clause.sp.type) {
    case 'string':
      return alternatives.some((v) => matchesString(values, clause.modifier, v));
    case 'token': {
      const tokens = convertToSearchableTokens(values, { textSearchSystem: TEXT });
      const any = alternatives.some((v) => matchesToken(tokens, clause.modifier, v));
      return clause.modifier === 'not' ? !any : any;
    }
    case 'reference':
      return matchesReference(values, clause, alternatives);
    case 'date': {
      const periods = convertToSearchableDates(values);
      return alternatives.some((v) => matchesDate(periods, v));
    }
    case 'number': {
      const ranges = convertToSearchableNumbers(values);
      return alternatives.some((v) => {
        const { prefix, value } = splitPrefix(v);
        return ranges.some(([lo, hi]) => compareNumber(lo, hi, prefix, value));
      });
    }
    case 'quantity': {
      const quantities = convertToSearchableQuantities(values);
      return alternatives.some((v) => matchesQuantity(quantities, v));
    }
    case 'uri': {
      const uris = values.map((t) => t.value).filter((u): u is string => typeof u === 'string');
      return alternatives.some((v) =>
        uris.some((u) => (clause.modifier === 'below' ? u.startsWith(v) : clause.modifier === 'above' ? v.startsWith(u) : u === v)),
      );
    }
    default:
      return false;
  }
}

// ---- string: case- and accent-insensitive starts-with on any part of a name or address

export function normalizeText(s: string): string {
  return s.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
}

function stringParts(tv: TypedValue): string[] {
  const v = tv.value;
  if (v === undefined || v === null) return [];
  if (typeof v !== 'object') return [String(v)];
  const parts: string[] = [];
  if (tv.type === 'HumanName') {
    const n = v as HumanName;
    parts.push(...[n.text, n.family].filter((s): s is string => !!s), ...(n.given ?? []), ...(n.prefix ?? []), ...(n.suffix ?? []));
  } else if (tv.type === 'Address') {
    const a = v as Address;
    parts.push(...[a.text, a.city, a.district, a.state, a.postalCode, a.country].filter((s): s is string => !!s), ...(a.line ?? []));
  }
  const whole = typedValueToString(tv);
  if (whole) parts.push(whole);
  return parts;
}

function matchesString(values: TypedValue[], modifier: string, query: string): boolean {
  const parts = values.flatMap(stringParts);
  if (modifier === 'exact') return parts.includes(query);
  const q = normalizeText(query);
  if (modifier === 'contains') return parts.some((p) => normalizeText(p).includes(q));
  return parts.some((p) => normalizeText(p).startsWith(q));
}

// ---- token: [system]|[code], [code], |[code], [system]|

type Token = { system: string | undefined; value: string | undefined };

function matchesToken(tokens: Token[], modifier: string, query: string): boolean {
  if (modifier === 'text') {
    const q = normalizeText(query);
    return tokens.some((t) => t.system === TEXT && !!t.value && normalizeText(t.value).startsWith(q));
  }
  const coded = tokens.filter((t) => t.system !== TEXT);
  const bar = query.indexOf('|');
  if (bar < 0) return coded.some((t) => eqi(t.value, query));
  const system = query.slice(0, bar);
  const code = query.slice(bar + 1);
  if (!system && !code) return false;
  if (!system) return coded.some((t) => !t.system && eqi(t.value, code));
  return coded.some((t) => t.system === system && (!code || eqi(t.value, code)));
}

function eqi(a: string | undefined, b: string): boolean {
  return a !== undefined && a.toLowerCase() === b.toLowerCase();
}

// ---- reference

function matchesReference(values: TypedValue[], clause: Clause, alternatives: string[]): boolean {
  const { sp, modifier } = clause;
  if (modifier === 'identifier') {
    const identifiers = values
      .map((tv) => (tv.value as { identifier?: unknown } | undefined)?.identifier)
      .filter(Boolean)
      .map((identifier) => ({ type: 'Identifier', value: identifier }) as TypedValue);
    const tokens = convertToSearchableTokens(identifiers, { textSearchSystem: TEXT });
    return alternatives.some((v) => matchesToken(tokens, '', v));
  }
  const refs = convertToSearchableReferences(values);
  const normalized = refs.map(normalizeReference);
  if (clause.chainTargets) return normalized.some((r) => clause.chainTargets!.has(r));
  const targets = modifier ? [modifier] : (sp.target ?? []);
  return alternatives.some((query) => {
    if (refs.includes(query)) return true; // canonical URLs and other literal references
    if (query.includes('/')) return normalized.includes(normalizeReference(query));
    // A bare id: any reference to a resource of that id, of the modifier's or the parameter's target types.
    return normalized.some((r) => {
      const [type, id] = r.split('/');
      return id === query && targets.includes(type);
    });
  });
}

// ---- date (as Medplum's matcher: periods overlap, prefixes compare ends)

function matchesDate(periods: Period[], query: string): boolean {
  const { prefix, value } = splitPrefix(query);
  const filter = toPeriod(value);
  if (!filter) return false;
  const fs = filter.start as string;
  const fe = filter.end as string;
  const matches = periods.some((p) => {
    const rs = p.start ?? '0000';
    const re = p.end ?? '9999';
    switch (prefix) {
      case 'eq':
      case 'ap':
      case 'ne':
        return rs < fe && re > fs;
      case 'lt':
        return rs < fs;
      case 'gt':
        return re > fe;
      case 'le':
        return rs <= fe;
      case 'ge':
        return re >= fs;
      case 'sa':
        return rs > fe;
      case 'eb':
        return re < fs;
      default:
        return false;
    }
  });
  return prefix === 'ne' ? !matches : matches;
}

// ---- number and quantity: prefixes, and eq within the query's implicit precision (R4 search.html#number)

export function splitPrefix(query: string): { prefix: string; value: string } {
  const p = query.slice(0, 2);
  if (PREFIXES.has(p) && /^[-+.\d]/.test(query.slice(2))) return { prefix: p, value: query.slice(2) };
  return { prefix: 'eq', value: query };
}

function parseNumber(s: string): number {
  return /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s) ? Number(s) : NaN;
}

function halfPrecision(s: string): number {
  const mantissa = s.split(/[eE]/)[0];
  const exponent = Number(s.split(/[eE]/)[1] ?? 0);
  const decimals = mantissa.includes('.') ? mantissa.split('.')[1].length : 0;
  return 0.5 * 10 ** (exponent - decimals);
}

function compareNumber(lo: number | undefined, hi: number | undefined, prefix: string, text: string): boolean {
  const q = parseNumber(text);
  const h = halfPrecision(text);
  const low = lo ?? -Infinity;
  const high = hi ?? Infinity;
  switch (prefix) {
    case 'eq':
      return low >= q - h && high < q + h;
    case 'ne':
      return !(low >= q - h && high < q + h);
    case 'ap':
      return high >= q - Math.abs(q) * 0.1 && low <= q + Math.abs(q) * 0.1;
    case 'gt':
    case 'sa':
      return high > q;
    case 'lt':
    case 'eb':
      return low < q;
    case 'ge':
      return high >= q;
    case 'le':
      return low <= q;
    default:
      return false;
  }
}

function matchesQuantity(quantities: { value?: number; system?: string; code?: string; unit?: string }[], query: string): boolean {
  const [numberPart, system = '', code = ''] = query.split('|');
  const { prefix, value } = splitPrefix(numberPart);
  return quantities.some((q) => {
    if (q.value === undefined || !compareNumber(q.value, q.value, prefix, value)) return false;
    if (system) return q.system === system && (!code || q.code === code);
    if (code) return q.code === code || q.unit === code;
    return true;
  });
}

/** A value that sorts a resource by a search parameter: its first value, comparable as text or number. */
export function sortKey(resource: Resource, sp: SearchParameter): string | number | undefined {
  const values = valuesOf(resource, sp);
  if (values.length === 0) return undefined;
  switch (sp.type) {
    case 'date':
      return convertToSearchableDates(values)[0]?.start;
    case 'number':
      return convertToSearchableNumbers(values)[0]?.[0];
    case 'quantity':
      return convertToSearchableQuantities(values)[0]?.value;
    case 'token':
      return convertToSearchableTokens(values, { textSearchSystem: TEXT }).find((t) => t.system !== TEXT)?.value;
    case 'reference':
      return convertToSearchableReferences(values)[0];
    default: {
      const parts = values.flatMap(stringParts);
      return parts.length ? normalizeText(parts[parts.length - 1]) : undefined;
    }
  }
}
