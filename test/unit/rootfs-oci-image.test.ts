import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { create, Header } from 'tar';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { unpackImage } from '../../src/rootfs/oci-image.js';

type Entry = { path: string; type?: 'File' | 'Directory' | 'SymbolicLink' | 'Link'; body?: string; linkpath?: string };

/** A tar archive made entry by entry, so tests can write what a hostile layer would. */
function layerTar(entries: Entry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const { path, type = 'File', body = '', linkpath } of entries) {
    const data = Buffer.from(body);
    const header = new Header({
      path,
      type,
      linkpath,
      size: type === 'File' ? data.length : 0,
      mode: type === 'Directory' ? 0o755 : 0o644,
      mtime: new Date(0),
      uid: 0,
      gid: 0,
    });
    header.encode();
    blocks.push(header.block!);
    if (type === 'File' && data.length) blocks.push(data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

const BASE: Entry[] = [
  { path: 'etc/', type: 'Directory' },
  { path: 'etc/a', body: 'lower a' },
  { path: 'etc/b', body: 'lower b' },
  { path: 'dir/', type: 'Directory' },
  { path: 'dir/x', body: 'x' },
  { path: 'dir/sub/', type: 'Directory' },
  { path: 'dir/sub/y', body: 'y' },
  { path: 'link', type: 'SymbolicLink', linkpath: 'etc/b' },
  { path: 'abs', type: 'SymbolicLink', linkpath: '/etc/b' },
  { path: 'hard', type: 'Link', linkpath: 'dir/x' },
];
const UPPER: Entry[] = [
  { path: 'etc/', type: 'Directory' },
  { path: 'etc/.wh.a' },
  { path: 'dir/', type: 'Directory' },
  { path: 'dir/.wh..wh..opq' },
  { path: 'dir/new', body: 'new' },
  { path: 'etc/b', body: 'upper b' },
];

let work: string;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'hako-oci-'));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Writes an OCI image layout holding LAYERS (the last one gzipped) and returns its directory. */
async function ociLayout(layers: Entry[][], opts: { corrupt?: boolean } = {}): Promise<string> {
  const dir = join(work, 'layout');
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  const put = async (data: Buffer): Promise<string> => {
    const hex = createHash('sha256').update(data).digest('hex');
    await writeFile(join(dir, 'blobs', 'sha256', hex), data);
    return `sha256:${hex}`;
  };
  const descriptors = [];
  for (const [i, entries] of layers.entries()) {
    const gzip = i === layers.length - 1;
    const data = gzip ? gzipSync(layerTar(entries)) : layerTar(entries);
    const digest = await put(data);
    if (opts.corrupt) await writeFile(join(dir, 'blobs', 'sha256', digest.slice(7)), Buffer.concat([data, Buffer.from('x')]));
    descriptors.push({
      mediaType: `application/vnd.oci.image.layer.v1.tar${gzip ? '+gzip' : ''}`,
      digest,
      size: data.length,
    });
  }
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: await put(config), size: config.length },
      layers: descriptors,
    }),
  );
  const manifestDigest = await put(manifest);
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: manifestDigest,
          size: manifest.length,
          platform: { os: 'linux', architecture: 'amd64' },
        },
      ],
    }),
  );
  return dir;
}

async function dockerSave(layers: Entry[][]): Promise<string> {
  const dir = join(work, 'save');
  const paths = [];
  for (const [i, entries] of layers.entries()) {
    await mkdir(join(dir, `l${i}`), { recursive: true });
    await writeFile(join(dir, `l${i}`, 'layer.tar'), layerTar(entries));
    paths.push(`l${i}/layer.tar`);
  }
  await writeFile(join(dir, 'manifest.json'), JSON.stringify([{ Config: 'c.json', RepoTags: ['x:1'], Layers: paths }]));
  const archive = join(work, 'save.tar');
  await create({ file: archive, cwd: dir }, ['manifest.json', ...paths]);
  return archive;
}

function expectMerged(rootfs: string): void {
  expect(readdirSync(join(rootfs, 'etc'))).toEqual(['b']);
  expect(readFileSync(join(rootfs, 'etc/b'), 'utf8')).toBe('upper b');
  expect(readdirSync(join(rootfs, 'dir'))).toEqual(['new']);
  expect(readlinkSync(join(rootfs, 'link'))).toBe('etc/b');
  expect(readlinkSync(join(rootfs, 'abs'))).toBe('/etc/b'); // resolved inside the container, kept verbatim
  expect(readFileSync(join(rootfs, 'hard'), 'utf8')).toBe('x');
}

describe('unpacking an image', () => {
  it('applies an OCI layout layer by layer, with whiteouts and an opaque directory', async () => {
    const rootfs = join(work, 'rootfs');
    await unpackImage({ image: await ociLayout([BASE, UPPER]), rootfs });
    expectMerged(rootfs);
  });

  it('reads an oci-archive tarball', async () => {
    const layout = await ociLayout([BASE, UPPER]);
    const archive = join(work, 'oci.tar');
    await create({ file: archive, cwd: layout }, ['.']);
    const rootfs = join(work, 'rootfs');
    await unpackImage({ image: archive, rootfs });
    expectMerged(rootfs);
  });

  it('reads a docker save tarball', async () => {
    const rootfs = join(work, 'rootfs');
    await unpackImage({ image: await dockerSave([BASE, UPPER]), rootfs });
    expectMerged(rootfs);
  });

  it('refuses a blob whose content does not match its digest', async () => {
    await expect(unpackImage({ image: await ociLayout([BASE], { corrupt: true }), rootfs: join(work, 'r') })).rejects.toThrow(
      /does not match its digest/,
    );
  });

  it('refuses an entry that climbs out with ".."', async () => {
    const image = await ociLayout([[{ path: 'ok', body: '1' }, { path: 'a/../../escaped', body: 'bad' }]]);
    await expect(unpackImage({ image, rootfs: join(work, 'r') })).rejects.toThrow(/entry a\/\.\.\/\.\.\/escaped climbs out/);
    expect(existsSync(join(work, 'escaped'))).toBe(false);
    expect(existsSync(join(work, 'r', 'ok'))).toBe(false); // checked before anything was written
  });

  it('refuses an absolute entry', async () => {
    const image = await ociLayout([[{ path: '/etc/evil', body: 'bad' }]]);
    await expect(unpackImage({ image, rootfs: join(work, 'r') })).rejects.toThrow(/entry \/etc\/evil is absolute/);
  });

  it('refuses to write through a symlink left by a lower layer', async () => {
    const outside = join(work, 'outside');
    await mkdir(outside);
    const image = await ociLayout([
      [{ path: 'esc', type: 'SymbolicLink', linkpath: outside }],
      [{ path: 'esc/pwned', body: 'bad' }],
    ]);
    await expect(unpackImage({ image, rootfs: join(work, 'r') })).rejects.toThrow(/entry esc\/pwned has a symlink parent esc/);
    expect(readdirSync(outside)).toEqual([]);
  });

  it('refuses to write through a symlink made earlier in the same layer', async () => {
    const outside = join(work, 'outside');
    await mkdir(outside);
    const image = await ociLayout([
      [
        { path: 'esc', type: 'SymbolicLink', linkpath: outside },
        { path: 'esc/pwned', body: 'bad' },
      ],
    ]);
    await expect(unpackImage({ image, rootfs: join(work, 'r') })).rejects.toThrow(/symlink parent esc/);
    expect(readdirSync(outside)).toEqual([]);
    expect(lstatSync(join(work, 'r'), { throwIfNoEntry: false })?.isDirectory() ?? true).toBe(true);
  });

  it('refuses a hard link to a file outside the rootfs', async () => {
    const image = await ociLayout([[{ path: 'h', type: 'Link', linkpath: '../../etc/passwd' }]]);
    await expect(unpackImage({ image, rootfs: join(work, 'r') })).rejects.toThrow(/hard link h -> \.\.\/\.\.\/etc\/passwd climbs out/);
  });

  it('refuses a hard link whose target goes through a symlink', async () => {
    const image = await ociLayout([
      [{ path: 'etc', type: 'SymbolicLink', linkpath: '/etc' }],
      [{ path: 'h', type: 'Link', linkpath: 'etc/passwd' }],
    ]);
    await expect(unpackImage({ image, rootfs: join(work, 'r') })).rejects.toThrow(/entry etc\/passwd has a symlink parent etc/);
    expect(existsSync(join(work, 'r', 'h'))).toBe(false);
  });

  it('says what it was given when it is not an image', async () => {
    await mkdir(join(work, 'empty'));
    await expect(unpackImage({ image: join(work, 'empty'), rootfs: join(work, 'r') })).rejects.toThrow(
      `image ${join(work, 'empty')} is neither an OCI image layout (no oci-layout) nor a docker save archive (no manifest.json)`,
    );
  });
});
