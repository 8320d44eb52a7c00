// The CapabilityStatement served at /metadata, derived from what is actually indexed and routed.
import { getResourceTypes, globalSchema } from '@medplum/core';
import type { CapabilityStatement, CapabilityStatementRestResource } from '@medplum/fhirtypes';

const TYPE_INTERACTIONS = ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'create', 'search-type'] as const;

export function capabilityStatement(software: { name: string; version: string }): CapabilityStatement {
  const resource: CapabilityStatementRestResource[] = getResourceTypes()
    .sort()
    .map((type) => ({
      type,
      interaction: TYPE_INTERACTIONS.map((code) => ({ code })),
      versioning: 'versioned',
      readHistory: true,
      updateCreate: true,
      conditionalCreate: true,
      conditionalUpdate: true,
      conditionalDelete: 'single',
      searchParam: Object.values(globalSchema.types[type]?.searchParams ?? {}).map((sp) => ({
        name: sp.code as string,
        definition: sp.url,
        type: sp.type as 'string',
      })),
    }));
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
        interaction: [{ code: 'transaction' }, { code: 'batch' }, { code: 'search-system' }],
      },
    ],
  };
}
