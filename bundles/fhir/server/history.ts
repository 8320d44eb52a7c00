// Routes @medplum/fhir-router 4.5.2 lacks, added to the router by main.ts: type-level
// history (GET /Patient/_history) and system-level history (GET /_history). The router
// prefers the route with more literal segments, so these win over read (`:resourceType/:id`)
// and search (`:resourceType`). Instance history, vread and 410 for a deleted resource are
// the repository's (repository.ts).
import { allOk, badRequest, isResourceType, notFound, OperationOutcomeError } from '@medplum/core';
import type { FhirRequest, FhirRouter } from '@medplum/fhir-router';
import type { DurableRepository } from './repository.js';

function param(req: FhirRequest, name: string): string | undefined {
  const value = req.query[name];
  return Array.isArray(value) ? value.at(-1) : value;
}

function int(req: FhirRequest, name: string): number | undefined {
  const text = param(req, name);
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) throw new OperationOutcomeError(badRequest(`${name} must be a non-negative integer`));
  return Number(text);
}

function since(req: FhirRequest): string | undefined {
  const text = param(req, '_since');
  if (text === undefined) return undefined;
  const time = new Date(text);
  if (Number.isNaN(time.getTime())) throw new OperationOutcomeError(badRequest('_since must be an instant'));
  return time.toISOString();
}

export function addHistoryRoutes(router: FhirRouter, repo: DurableRepository): void {
  const options = (req: FhirRequest) => ({ count: int(req, '_count'), offset: int(req, '_offset'), since: since(req), url: req.url });
  router.add(
    'GET',
    ':resourceType/_history',
    async (req) => {
      const { resourceType } = req.params;
      if (!isResourceType(resourceType)) throw new OperationOutcomeError(notFound);
      return [allOk, await repo.typeHistory([resourceType], options(req))];
    },
    'history-type',
  );
  router.add('GET', '_history', async (req) => [allOk, await repo.typeHistory(undefined, options(req))], 'history-system');
}
