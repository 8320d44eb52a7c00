// The CapabilityStatement served at /metadata, derived from what is actually indexed and routed:
// every search parameter listed is one the search layer (search.ts, match.ts) evaluates — no
// composite or special parameters, no Medplum-only ones.
import { getResourceTypes } from '@medplum/core';
import type { FhirRouter } from '@medplum/fhir-router';
import type {
  CapabilityStatement,
  CapabilityStatementRestInteraction,
  CapabilityStatementRestResource,
  CapabilityStatementRestResourceSearchParam,
  SearchParameter,
} from '@medplum/fhirtypes';
import { supportedSearchParams } from './match.js';

const TYPE_INTERACTIONS = ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'create', 'search-type'] as const;
/** Parameters every type has: offered for a search of all types (GET [base]?_type=...). */
const COMMON = ['_id', '_lastUpdated', '_profile', '_security', '_source', '_tag'];

function searchParam(sp: SearchParameter): CapabilityStatementRestResourceSearchParam {
  return { name: sp.code as string, definition: sp.url, type: sp.type as CapabilityStatementRestResourceSearchParam['type'] };
}

/** With the router, interactions added to it (history-type, history-system) are listed too. */
export function capabilityStatement(software: { name: string; version: string }, router?: FhirRouter): CapabilityStatement {
  const routed = new Set(router?.router.routes.map((r) => r.data?.interaction));
  const typeInteractions = [...TYPE_INTERACTIONS, ...(routed.has('history-type') ? (['history-type'] as const) : [])];
  const systemInteractions: CapabilityStatementRestInteraction['code'][] = ['transaction', 'batch', 'search-system'];
  if (routed.has('history-system')) systemInteractions.push('history-system');
  const resource: CapabilityStatementRestResource[] = getResourceTypes()
    .sort()
    .map((type) => {
      const params = [...supportedSearchParams(type).values()];
      const references = params.filter((sp) => sp.type === 'reference').map((sp) => `${type}:${sp.code}`);
      return {
        type,
        interaction: typeInteractions.map((code) => ({ code })),
        versioning: 'versioned',
        readHistory: true,
        updateCreate: true,
        conditionalCreate: true,
        conditionalUpdate: true,
        conditionalDelete: 'single',
        searchInclude: references.length ? ['*', ...references] : [],
        searchParam: params.map(searchParam),
      };
    });
  // Reverse includes: Type:param of every type whose reference parameter may point here.
  const revincludes = new Map<string, string[]>();
  for (const r of resource) {
    for (const sp of supportedSearchParams(r.type).values()) {
      if (sp.type !== 'reference') continue;
      for (const target of sp.target ?? []) revincludes.set(target, [...(revincludes.get(target) ?? []), `${r.type}:${sp.code}`]);
    }
  }
  for (const r of resource) r.searchRevInclude = revincludes.get(r.type) ?? [];
  const patient = supportedSearchParams('Patient');
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    kind: 'instance',
    software,
    implementation: { description: 'hako FHIR R4 server: Medplum fhir-router over a journaled in-memory store' },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    patchFormat: ['application/json-patch+json'],
    rest: [
      {
        mode: 'server',
        resource,
        interaction: systemInteractions.map((code) => ({ code })),
        searchParam: COMMON.filter((code) => patient.has(code)).map((code) => searchParam(patient.get(code)!)),
      },
    ],
  };
}
