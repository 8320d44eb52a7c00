// create: set the container up and leave its init waiting on the exec fifo
// until `start`. On any failure nothing is left: no process, no state dir.
import fs from 'node:fs';
import path from 'node:path';
import { HakoError } from '../errors.js';
import { parseJson, validateConfig } from '../oci/validate.js';
import type { Config } from '../oci/config.js';
import type { ContainerRecord } from '../oci/state.js';
import { buildCreatePlan, sessionKeyringName, type BuiltPlan } from '../plan/build.js';
import { readHostFacts } from '../host/facts.js';
import { native } from '../sys/native.js';
import { fromCwd } from '../sys/caller.js';
import { launch, killAndReap, closeFd, type Launched } from './launch.js';
import { runHooks } from './hooks.js';
import { procStat } from '../sys/proc.js';
import { writeAtomic } from './store.js';
import { readInputFile } from './input-file.js';
import { checkPreservedFds } from './activation.js';
import { Container } from './container.js';
import { compileSecurity } from './security.js';
import { sendSeccompListener } from './seccomp-listener.js';
import type { RuntimeContext } from './context.js';
import { createCgroup, cgroupTarget, removeEmptyCgroup } from './cgroup.js';
import type { CgroupManager } from '../cgroups/index.js';
import { parseShimAnnotations, shimContainerDir, type ShimConfig } from '../plan/shim.js';
import { prepareShimDir, SHIM_DIR_NAME } from './shim.js';

export interface CreateOptions {
  id: string;
  bundle: string;
  pidFile?: string;
  consoleSocket?: string;
  noPivot?: boolean;
  preserveFds?: number;
  extraFds?: Array<{ from: number; to: number }>;
  /** Config already loaded (the harness); else read from bundle/config.json. */
  config?: Config;
  /** false (--no-new-keyring): the container keeps the caller's session keyring, as runc's does;
   *  else its init and exec'd processes join one of their own (runc's `_ses.<id>`). */
  newKeyring?: boolean;
  /** The init dies (SIGKILL) with the process that created it: `hako up` and `hako profile`
   *  only. Never for `create` or `run`: their containers outlive the runtime, as runc's do. */
  dieWithRuntime?: boolean;
}

export function loadBundleConfig(bundle: string): Config {
  const file = path.join(bundle, 'config.json');
  return validateConfig(parseJson(readInputFile(file), file));
}

export function checkRootfs(bundle: string, cfg: Config): string {
  const rootfs = path.resolve(bundle, cfg.root!.path);
  let st: fs.Stats;
  try {
    st = fs.statSync(rootfs);
  } catch {
    throw new HakoError(`config.json: root.path: "${rootfs}" does not exist`);
  }
  if (!st.isDirectory()) throw new HakoError(`config.json: root.path: "${rootfs}" is not a directory`);
  // The kernel's filesystems are mounted there: a symlink would carry them elsewhere (rootfs/proc -> /).
  for (const dir of ['proc', 'sys', 'dev']) {
    const p = path.join(rootfs, dir);
    if (fs.lstatSync(p, { throwIfNoEntry: false })?.isSymbolicLink())
      throw new HakoError(
        `config.json: root.path: ${p} is a symlink (to ${fs.readlinkSync(p)}): hako mounts ${dir === 'dev' ? 'devices' : dir + 'fs'} there and refuses to follow it; make it a directory`,
      );
  }
  return rootfs;
}

/** Whether a user namespace joined by path (/proc/PID/ns/user) refuses setgroups. */
function joinedSetgroupsDenied(cfg: Config): boolean {
  const p = cfg.linux?.namespaces?.find((n) => n.type === 'user')?.path;
  const m = p && /^\/proc\/(\d+)\/ns\/user$/.exec(p);
  if (!m) return false;
  try {
    return fs.readFileSync(`/proc/${m[1]}/setgroups`, 'utf8').trim() === 'deny';
  } catch {
    return false;
  }
}

/** A container without a mount namespace of its own sets its rootfs up in the runtime's (as
 *  runc's does): its mounts stay there until detached, which delete and a failed create do —
 *  down to the mount the rootfs was on before (baseMountId), which is not hako's. */
export function detachRootfsMounts(cfg: Config, rootfs: string, baseMountId: number | undefined): void {
  if (cfg.linux?.namespaces?.some((n) => n.type === 'mount') || baseMountId === undefined || baseMountId < 0) return;
  // The first is the rootfs bound onto itself: detaching it takes everything below along.
  for (let i = 0; i < 64 && native.mountId(rootfs) !== baseMountId; i++) if (native.detachMount(rootfs) !== 0) break;
}

export interface Created {
  container: Container;
  plan: BuiltPlan;
  launched: Launched;
}

export interface PlannedContainer {
  bundle: string;
  cfg: Config;
  rootfs: string;
  plan: BuiltPlan;
  /** The preload shim's configuration, or null when the annotations ask for none. */
  shim: ShimConfig | null;
}

/** Everything create decides before it touches anything: the config, the rootfs, the plan.
 *  `hako plan` prints exactly this, so the audit is the plan create executes. Without an id
 *  (`hako plan`) the session keyring's name says where the id goes. */
export function planContainer(
  ctx: RuntimeContext,
  o: Omit<CreateOptions, 'id' | 'pidFile'> & { id?: string },
  fifoPath: string,
): PlannedContainer {
  const bundle = fromCwd(o.bundle);
  checkPreservedFds(o.preserveFds);
  const cfg = o.config ?? loadBundleConfig(bundle);
  const rootfs = checkRootfs(bundle, cfg);
  const security = compileSecurity(cfg, ctx.log, rootfs);
  const shimConfig = parseShimAnnotations(cfg.annotations);
  const plan = buildCreatePlan({
    cfg,
    bundle,
    rootless: ctx.rootless,
    host: readHostFacts(),
    fifoPath,
    consoleSocket: o.consoleSocket,
    noPivot: o.noPivot,
    preserveFds: o.preserveFds,
    extraFds: o.extraFds,
    seccomp: security.seccomp,
    landlock: security.landlock,
    joinedSetgroupsDenied: joinedSetgroupsDenied(cfg),
    sessionKeyring: o.newKeyring === false ? undefined : sessionKeyringName(o.id ?? '<container id>'),
    dieWithRuntime: o.dieWithRuntime,
    shim: shimConfig && { hostDir: path.join(path.dirname(fifoPath), SHIM_DIR_NAME), config: shimConfig },
  });
  return { bundle, cfg, rootfs, plan, shim: shimConfig };
}

export function create(ctx: RuntimeContext, o: CreateOptions): Created {
  const { store } = ctx;
  return store.withLock(o.id, () => {
    const dir = store.dir(o.id);
    if (fs.existsSync(dir)) throw new HakoError(`container "${o.id}" already exists`);
    const fifoPath = path.join(dir, 'exec.fifo');
    const { bundle, cfg, rootfs, plan, shim } = planContainer(ctx, o, fifoPath);
    fs.mkdirSync(dir, { recursive: true, mode: 0o711 });
    let launched: Launched | undefined;
    let cgroup: CgroupManager | null = null;
    let fifoFd = -1;
    const baseMountId = native.mountId(rootfs);
    try {
      cgroup = createCgroup(o.id, cfg, ctx.log);
      if (shim) prepareShimDir(path.join(dir, SHIM_DIR_NAME), shim, shimContainerDir(cfg));
      const configPath = path.join(dir, 'config.json');
      writeAtomic(configPath, JSON.stringify(cfg));
      native.mkfifo(fifoPath, 0o600);
      fifoFd = fs.openSync(fifoPath, fs.constants.O_RDWR | fs.constants.O_NOFOLLOW);
      const stateFor = (pid: number) => ({
        ociVersion: cfg.ociVersion,
        id: o.id,
        status: 'creating' as const,
        pid,
        bundle,
        annotations: cfg.annotations,
      });
      launched = launch(
        { ...plan, fds: [...plan.fds, { from: fifoFd, to: plan.fifoFd }] },
        {
          cgroup: cgroupTarget(cgroup, ctx.log),
          onHooks: (pid) => {
            runHooks('prestart', cfg.hooks?.prestart, stateFor(pid));
            runHooks('createRuntime', cfg.hooks?.createRuntime, stateFor(pid));
            runHooks('createContainer', cfg.hooks?.createContainer, stateFor(pid));
          },
          onSeccompFd: (fd, pid) => sendSeccompListener(cfg, fd, pid, stateFor(pid)),
        },
      );
      closeFd(fifoFd);
      fifoFd = -1;
      const st = procStat(launched.pid);
      if (!st) throw new HakoError('the container process exited right after setup');
      const record: ContainerRecord = {
        id: o.id,
        bundle,
        rootfs,
        pid: launched.pid,
        startTime: st.startTime,
        created: new Date().toISOString(),
        rootless: ctx.rootless,
        setgroupsDenied: plan.setgroupsDenied,
        configPath,
        rootfsMountId: baseMountId,
        // exec follows create: no keyring of its own then either (runc keeps it in the config).
        ...(o.newKeyring === false ? { noNewKeyring: true } : {}),
        annotations: cfg.annotations,
        owner: process.geteuid!(),
        cgroup: cgroup?.toJSON(),
      };
      const c = new Container(store, record);
      c.save();
      if (o.pidFile) writeAtomic(fromCwd(o.pidFile), String(launched.pid), 0o644);
      return { container: c, plan, launched };
    } catch (e) {
      if (fifoFd >= 0) closeFd(fifoFd);
      if (launched) {
        killAndReap(launched.pid, launched.pidfd);
        closeFd(launched.pidfd);
        closeFd(launched.syncFd);
      }
      removeEmptyCgroup(cgroup);
      detachRootfsMounts(cfg, rootfs, baseMountId);
      fs.rmSync(dir, { recursive: true, force: true });
      store.removeLock(o.id);
      throw e;
    }
  });
}
