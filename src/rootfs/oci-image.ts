// Unpacks a container image into a bundle's rootfs: an OCI image layout directory, or a
// tarball of one (oci-archive) or of `docker save`. Layers are applied in order with the
// OCI whiteout rules (.wh.NAME deletes NAME from lower layers, .wh..wh..opq empties the
// directory of lower-layer content), and any entry that would land outside the rootfs
// (absolute path, "..", a symlink among its parents, a hard link to outside) is refused.
import { createHash } from 'node:crypto';
import { createReadStream, lstatSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { extract, list, type ReadEntry } from 'tar';

const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);
const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

type Descriptor = { mediaType?: string; digest: string; platform?: { os?: string; architecture?: string } };

export type UnpackOptions = {
  /** An OCI image layout directory, or an oci-archive / docker-save tarball. */
  image: string;
  /** The directory to unpack into; created if missing. */
  rootfs: string;
  /** Which image of a multi-platform index to take (default linux/amd64). */
  platform?: { os: string; architecture: string };
};

export async function unpackImage({ image, rootfs, platform = { os: 'linux', architecture: 'amd64' } }: UnpackOptions): Promise<void> {
  const info = await stat(image).catch(() => undefined);
  if (!info) throw new Error(`image ${image} does not exist`);
  let scratch: string | undefined;
  let dir = image;
  try {
    if (!info.isDirectory()) {
      scratch = await mkdtemp(join(tmpdir(), 'hako-image-'));
      await extract({ file: image, cwd: scratch, strict: true });
      dir = scratch;
    }
    const layers = await layerFiles(dir, image, platform);
    await mkdir(rootfs, { recursive: true });
    for (const layer of layers) await applyLayer(layer, rootfs);
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
}

/** The layer tarballs of the image in DIR, lowest first. */
async function layerFiles(dir: string, image: string, platform: { os: string; architecture: string }): Promise<string[]> {
  const has = async (name: string): Promise<boolean> => (await stat(join(dir, name)).catch(() => undefined)) !== undefined;
  if (await has('oci-layout')) {
    let manifest = await pickManifest(await readJson(join(dir, 'index.json')), image, platform);
    while (INDEX_TYPES.has(manifest.mediaType ?? '')) {
      manifest = await pickManifest(await readJson(await blob(dir, manifest.digest)), image, platform);
    }
    const { layers } = (await readJson(await blob(dir, manifest.digest))) as { layers: Descriptor[] };
    return Promise.all(
      layers.map((layer) => {
        if (layer.mediaType?.includes('zstd')) throw new Error(`image ${image} has a zstd layer, which Node 20 cannot decompress`);
        return blob(dir, layer.digest);
      }),
    );
  }
  if (await has('manifest.json')) {
    const images = (await readJson(join(dir, 'manifest.json'))) as { Layers: string[] }[];
    if (images.length !== 1) throw new Error(`image ${image} holds ${images.length} images; save exactly one`);
    return images[0].Layers.map((layer) => join(dir, safePath(layer, `layer path ${layer} in ${image}`)));
  }
  throw new Error(`image ${image} is neither an OCI image layout (no oci-layout) nor a docker save archive (no manifest.json)`);
}

async function pickManifest(index: unknown, image: string, want: { os: string; architecture: string }): Promise<Descriptor> {
  const manifests = (index as { manifests?: Descriptor[] }).manifests ?? [];
  const matching = manifests.filter(
    (m) => !m.platform || (m.platform.os === want.os && m.platform.architecture === want.architecture),
  );
  if (matching.length !== 1) {
    throw new Error(`image ${image} has ${matching.length} manifests for ${want.os}/${want.architecture}; expected exactly one`);
  }
  return matching[0];
}

/** The path of a blob, after checking that its content has the digest that names it. */
async function blob(dir: string, digest: string): Promise<string> {
  const match = /^sha256:([0-9a-f]{64})$/.exec(digest);
  if (!match) throw new Error(`blob digest ${digest} is not a sha256 digest`);
  const path = join(dir, 'blobs', 'sha256', match[1]);
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  } catch {
    throw new Error(`blob ${digest} is missing from the image`);
  }
  if (hash.digest('hex') !== match[1]) throw new Error(`blob ${digest} does not match its digest`);
  return path;
}

async function readJson(path: string): Promise<unknown> {
  return JSON.parse(await readFile(path, 'utf8'));
}

/** Normalizes an archive path and refuses one that leaves the root. */
function safePath(path: string, what: string): string {
  if (path.startsWith('/')) throw new Error(`${what} is absolute`);
  const normal = posix.normalize(path).replace(/\/+$/, '');
  if (normal === '..' || normal.startsWith('../') || path.split('/').includes('..')) throw new Error(`${what} climbs out with ".."`);
  return normal === '.' ? '' : normal.replace(/^\.\//, '');
}

function parents(path: string): string[] {
  const parts = path.split('/');
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join('/'));
}

/** Refuses PATH when a directory above it is a symlink already in the rootfs. */
function checkParentsOnDisk(rootfs: string, path: string, layer: string): void {
  for (const parent of parents(path)) {
    const info = lstatSync(join(rootfs, parent), { throwIfNoEntry: false });
    if (info?.isSymbolicLink()) throw new Error(`layer ${layer}: entry ${path} has a symlink parent ${parent}`);
  }
}

async function applyLayer(layer: string, rootfs: string): Promise<void> {
  // First pass: check every entry and collect the whiteouts, before anything is written.
  const entries: { path: string; type: string; link?: string }[] = [];
  let refused: Error | undefined; // tar swallows nothing thrown from its callbacks: carry it out
  await list({
    file: layer,
    strict: true,
    onReadEntry: (entry: ReadEntry) => {
      try {
        const path = safePath(entry.path, `layer ${layer}: entry ${entry.path}`);
        const link =
          entry.type === 'Link'
            ? safePath(entry.linkpath ?? '', `layer ${layer}: hard link ${entry.path} -> ${entry.linkpath}`)
            : undefined;
        if (path) entries.push({ path, type: entry.type, link });
      } catch (err) {
        refused ??= err as Error;
      }
    },
  });
  if (refused) throw refused;
  const symlinks = new Set(entries.filter((e) => e.type === 'SymbolicLink').map((e) => e.path));
  // A hard link's target is a path in the rootfs too: it must not reach out through a symlink.
  const checked = entries.flatMap(({ path, link }) => (link ? [path, link] : [path]));
  for (const path of checked) {
    const through = parents(path).find((p) => symlinks.has(p));
    if (through) throw new Error(`layer ${layer}: entry ${path} has a symlink parent ${through}`);
  }

  // Whiteouts hide lower layers only, so they are applied before this layer's own content.
  for (const { path } of entries) {
    const name = posix.basename(path);
    if (!name.startsWith(WHITEOUT)) continue;
    checkParentsOnDisk(rootfs, path, layer);
    const dir = posix.dirname(path) === '.' ? '' : posix.dirname(path);
    if (name === OPAQUE) {
      const children = await readdir(join(rootfs, dir)).catch(() => [] as string[]);
      for (const child of children) await rm(join(rootfs, dir, child), { recursive: true, force: true });
    } else {
      await rm(join(rootfs, dir, name.slice(WHITEOUT.length)), { recursive: true, force: true });
    }
  }

  for (const path of checked) checkParentsOnDisk(rootfs, path, layer);

  await extract({
    file: layer,
    cwd: rootfs,
    strict: true,
    unlink: true, // replace files instead of writing through an existing hard link
    // Symlink targets are resolved inside the container: keep absolute ones verbatim. Entry
    // paths and hard-link targets were checked above, and entry paths are checked again here.
    preservePaths: true,
    filter: (entryPath) => {
      try {
        const path = safePath(entryPath, `layer ${layer}: entry ${entryPath}`);
        if (!path || posix.basename(path).startsWith(WHITEOUT)) return false;
        checkParentsOnDisk(rootfs, path, layer);
        return true;
      } catch (err) {
        refused ??= err as Error;
        return false;
      }
    },
  });
  if (refused) throw refused;
}
