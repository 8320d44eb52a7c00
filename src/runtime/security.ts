// Compiles the config's seccomp profile and Landlock rules for the plan.
import type { Config } from '../oci/config.js';
import type { CompiledSeccomp, LandlockRules } from '../plan/security.js';
import type { Log } from './context.js';
import { HakoError } from '../errors.js';
import { compileSeccomp, SeccompError } from '../seccomp/index.js';
import { compileLandlock, LandlockError } from '../landlock/index.js';
import { native } from '../sys/native.js';
import { withShimLandlock } from './shim.js';
import fs from 'node:fs';
import path from 'node:path';

/** Whether a container path exists: resolved inside the rootfs (symlinks kept inside it), or a mount destination. */
export function containerPathExists(rootfs: string, cfg: Config, p: string): boolean {
  if ((cfg.mounts ?? []).some((m) => m.destination === p || m.destination.startsWith(p === '/' ? '/' : `${p}/`))) return true;
  const parts = p.split('/').filter(Boolean);
  let at = '/';
  for (let hops = 0; parts.length > 0;) {
    const next = path.posix.join(at, parts.shift()!);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(path.join(rootfs, next));
    } catch {
      return false;
    }
    if (st.isSymbolicLink()) {
      if (++hops > 40) return false;
      const target = fs.readlinkSync(path.join(rootfs, next));
      parts.unshift(...target.split('/').filter(Boolean));
      if (target.startsWith('/')) at = '/';
    } else at = next;
  }
  return true;
}

export function compileSecurity(
  cfg: Config,
  log: Log,
  rootfs?: string,
): { seccomp: CompiledSeccomp | null; landlock: LandlockRules | null } {
  let seccomp: CompiledSeccomp | null = null;
  let landlock: LandlockRules | null = null;
  try {
    if (cfg.linux?.seccomp) {
      const c = compileSeccomp(cfg.linux.seccomp as never, { log: (m: string) => log.debug(m) });
      const sc = cfg.linux.seccomp as { listenerPath?: unknown; listenerMetadata?: unknown };
      // Refused here, before anything starts, rather than when the fd is sent.
      if (c.listener && (typeof sc.listenerPath !== 'string' || !sc.listenerPath))
        throw new HakoError('config.json: linux.seccomp.listenerPath: needed for SCMP_ACT_NOTIFY rules');
      if (sc.listenerMetadata !== undefined && !sc.listenerPath)
        throw new HakoError('config.json: linux.seccomp.listenerMetadata: set without listenerPath');
      seccomp = { program: c.program, flags: c.flags, listener: c.listener };
    }
    const ll = compileLandlock(
      cfg.annotations,
      native.landlockAbi(),
      rootfs ? { rootfsExists: (p) => containerPathExists(rootfs, cfg, p) } : {},
    );
    if (ll) {
      for (const w of ll.warnings) log.warn(w);
      landlock = withShimLandlock(cfg, ll);
    }
  } catch (e) {
    if (e instanceof SeccompError || e instanceof LandlockError)
      throw new HakoError(`config.json: ${(e as Error).message}`.replace('config.json: config.json', 'config.json'));
    throw e;
  }
  return { seccomp, landlock };
}
