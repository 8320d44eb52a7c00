// Images with no registry: an OCI image layout (one uncompressed layer made
// from a rootfs directory) packed as a tar that `ctr images import` and
// `docker load` both read. Built by hand: sha256 of the blobs, a config, a
// manifest and index.json with the ref.name annotation naming the image.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

function sha256File(file: string): string {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(1 << 20);
  let n: number;
  while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) h.update(buf.subarray(0, n));
  fs.closeSync(fd);
  return h.digest('hex');
}

function putBlob(layout: string, data: Buffer): { digest: string; size: number } {
  const hex = crypto.createHash('sha256').update(data).digest('hex');
  fs.writeFileSync(path.join(layout, 'blobs/sha256', hex), data);
  return { digest: `sha256:${hex}`, size: data.length };
}

/**
 * Writes an OCI layout archive of `rootfs` to `out`, named `ref`
 * (e.g. "docker.io/library/hako-busybox:test"). Returns `out`.
 */
export function buildOciArchive(rootfs: string, ref: string, out: string, cmd: string[] = ['/bin/sh']): string {
  const layout = `${out}.d`;
  fs.rmSync(layout, { recursive: true, force: true });
  fs.mkdirSync(path.join(layout, 'blobs/sha256'), { recursive: true });
  const layerTmp = path.join(layout, 'layer.tar');
  execFileSync('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', rootfs, '-cf', layerTmp, '.']);
  const layerHex = sha256File(layerTmp);
  const layerSize = fs.statSync(layerTmp).size;
  fs.renameSync(layerTmp, path.join(layout, 'blobs/sha256', layerHex));
  const config = putBlob(
    layout,
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        created: '2024-01-01T00:00:00Z',
        config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: cmd, WorkingDir: '/' },
        rootfs: { type: 'layers', diff_ids: [`sha256:${layerHex}`] },
        history: [{ created: '2024-01-01T00:00:00Z', created_by: 'hako test/e2e/clients/image.ts' }],
      }),
    ),
  );
  const manifest = putBlob(
    layout,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${layerHex}`, size: layerSize }],
      }),
    ),
  );
  fs.writeFileSync(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  fs.writeFileSync(
    path.join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          platform: { architecture: 'amd64', os: 'linux' },
          annotations: { 'org.opencontainers.image.ref.name': ref, 'io.containerd.image.name': ref },
        },
      ],
    }),
  );
  execFileSync('tar', ['-C', layout, '-cf', out, 'oci-layout', 'index.json', 'blobs']);
  fs.rmSync(layout, { recursive: true, force: true });
  return out;
}

/** A plain rootfs tarball (for `docker import`). */
export function rootfsTar(rootfs: string, out: string): string {
  execFileSync('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', rootfs, '-cf', out, '.']);
  return out;
}
