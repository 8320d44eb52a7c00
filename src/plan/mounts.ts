// The root filesystem: propagation, the rootfs bind, every config mount with
// its resolved flags, the default devices and links, pivot_root, masked and
// read-only paths. Mount targets are resolved by the executor inside the
// rootfs (openat2 RESOLVE_IN_ROOT), so a symlink cannot lead a mount outside.
import fs from 'node:fs';
import path from 'node:path';
import type { Config, Mount } from '../oci/config.js';
import { HakoError } from '../errors.js';
import { MNT_OPT, type Step } from './ops.js';
import { MS, parseMountOptions } from './mount-options.js';
import { mapsInside, type IdMapPlan } from './idmap.js';

export interface MountContext {
  cfg: Config;
  bundle: string;
  rootfs: string;
  rootless: boolean;
  userNs: boolean;
  newNet: boolean;
  newIpc: boolean;
  newCgroupNs: boolean;
  idmap: IdMapPlan | null;
  noPivot: boolean;
  /** No mount namespace listed: the runtime's own is used (chroot, and '/' keeps its propagation). */
  sharedMountNs: boolean;
  /** The host's /sys/fs/cgroup is cgroup2 (unified). */
  cgroup2Unified: boolean;
}

const IN_ROOT = MNT_OPT.TARGET_IN_ROOT;

/** Where the kernel's own filesystems go: a symlink on the way there (rootfs/proc -> /)
 *  is refused, not followed, even inside the root (runc refuses proc on a symlink too). */
const KERNEL_FS_DIRS = new Set(['/proc', '/sys', '/dev']);
function targetOpts(type: string, dest: string): number {
  const strict = type === 'proc' || type === 'sysfs' || KERNEL_FS_DIRS.has(path.posix.normalize(dest));
  return IN_ROOT | (strict ? MNT_OPT.NO_SYMLINKS : 0);
}

const DEFAULT_DEVICES = [
  { path: '/dev/null', major: 1, minor: 3 },
  { path: '/dev/zero', major: 1, minor: 5 },
  { path: '/dev/full', major: 1, minor: 7 },
  { path: '/dev/random', major: 1, minor: 8 },
  { path: '/dev/urandom', major: 1, minor: 9 },
  { path: '/dev/tty', major: 5, minor: 0 },
];

const DEV_LINKS: Array<[string, string]> = [
  ['/proc/self/fd', '/dev/fd'],
  ['/proc/self/fd/0', '/dev/stdin'],
  ['/proc/self/fd/1', '/dev/stdout'],
  ['/proc/self/fd/2', '/dev/stderr'],
];

const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;

function makedev(major: number, minor: number): number {
  return ((major & 0xfff) << 8) | (minor & 0xff) | ((minor & ~0xff) << 12);
}

function isHostFile(p: string): boolean {
  try {
    return !fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** A cgroup mount: the container's own cgroup2 tree when the host is unified
 *  and the container has a cgroup namespace; else the host's tree, bound
 *  read-only (a hybrid or v1 host, where runc would assemble v1 mounts). */
function cgroupMount(m: Mount, ctx: MountContext): Mount {
  if (ctx.cgroup2Unified && ctx.newCgroupNs) return { ...m, type: 'cgroup2', source: 'cgroup' };
  const ro = (m.options ?? []).includes('rw') ? [] : ['ro'];
  return { ...m, type: 'none', source: '/sys/fs/cgroup', options: ['rbind', 'nosuid', 'noexec', 'nodev', ...ro] };
}

/** Rootless cannot mount some filesystems: bind the host's instead (runc and podman do the same). */
function substitute(m: Mount, ctx: MountContext): Mount {
  if (m.type === 'cgroup' || m.type === 'cgroup2') return cgroupMount(m, ctx);
  if (!ctx.rootless) return m;
  if (m.type === 'sysfs' && !ctx.newNet)
    return { ...m, type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] };
  if (m.type === 'mqueue' && !ctx.newIpc)
    return { ...m, type: 'none', source: '/dev/mqueue', options: ['rbind', 'nosuid', 'noexec', 'nodev'] };
  if (m.type === 'devpts' && ctx.idmap) {
    // gid=5 (tty) is refused when that gid is not mapped in the container.
    const options = (m.options ?? []).filter((o) => {
      const g = /^gid=(\d+)$/.exec(o);
      return !g || mapsInside(ctx.idmap!.gidMap, Number(g[1]));
    });
    return { ...m, options };
  }
  return m;
}

const HOST_CGROUP = '/sys/fs/cgroup';

/** Whether an earlier recursive bind (rootless: /sys rbound from the host) already put the
 *  host's cgroup2 mount at `dest`. Mounting cgroup2 right on it fails with EBUSY (the same
 *  superblock on the same mount root); covering it with a tmpfs first avoids that. */
export function hostCgroupAt(dest: string, earlier: Mount[], ctx: MountContext): boolean {
  return earlier.some((e) => {
    const s = substitute(e, ctx);
    const opts = parseMountOptions(s.options);
    if (!(opts.flags & MS.BIND) || !(opts.flags & MS.REC) || !s.source || !path.isAbsolute(s.source)) return false;
    const rel = path.relative(s.source, HOST_CGROUP);
    if (rel.startsWith('..') || path.isAbsolute(rel)) return false;
    return path.join(s.destination, rel) === path.normalize(dest);
  });
}

function mountSteps(orig: Mount, index: number, ctx: MountContext, earlier: Mount[] = []): Step[] {
  const m = substitute(orig, ctx);
  const dest = m.destination;
  const opts = parseMountOptions(m.options);
  const isBind = (opts.flags & MS.BIND) !== 0 || m.type === 'bind';
  const flags = opts.flags | (m.type === 'bind' && !(opts.flags & MS.BIND) ? MS.BIND : 0);
  let source = m.source ?? '';
  if (isBind) {
    if (!source) throw new HakoError(`config.json: mounts[${index}].source: a bind mount needs a source`);
    if (!path.isAbsolute(source)) source = path.join(ctx.bundle, source);
    if (!fs.existsSync(source)) throw new HakoError(`config.json: mounts[${index}].source: "${source}" does not exist`);
  }
  const steps: Step[] = [];
  const what = `mount ${isBind ? source : (m.type ?? source)} on ${dest}`;
  if (isBind && isHostFile(source)) steps.push({ op: 'MKFILE_IN_ROOT', args: [dest, 0o644], what: `create the mount point ${dest}` });
  else steps.push({ op: 'MKDIR_IN_ROOT', args: [dest, 0o755], what: `create the mount point ${dest}` });
  const type = isBind ? '' : (m.type ?? '');
  if (!isBind && !type) throw new HakoError(`config.json: mounts[${index}].type: needed for a mount that is not a bind mount`);
  // linux.mountLabel labels the filesystems made for the container (runc: tmpfs and devpts).
  const label = ctx.cfg.linux?.mountLabel && (type === 'tmpfs' || type === 'devpts') ? [`context="${ctx.cfg.linux.mountLabel}"`] : [];
  const data = [...opts.data, ...label].join(',');
  if (isBind) {
    steps.push({ op: 'MOUNT', args: [source, dest, '', flags & (MS.BIND | MS.REC), '', targetOpts(type, dest)], what });
    // A bind mount ignores the other flags: they take a remount.
    const extra = flags & ~(MS.BIND | MS.REC | MS.REMOUNT);
    if (extra)
      steps.push({
        op: 'MOUNT',
        args: ['', dest, '', MS.REMOUNT | MS.BIND | extra, '', IN_ROOT | MNT_OPT.KEEP_LOCKED],
        what: `remount ${dest} with its options`,
      });
  } else {
    if (type === 'cgroup2' && hostCgroupAt(dest, earlier, ctx))
      steps.push({
        op: 'MOUNT',
        args: ['tmpfs', dest, 'tmpfs', MS.NOSUID | MS.NODEV | MS.NOEXEC, 'size=4k,mode=755', IN_ROOT],
        what: `cover the host's cgroup tree on ${dest}`,
      });
    steps.push({ op: 'MOUNT', args: [m.source ?? type, dest, type, flags, data, targetOpts(type, dest)], what });
  }
  for (const p of opts.propagation)
    steps.push({ op: 'MOUNT', args: ['', dest, '', p, '', IN_ROOT], what: `set the propagation of ${dest}` });
  return steps;
}

function deviceSteps(ctx: MountContext): Step[] {
  const steps: Step[] = [];
  const devices = [
    ...DEFAULT_DEVICES.map((d) => ({ ...d, type: 'c' as const, fileMode: 0o666, uid: 0, gid: 0 })),
    ...(ctx.cfg.linux?.devices ?? []),
  ];
  const seen = new Set<string>();
  devices.forEach((d, i) => {
    if (seen.has(d.path)) return;
    seen.add(d.path);
    const where = `linux.devices[${i - DEFAULT_DEVICES.length}]`;
    if (!d.path.startsWith('/dev/')) throw new HakoError(`config.json: ${where}.path: "${d.path}" must be under /dev`);
    if (ctx.userNs) {
      // mknod is refused in a user namespace: bind the host's node instead.
      if (!fs.existsSync(d.path)) {
        if (i >= DEFAULT_DEVICES.length) throw new HakoError(`config.json: ${where}.path: "${d.path}" does not exist on the host to bind`);
        return;
      }
      steps.push({ op: 'MKFILE_IN_ROOT', args: [d.path, 0o644], what: `create ${d.path}` });
      steps.push({ op: 'MOUNT', args: [d.path, d.path, '', MS.BIND, '', IN_ROOT], what: `bind the host's ${d.path}` });
      return;
    }
    const kind = d.type === 'b' ? S_IFBLK : d.type === 'p' ? S_IFIFO : S_IFCHR;
    const mode = kind | ((d.fileMode ?? 0o666) & 0o7777);
    const dev = d.type === 'p' ? 0 : makedev(d.major ?? 0, d.minor ?? 0);
    steps.push({ op: 'MKNOD_IN_ROOT', args: [d.path, mode, dev, d.uid ?? 0, d.gid ?? 0], what: `create the device ${d.path}` });
  });
  return steps;
}

const PROPAGATION_FLAGS: Record<string, number> = {
  private: MS.PRIVATE,
  rprivate: MS.PRIVATE | MS.REC,
  slave: MS.SLAVE,
  rslave: MS.SLAVE | MS.REC,
  shared: MS.SHARED,
  rshared: MS.SHARED | MS.REC,
  unbindable: MS.UNBINDABLE,
  runbindable: MS.UNBINDABLE | MS.REC,
};

/** Steps before pivot_root: everything mounted into the rootfs. */
export function planRootfs(ctx: MountContext): Step[] {
  const { cfg, rootfs } = ctx;
  const prop = PROPAGATION_FLAGS[cfg.linux?.rootfsPropagation ?? 'rslave'];
  const steps: Step[] = ctx.sharedMountNs
    ? []
    : [
        // runc's default: rslave, so nothing the container mounts reaches the host.
        { op: 'MOUNT', args: ['', '/', '', prop | MS.REC, '', 0], what: 'set the propagation of /' },
        // pivot_root refuses a shared parent mount; runc makes it private too.
        ...(prop & MS.SHARED
          ? [{ op: 'PARENT_MOUNT_PRIVATE' as const, args: [rootfs], what: `make the mount holding ${rootfs} private` }]
          : []),
      ];
  steps.push(
    { op: 'MOUNT', args: [rootfs, rootfs, '', MS.BIND | MS.REC, '', 0], what: `bind the rootfs ${rootfs} onto itself` },
    { op: 'OPEN_ROOT', args: [rootfs], what: `open the rootfs ${rootfs}` },
  );
  (cfg.mounts ?? []).forEach((m, i, all) => steps.push(...mountSteps(m, i, ctx, all.slice(0, i))));
  steps.push(...deviceSteps(ctx));
  for (const [target, link] of DEV_LINKS) steps.push({ op: 'SYMLINK_IN_ROOT', args: [target, link], what: `link ${link}` });
  if ((cfg.mounts ?? []).some((m) => m.destination === '/dev/pts'))
    steps.push({ op: 'SYMLINK_IN_ROOT', args: ['pts/ptmx', '/dev/ptmx'], what: 'link /dev/ptmx' });
  return steps;
}

export function planPivot(ctx: MountContext): Step[] {
  const steps: Step[] = ctx.sharedMountNs
    ? [{ op: 'CHROOT', args: [], what: 'chroot into the rootfs (no mount namespace of its own)' }]
    : ctx.noPivot
      ? [{ op: 'MOVE_CHROOT', args: [ctx.rootfs], what: 'move the rootfs to / and chroot (--no-pivot)' }]
      : [{ op: 'PIVOT_ROOT', args: [ctx.rootfs], what: 'pivot_root into the rootfs' }];
  steps.push({ op: 'OPEN_ROOT', args: ['/'], what: 'open the new root' });
  // The propagation asked for applies to the new "/", which only now is the root (runc does the same).
  const asked = ctx.cfg.linux?.rootfsPropagation;
  if (asked && !ctx.sharedMountNs)
    steps.push({ op: 'MOUNT', args: ['', '/', '', PROPAGATION_FLAGS[asked], '', 0], what: `set the propagation of the new / to ${asked}` });
  return steps;
}

/** Steps after pivot_root: masked and read-only paths, a read-only root. */
export function planFinalizeRootfs(ctx: MountContext): Step[] {
  const steps: Step[] = [];
  for (const p of ctx.cfg.linux?.maskedPaths ?? []) steps.push({ op: 'MASK_PATH', args: [p], what: `mask ${p}` });
  for (const p of ctx.cfg.linux?.readonlyPaths ?? []) steps.push({ op: 'READONLY_PATH', args: [p], what: `make ${p} read-only` });
  if (ctx.cfg.root?.readonly)
    steps.push({
      op: 'MOUNT',
      args: ['', '/', '', MS.REMOUNT | MS.BIND | MS.RDONLY, '', MNT_OPT.KEEP_LOCKED],
      what: 'remount the root read-only',
    });
  return steps;
}
