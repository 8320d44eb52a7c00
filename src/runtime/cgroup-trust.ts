// Whether a cgroup recorded in state.json is one hako made for that container: on a
// real cgroup mount, at the path hako decides for the id and its config (src/cgroups/path.ts),
// reached through directories only. Anything else is refused before hako writes cgroup.kill,
// reads cgroup.procs to signal what it lists, or rmdirs.
import fs from 'node:fs';
import { posix } from 'node:path';
import { parseMountinfo } from '../cgroups/index.js';
import { expandSlice } from '../cgroups/path.js';
import type { CgroupState } from '../cgroups/index.js';

export interface CgroupMounts {
  v2: string[];
  v1: string[];
}

export function cgroupMounts(): CgroupMounts {
  let text = '';
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    // no /proc: no mount is trusted
  }
  const all = parseMountinfo(text);
  return {
    v2: all.filter((m) => m.fsType === 'cgroup2').map((m) => m.mountPoint),
    v1: all.filter((m) => m.fsType === 'cgroup').map((m) => m.mountPoint),
  };
}

function normalized(p: string): boolean {
  return p.startsWith('/') && posix.normalize(p) === p && (p === '/' || !p.endsWith('/'));
}

function within(p: string, base: string): boolean {
  return base === '/' ? p !== '/' : p.startsWith(`${base}/`);
}

/** The paths resolveCgroupPath() can give this id and cgroupsPath below base (the
 *  relative form is resolved next to the creator's own cgroup: only its tail is known). */
function expected(p: string, base: string, id: string, cgroupsPath: string | undefined): boolean {
  if (cgroupsPath === undefined || cgroupsPath === '') return p === posix.join(base, 'hako', id);
  if (!cgroupsPath.startsWith('/') && cgroupsPath.split(':').length === 3) {
    const [slice, prefix, name] = cgroupsPath.split(':');
    const scope = prefix ? `${prefix}-${name}.scope` : `${name}.scope`;
    try {
      const slices = slice ? [slice] : ['user.slice', 'system.slice'];
      return slices.some((s) => p === posix.join(base, expandSlice(s), scope));
    } catch {
      return false;
    }
  }
  const parts = cgroupsPath.split('/').filter((x) => x !== '' && x !== '.');
  if (parts.length === 0 || parts.includes('..')) return false;
  const tail = `/${parts.join('/')}`;
  return cgroupsPath.startsWith('/') ? p === tail : p.endsWith(tail);
}

/** Every existing directory from the mount down to the cgroup: a directory, not a symlink,
 *  on the mount's own filesystem (nothing mounted over part of it). */
function walk(mount: string, p: string): string | null {
  const top = fs.lstatSync(mount, { throwIfNoEntry: false });
  if (!top?.isDirectory()) return `${mount} is not a directory`;
  let dir = mount;
  for (const part of p.split('/').filter(Boolean)) {
    dir = posix.join(dir, part);
    const st = fs.lstatSync(dir, { throwIfNoEntry: false });
    if (!st) return null; // removed already: nothing there to act on
    if (st.isSymbolicLink()) return `${dir} is a symlink`;
    if (!st.isDirectory()) return `${dir} is not a directory`;
    if (st.dev !== top.dev) return `${dir} is not on the cgroup filesystem mounted at ${mount}`;
  }
  return null;
}

function one(
  where: string,
  mount: string,
  base: string,
  p: string,
  created: string[],
  mounts: string[],
  kind: string,
  id: string,
  cgroupsPath: string | undefined,
): string | null {
  if (!mounts.includes(mount)) return `${where}.mount: ${mount} is not a ${kind} mount`;
  if (!normalized(base) || !normalized(p) || created.some((c) => !normalized(c)))
    return `${where}: its paths must be absolute, without "." or ".." components`;
  if (!within(p, base)) return `${where}.path: ${p} is not inside ${base}`;
  if (!expected(p, base, id, cgroupsPath)) return `${where}.path: ${p} is not where hako puts the cgroup of container "${id}"`;
  // destroy() removes these: only the container's cgroup and parents it made below base.
  const bad = created.find((c) => !within(c, base) || !(c === p || p.startsWith(`${c}/`)));
  if (bad) return `${where}.created: ${bad} is not the container's cgroup or one of its parents below ${base}`;
  const walked = walk(mount, p);
  return walked ? `${where}: ${walked}` : null;
}

/** Why the recorded cgroup is not to be trusted, or null. */
export function cgroupProblem(
  state: CgroupState,
  id: string,
  cgroupsPath: string | undefined,
  mounts: CgroupMounts = cgroupMounts(),
): string | null {
  const legacy = (state as { legacy?: boolean }).legacy === true;
  const main = legacy
    ? one('cgroup', state.mount, state.base, state.path, state.created, mounts.v1, 'cgroup v1', id, cgroupsPath)
    : one('cgroup', state.mount, state.base, state.path, state.created, mounts.v2, 'cgroup v2', id, cgroupsPath);
  if (main) return main;
  const v1 = (state as { v1?: Array<{ mount: string; path: string; created: string[] }> }).v1 ?? [];
  for (const [i, h] of v1.entries()) {
    const why = one(`cgroup.v1[${i}]`, h.mount, '/', h.path, h.created, mounts.v1, 'cgroup v1', id, cgroupsPath);
    if (why) return why;
  }
  return null;
}
