// Loads the FHIR R4 definitions the engine needs: StructureDefinitions for validation and
// SearchParameters for search. The rootfs builder ships exactly the files listed in
// definition-files.json, read from a directory at start (JSON.parse beats bundling 40 MB of JS).
import { globalSchema, indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import type { Bundle, SearchParameter, StructureDefinition } from '@medplum/fhirtypes';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import files from './definition-files.json' with { type: 'json' };

export const DEFINITION_FILES: readonly string[] = files;

export function loadDefinitions(dir: string): void {
  for (const file of DEFINITION_FILES) {
    let bundle: Bundle;
    try {
      bundle = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Bundle;
    } catch (err) {
      throw new Error(`cannot load FHIR definitions ${join(dir, file)}: ${(err as Error).message}`);
    }
    if (file.startsWith('search-parameters')) {
      indexSearchParameterBundle(bundle as Bundle<SearchParameter>);
      indexBinary(bundle as Bundle<SearchParameter>);
    } else indexStructureDefinitionBundle(bundle as Bundle<StructureDefinition>);
  }
}

/** Medplum gives Binary no search parameter (its own server keeps Binary content apart); here a
 *  Binary is stored as any resource is, and R4 gives every resource the parameters of base
 *  Resource: _id, _lastUpdated, _tag... A relay of sealed envelopes finds them by _tag. */
function indexBinary(bundle: Bundle<SearchParameter>): void {
  const binary = (globalSchema.types.Binary ??= { searchParamsDetails: {} } as (typeof globalSchema.types)[string]);
  binary.searchParams ??= {};
  for (const sp of (bundle.entry ?? []).map((e) => e.resource)) {
    // the expression as Medplum writes its own per-type copies: Binary.meta.tag, not Resource.meta.tag
    if (sp?.code && (sp.base as string[] | undefined)?.includes('Resource'))
      binary.searchParams[sp.code] ??= { ...sp, base: ['Binary'], expression: sp.expression?.replace(/\bResource\./g, 'Binary.') };
  }
}
