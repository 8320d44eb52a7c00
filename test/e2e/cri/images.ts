// The CRI suite's images, made here (no registry): the pod sandbox's pause image from
// pause.c, the busybox rootfs the other suites use, and the FHIR bundle's root filesystem
// built by its own build hook. Each is an OCI archive that `ctr -n k8s.io images import` reads.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { buildOciArchive } from '../clients/image.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '../../..');

export const PAUSE_IMAGE = 'docker.io/hako/cri-pause:1';
export const BUSYBOX_IMAGE = 'docker.io/hako/cri-busybox:1';
export const FHIR_IMAGE = 'docker.io/hako/cri-fhir:1';

/** A static pause binary (gcc, warnings as errors) in a one-file image. */
export function pauseArchive(dir: string): string {
  const rootfs = path.join(dir, 'pause-rootfs');
  fs.mkdirSync(rootfs, { recursive: true });
  execFileSync('cc', ['-static', '-Os', '-Wall', '-Wextra', '-Werror', '-o', path.join(rootfs, 'pause'), path.join(HERE, 'pause.c')]);
  return buildOciArchive(rootfs, PAUSE_IMAGE, path.join(dir, 'pause.tar'), ['/pause']);
}

export function busyboxArchive(dir: string, rootfs: string): string {
  return buildOciArchive(rootfs, BUSYBOX_IMAGE, path.join(dir, 'busybox.tar'), ['/bin/sh']);
}

/**
 * The FHIR image: bundles/fhir's build hook (package.json "hako.build") run on a scratch bundle
 * dir whose server/ is the repo's, so the tree lands in DIR/fhir-bundle/rootfs, not in the repo.
 * The command is the bundle's config.json process.args.
 */
export function fhirArchive(dir: string): string {
  const bundle = path.join(REPO, 'bundles/fhir');
  const hook = JSON.parse(fs.readFileSync(path.join(bundle, 'package.json'), 'utf8')).hako.build as string;
  const scratch = path.join(dir, 'fhir-bundle');
  fs.mkdirSync(scratch, { recursive: true });
  if (!fs.existsSync(path.join(scratch, 'server'))) fs.symlinkSync(path.join(bundle, 'server'), path.join(scratch, 'server'));
  execFileSync(process.execPath, [path.join(bundle, hook), scratch], { stdio: ['ignore', 'ignore', 'pipe'] });
  const args = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8')).process.args as string[];
  return buildOciArchive(path.join(scratch, 'rootfs'), FHIR_IMAGE, path.join(dir, 'fhir.tar'), args);
}
