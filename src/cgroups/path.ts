// Where a container's cgroup goes: linux.cgroupsPath (absolute, relative, or systemd's
// "slice:prefix:name") resolved to a path inside the v2 hierarchy ("/hako/c1"), and kept
// inside the subtree this user may write. Pure.
import { posix } from 'node:path';
import { CgroupError } from './errors.js';

export interface PathContext {
  id: string;
  rootless: boolean;
  /** This process's own v2 cgroup ("0::/path" in /proc/self/cgroup). */
  ownCgroup: string;
  /** The subtree this user may write: "/" for root, the delegated cgroup for rootless. */
  base: string;
}

const F = 'linux.cgroupsPath';

function clean(path: string, what: string): string[] {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new CgroupError(`${what}: ${JSON.stringify(path)} may not contain ".."`);
  return parts;
}

function within(path: string, base: string): boolean {
  return base === '/' || path === base || path.startsWith(`${base}/`);
}

/** systemd's slice naming: "a-b-c.slice" lives at "/a.slice/a-b.slice/a-b-c.slice". */
export function expandSlice(slice: string): string {
  if (!slice.endsWith('.slice') || slice.includes('/')) {
    throw new CgroupError(`${F}: ${JSON.stringify(slice)} is not a systemd slice name like "system.slice"`);
  }
  const name = slice.slice(0, -'.slice'.length);
  if (name === '-') return '/';
  if (name === '' || name.startsWith('-') || name.endsWith('-') || name.includes('--')) {
    throw new CgroupError(`${F}: ${JSON.stringify(slice)} is not a valid systemd slice name`);
  }
  let path = '';
  let prefix = '';
  for (const part of name.split('-')) {
    prefix = prefix ? `${prefix}-${part}` : part;
    path += `/${prefix}.slice`;
  }
  return path;
}

/**
 * Resolves the container's cgroup path (absolute within the v2 hierarchy).
 * - absent: "/hako/<id>" below the base (the root for root, the delegated subtree rootless);
 * - "slice:prefix:name": "<slice path>/<prefix>-<name>.scope" below the base, with no D-Bus;
 * - absolute: taken from the v2 root; relative: next to our own cgroup, as runc does,
 *   because our own cgroup holds processes and cannot have controllers enabled below it.
 */
export function resolveCgroupPath(cgroupsPath: string | undefined, ctx: PathContext): string {
  if (!/^[\w.+@-]+$/.test(ctx.id)) throw new CgroupError(`container id ${JSON.stringify(ctx.id)} cannot name a cgroup`);
  let path: string;
  if (cgroupsPath === undefined || cgroupsPath === '') {
    path = posix.join(ctx.base, 'hako', ctx.id);
  } else if (!cgroupsPath.startsWith('/') && cgroupsPath.split(':').length === 3) {
    const [slice, prefix, name] = cgroupsPath.split(':');
    if (!/^[\w.@-]+$/.test(name) || (prefix !== '' && !/^[\w.@-]+$/.test(prefix))) {
      throw new CgroupError(`${F}: ${JSON.stringify(cgroupsPath)} is not a valid "slice:prefix:name"`);
    }
    const slicePath = expandSlice(slice || (ctx.rootless ? 'user.slice' : 'system.slice'));
    path = posix.join(ctx.base, slicePath, prefix ? `${prefix}-${name}.scope` : `${name}.scope`);
  } else {
    const parts = clean(cgroupsPath, F);
    if (parts.length === 0) throw new CgroupError(`${F}: ${JSON.stringify(cgroupsPath)} names the root cgroup`);
    path = cgroupsPath.startsWith('/') ? `/${parts.join('/')}` : posix.join(posix.dirname(ctx.ownCgroup), ...parts);
  }
  if (!within(path, ctx.base) || path === ctx.base) {
    throw new CgroupError(
      `${F}: ${JSON.stringify(cgroupsPath ?? path)} resolves to ${path}, outside the cgroup subtree ${ctx.base} this user may write`,
    );
  }
  return path;
}
