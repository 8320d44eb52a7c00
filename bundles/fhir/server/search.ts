// The search layer: type and system searches with paging links, _sort, _include/_revinclude
// (also :iterate), chained parameters, _summary=count and _elements, over the repository's
// resources. Medplum 4.5.2's MemoryRepository.search ignores _include/_revinclude, chains,
// _type, number and quantity parameters, and treats an unknown parameter as "matches nothing";
// this replaces it for the HTTP search interactions (search.html).
//
// Unknown or unsupported parameters are ignored (R4's default, lenient handling), left out of
// the self link and reported in an OperationOutcome entry (search.mode = outcome);
// `Prefer: handling=strict` makes them a 400.
import { getResourceTypes } from '@medplum/core';
import type { FhirRepository } from '@medplum/fhir-router';
import type { Bundle, BundleEntry, BundleLink, OperationOutcome, Resource, SearchParameter } from '@medplum/fhirtypes';
import { checkClause, matchesClause, referencesOf, SearchError, sortKey, supportedSearchParams, type Clause } from './match.js';

export { SearchError } from './match.js';

export const DEFAULT_COUNT = 20;
export const MAX_COUNT = 1000;
const MAX_CHAIN_DEPTH = 3;
const MAX_INCLUDE_ROUNDS = 4;

export type SearchInput = {
  /** The type searched, or undefined for a system search (then _type, or every type). */
  resourceType?: string;
  /** The query, in order, repeated keys kept. */
  params: [string, string][];
  strict: boolean;
  /** Absolute base URL, e.g. http://127.0.0.1:8080 (no trailing slash). */
  base: string;
  /** What the caller may see (auth/enforce.ts): others are neither matched, counted nor included. */
  allow?: (resource: Resource, mode: 'match' | 'include') => boolean;
};

type IncludeSpec = { source: string; code: string; target?: string; iterate: boolean };
type Sort = { code: string; descending: boolean };

type Plan = {
  types: string[];
  filters: { key: string; value: string }[];
  sort: Sort[];
  include: IncludeSpec[];
  revinclude: IncludeSpec[];
  count: number;
  offset: number;
  summaryCount: boolean;
  elements?: string[];
  /** The query as understood, for the self link (without _count/_offset). */
  used: [string, string][];
  ignored: string[];
};

let resourceTypes: Set<string> | undefined;

/** The resource types of the loaded definitions (read after loadDefinitions, once). */
export function allResourceTypes(): Set<string> {
  resourceTypes ??= new Set(getResourceTypes());
  return resourceTypes;
}

export function isResourceType(type: string): boolean {
  return allResourceTypes().has(type);
}

/** Loads each type's resources once per request. */
class Scope {
  private readonly byType = new Map<string, Resource[]>();
  constructor(readonly repo: FhirRepository) {}

  async all(type: string): Promise<Resource[]> {
    let list = this.byType.get(type);
    if (!list) {
      const bundle = await this.repo.search({ resourceType: type as Resource['resourceType'] });
      list = (bundle.entry ?? []).map((e) => e.resource as Resource);
      this.byType.set(type, list);
    }
    return list;
  }

  async read(ref: string): Promise<Resource | undefined> {
    const [type, id] = ref.split('/');
    if (!type || !id || !isResourceType(type)) return undefined;
    return (await this.all(type)).find((r) => r.id === id);
  }
}

export async function search(repo: FhirRepository, input: SearchInput): Promise<Bundle> {
  const plan = makePlan(input);
  const scope = new Scope(repo);

  const matches: Resource[] = [];
  for (const type of plan.types) {
    const clauses: Clause[] = [];
    for (const { key, value } of plan.filters) clauses.push(await resolveClause(scope, type, key, value, 0));
    for (const resource of await scope.all(type)) {
      if (clauses.every((c) => matchesClause(resource, c)) && (!input.allow || input.allow(resource, 'match'))) matches.push(resource);
    }
  }
  if (plan.sort.length) sortResources(matches, plan.sort);

  const total = matches.length;
  const page = plan.summaryCount ? [] : matches.slice(plan.offset, plan.offset + plan.count);
  const included = await includes(scope, plan, page, input.allow);

  const entry: BundleEntry[] = [
    ...page.map((resource) => ({
      fullUrl: fullUrl(input.base, resource),
      resource: subset(resource, plan.elements),
      search: { mode: 'match' as const },
    })),
    ...included.map((resource) => ({ fullUrl: fullUrl(input.base, resource), resource, search: { mode: 'include' as const } })),
  ];
  if (plan.ignored.length) {
    const outcome: OperationOutcome = {
      resourceType: 'OperationOutcome',
      issue: plan.ignored.map((diagnostics) => ({ severity: 'warning', code: 'not-supported', diagnostics })),
    };
    entry.push({ resource: outcome, search: { mode: 'outcome' } });
  }
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    meta: { lastUpdated: new Date().toISOString() },
    total,
    link: links(input, plan, total),
    ...(entry.length ? { entry } : undefined),
  };
}

// ---- the query

const RESULT_PARAMS = new Set(['_count', '_offset', '_sort', '_include', '_revinclude', '_summary', '_elements', '_total', '_type']);
/** Accepted and without effect on the result (JSON is the only format; _pretty is cosmetic). */
const SILENT_PARAMS = new Set(['_format', '_pretty']);

function makePlan(input: SearchInput): Plan {
  const plan: Plan = {
    types: [],
    filters: [],
    sort: [],
    include: [],
    revinclude: [],
    count: DEFAULT_COUNT,
    offset: 0,
    summaryCount: false,
    used: [],
    ignored: [],
  };
  const unsupported = (message: string): void => {
    if (input.strict) throw new SearchError(400, `${message} (Prefer: handling=strict)`, 'not-supported');
    plan.ignored.push(`${message}: ignored`);
  };

  const typeParam = input.params.filter(([k]) => k === '_type').flatMap(([, v]) => v.split(',').filter(Boolean));
  if (input.resourceType) {
    plan.types = [input.resourceType];
    if (typeParam.length) unsupported('_type applies only to a search of all types');
  } else if (typeParam.length) {
    for (const t of typeParam) if (!isResourceType(t)) throw new SearchError(400, `_type: ${t} is not a resource type`);
    plan.types = [...new Set(typeParam)];
    plan.used.push(['_type', plan.types.join(',')]);
  } else {
    plan.types = [...allResourceTypes()];
  }
  // A search of all types searches the types that have the parameters given; with _type, each must.
  const implicit = !input.resourceType && !typeParam.length;
  const forTypes = (test: (type: string) => boolean): boolean => (implicit ? plan.types.some(test) : plan.types.every(test));

  for (const [key, value] of input.params) {
    if (key === '_type' || SILENT_PARAMS.has(key) || key === '') continue;
    const [code, modifier = ''] = splitKey(key);
    if (value === '' && code !== '_summary') continue; // an empty parameter says nothing
    if (RESULT_PARAMS.has(code)) {
      resultParam(plan, code, modifier, key, value, unsupported, forTypes);
      continue;
    }
    const known = forTypes((type) => knownFilter(type, key, 0));
    if (!known) {
      unsupported(
        plan.types.length === 1
          ? `Unknown or unsupported search parameter ${key} for ${plan.types[0]}`
          : `Search parameter ${key} is not supported for every type searched`,
      );
      continue;
    }
    plan.filters.push({ key, value });
    plan.used.push([key, value]);
  }
  if (implicit) {
    const params = (t: string) => supportedSearchParams(t);
    plan.types = plan.types.filter(
      (t) => plan.filters.every((f) => knownFilter(t, f.key, 0)) && plan.sort.every((o) => params(t).has(o.code)),
    );
  }
  return plan;
}

function splitKey(key: string): [string, string?] {
  const colon = key.indexOf(':');
  return colon < 0 ? [key] : [key.slice(0, colon), key.slice(colon + 1)];
}

function resultParam(
  plan: Plan,
  code: string,
  modifier: string,
  key: string,
  value: string,
  unsupported: (m: string) => void,
  forTypes: (test: (type: string) => boolean) => boolean,
): void {
  const integer = (): number => {
    if (!/^\d+$/.test(value)) throw new SearchError(400, `${key}=${value} is not a non-negative integer`);
    return Number(value);
  };
  switch (code) {
    case '_count':
      plan.count = Math.min(integer(), MAX_COUNT);
      return;
    case '_offset':
      plan.offset = integer();
      return;
    case '_total':
      if (!['none', 'estimate', 'accurate'].includes(value))
        throw new SearchError(400, `_total=${value} is not none, estimate or accurate`);
      plan.used.push([key, value]); // the total is always exact here
      return;
    case '_summary':
      if (value === 'count') {
        plan.summaryCount = true;
        plan.used.push([key, value]);
      } else if (value !== 'false') unsupported(`_summary=${value} is not supported (only count)`);
      return;
    case '_elements':
      plan.elements = value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      plan.used.push([key, value]);
      return;
    case '_sort': {
      for (const field of value.split(',').filter(Boolean)) {
        const descending = field.startsWith('-');
        const sortCode = descending ? field.slice(1) : field;
        if (forTypes((t) => supportedSearchParams(t).has(sortCode))) plan.sort.push({ code: sortCode, descending });
        else unsupported(`Cannot sort by ${sortCode}`);
      }
      if (plan.sort.length) plan.used.push(['_sort', plan.sort.map((s) => (s.descending ? '-' : '') + s.code).join(',')]);
      return;
    }
    case '_include':
    case '_revinclude': {
      if (modifier && modifier !== 'iterate' && modifier !== 'recurse') {
        unsupported(`${key} is not supported`);
        return;
      }
      const spec = includeSpec(value, modifier !== '', code === '_revinclude');
      if (typeof spec === 'string') {
        unsupported(spec);
        return;
      }
      (code === '_include' ? plan.include : plan.revinclude).push(spec);
      plan.used.push([modifier ? `${code}:iterate` : code, value]);
      return;
    }
  }
}

function includeSpec(value: string, iterate: boolean, rev: boolean): IncludeSpec | string {
  const name = `${rev ? '_revinclude' : '_include'}=${value}`;
  if (value === '*' && !rev) return { source: '*', code: '*', iterate }; // every reference of every match
  const [source, code, target, ...rest] = value.split(':');
  if (rest.length || !source || !code) return `${name} is not Type:parameter[:TargetType]`;
  if (!isResourceType(source)) return `${name}: ${source} is not a resource type`;
  if (target && !isResourceType(target)) return `${name}: ${target} is not a resource type`;
  if (code !== '*') {
    const sp = supportedSearchParams(source).get(code);
    if (!sp || sp.type !== 'reference') return `${name}: ${code} is not a reference parameter of ${source}`;
  }
  return { source, code, target: target || undefined, iterate };
}

/** Splits a filter key into its first step (code, modifier) and the chained rest, if any. */
function parseKey(key: string): { code: string; modifier: string; rest?: string } {
  const dot = key.indexOf('.');
  const head = dot < 0 ? key : key.slice(0, dot);
  const colon = head.indexOf(':');
  return {
    code: colon < 0 ? head : head.slice(0, colon),
    modifier: colon < 0 ? '' : head.slice(colon + 1),
    rest: dot < 0 ? undefined : key.slice(dot + 1),
  };
}

/** Whether key (code[:modifier] or a chain code[:Type].rest) names a supported parameter of type. */
function knownFilter(type: string, key: string, depth: number): boolean {
  const { code, modifier, rest } = parseKey(key);
  const sp = supportedSearchParams(type).get(code);
  if (!sp) return false;
  if (rest === undefined) return true; // a bad modifier is a 400 later, not an unknown parameter
  if (sp.type !== 'reference' || depth >= MAX_CHAIN_DEPTH) return false;
  return chainTypes(sp, modifier).some((t) => knownFilter(t, rest, depth + 1));
}

/** The target types of a chain step: the :Type modifier's, or the parameter's targets. */
function chainTypes(sp: SearchParameter, modifier: string): string[] {
  const targets = (sp.target ?? []).filter(isResourceType);
  return modifier ? targets.filter((t) => t === modifier) : targets;
}

/** Resolves one filter for a type; a chain is searched first and becomes the set of references it found. */
async function resolveClause(scope: Scope, type: string, key: string, value: string, depth: number): Promise<Clause> {
  const { code, modifier, rest } = parseKey(key);
  const sp = supportedSearchParams(type).get(code)!;
  if (rest === undefined) {
    const clause: Clause = { sp, modifier, value };
    checkClause(clause, key);
    return clause;
  }
  const chainTargets = new Set<string>();
  for (const target of chainTypes(sp, modifier)) {
    if (!knownFilter(target, rest, depth + 1)) continue;
    const inner = await resolveClause(scope, target, rest, value, depth + 1);
    for (const r of await scope.all(target)) if (matchesClause(r, inner)) chainTargets.add(`${target}/${r.id}`);
  }
  return { sp, modifier: '', value, chainTargets };
}

// ---- sorting, _include/_revinclude, _elements

function sortResources(resources: Resource[], sort: Sort[]): void {
  const keys = new Map(resources.map((r) => [r, sort.map((s) => sortKey(r, supportedSearchParams(r.resourceType).get(s.code)!))]));
  resources.sort((a, b) => {
    const ka = keys.get(a)!;
    const kb = keys.get(b)!;
    for (let i = 0; i < sort.length; i++) {
      const x = ka[i];
      const y = kb[i];
      if (x === y) continue;
      if (x === undefined) return 1; // resources without a value last, either direction
      if (y === undefined) return -1;
      const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
      if (c !== 0) return sort[i].descending ? -c : c;
    }
    return 0;
  });
}

async function includes(scope: Scope, plan: Plan, page: Resource[], allow: SearchInput['allow']): Promise<Resource[]> {
  if (!plan.include.length && !plan.revinclude.length) return [];
  const key = (r: Resource): string => `${r.resourceType}/${r.id}`;
  const seen = new Set(page.map(key));
  const found: Resource[] = [];
  let frontier = page;
  for (let round = 0; round < MAX_INCLUDE_ROUNDS && frontier.length; round++) {
    const next: Resource[] = [];
    const add = (r: Resource | undefined): void => {
      if (r && !seen.has(key(r)) && (!allow || allow(r, 'include'))) {
        seen.add(key(r));
        next.push(r);
      }
    };
    for (const spec of plan.include) {
      if (round > 0 && !spec.iterate) continue;
      for (const r of frontier) {
        if (spec.source !== '*' && r.resourceType !== spec.source) continue;
        for (const sp of referenceParams(spec, r.resourceType)) {
          for (const ref of referencesOf(r, sp)) {
            if (spec.target && !ref.startsWith(`${spec.target}/`)) continue;
            add(await scope.read(ref));
          }
        }
      }
    }
    for (const spec of plan.revinclude) {
      if (round > 0 && !spec.iterate) continue;
      const targets = new Set(frontier.filter((r) => !spec.target || r.resourceType === spec.target).map(key));
      if (!targets.size) continue;
      for (const candidate of await scope.all(spec.source)) {
        if (referenceParams(spec, spec.source).some((sp) => referencesOf(candidate, sp).some((ref) => targets.has(ref)))) add(candidate);
      }
    }
    found.push(...next);
    frontier = next;
  }
  return found;
}

function referenceParams(spec: IncludeSpec, type: string): SearchParameter[] {
  const params = supportedSearchParams(type);
  if (spec.code !== '*') return [params.get(spec.code)!];
  return [...params.values()].filter((sp) => sp.type === 'reference');
}

const MANDATORY = new Set(['resourceType', 'id', 'meta']);

/** _elements: only the listed top-level elements (and id, meta), tagged SUBSETTED (search.html#elements). */
function subset(resource: Resource, elements: string[] | undefined): Resource {
  if (!elements) return resource;
  const keep = new Set(elements.map((e) => e.split('.').pop()!));
  const out = Object.fromEntries(Object.entries(resource).filter(([k]) => MANDATORY.has(k) || keep.has(k))) as Resource;
  const tag = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED' };
  out.meta = { ...out.meta, tag: [...(out.meta?.tag ?? []), tag] };
  return out;
}

// ---- links (http.html#paging, search.html#count)

function fullUrl(base: string, r: Resource): string {
  return `${base}/${r.resourceType}/${r.id}`;
}

function links(input: SearchInput, plan: Plan, total: number): BundleLink[] {
  const path = `${input.base}/${input.resourceType ?? ''}`;
  // Query characters that need no escaping stay readable: Observation?subject:Patient.name=...&code=http://loinc.org|8867-4
  const enc = (s: string): string =>
    encodeURIComponent(s).replace(/%3A/g, ':').replace(/%7C/g, '|').replace(/%2C/g, ',').replace(/%2F/g, '/');
  const url = (offset: number): string => {
    const q: [string, string][] = [...plan.used, ['_count', String(plan.count)]];
    if (offset > 0) q.push(['_offset', String(offset)]);
    return `${path}?${q.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&')}`;
  };
  const result: BundleLink[] = [{ relation: 'self', url: url(plan.offset) }];
  if (plan.summaryCount || plan.count === 0) return result;
  result.push({ relation: 'first', url: url(0) });
  if (plan.offset > 0) result.push({ relation: 'previous', url: url(Math.max(0, plan.offset - plan.count)) });
  if (plan.offset + plan.count < total) result.push({ relation: 'next', url: url(plan.offset + plan.count) });
  result.push({ relation: 'last', url: url(total > 0 ? Math.floor((total - 1) / plan.count) * plan.count : 0) });
  return result;
}
