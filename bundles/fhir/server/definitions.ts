// Loads the FHIR R4 definitions the engine needs: StructureDefinitions for validation and
// SearchParameters for search. The rootfs builder ships exactly the files listed in
// definition-files.json, read from a directory at start (JSON.parse beats bundling 40 MB of JS).
import { indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
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
    if (file.startsWith('search-parameters')) indexSearchParameterBundle(bundle as Bundle<SearchParameter>);
    else indexStructureDefinitionBundle(bundle as Bundle<StructureDefinition>);
  }
}
