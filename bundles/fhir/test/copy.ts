// A copy of the FHIR bundle as its users get it — config, package.json (with the build hook),
// build/ and server/ — without what a build leaves (rootfs/, data/, .cache/). The copy must lie
// below the repository, where the hook finds the workspace's node_modules.
import fs from 'node:fs';
import path from 'node:path';

const FHIR = path.resolve(import.meta.dirname, '..');

export function copyFhirBundle(dest: string): void {
  for (const name of ['config.json', 'package.json']) fs.copyFileSync(path.join(FHIR, name), path.join(dest, name));
  for (const dir of ['build', 'server']) fs.cpSync(path.join(FHIR, dir), path.join(dest, dir), { recursive: true });
}
