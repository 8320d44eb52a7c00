// config.json -> launch plan: a pure function of the validated config, the
// bundle, rootless or not, and the host's facts. `hako plan` prints its result.
import path from 'node:path';
import type { Config, Process } from '../oci/config.js';
import { HakoError } from '../errors.js';
import { HOOK_POINT, LIMIT, maxVariadic, type LaunchPlan, type Step } from './ops.js';
import type { HostFacts } from '../host/facts.js';
import { planNamespaces, CLONE } from './namespaces.js';
import { planIdMaps, type IdMapPlan } from './idmap.js';
import { planRootfs, planPivot, planFinalizeRootfs } from './mounts.js';
import { execSteps, finalExec, identitySteps, limitSteps } from './process.js';
import type { CompiledSeccomp, LandlockRules } from './security.js';
import { securitySteps, lsmSteps } from './security.js';
import { shimCheckStep, shimContainerDir, shimMountSteps, type ShimConfig } from './shim.js';

export interface PlanOptions {
  cfg: Config;
  bundle: string;
  rootless: boolean;
  host: HostFacts;
  /** The exec fifo the init waits on until `start` (create); absent for exec. */
  fifoPath?: string;
  consoleSocket?: string;
  noPivot?: boolean;
  /** How many fds from 3 on are handed to the container unchanged. */
  preserveFds?: number;
  /** Extra fds to place (socket activation): runtime fd -> container fd. */
  extraFds?: Array<{ from: number; to: number }>;
  seccomp?: CompiledSeccomp | null;
  landlock?: LandlockRules | null;
  /** A joined user namespace denies setgroups (read from /proc by the caller). */
  joinedSetgroupsDenied?: boolean;
  /** The session keyring the process joins, runc's `_ses.<container id>` (sessionKeyringName);
   *  absent: it keeps the caller's (--no-new-keyring). */
  sessionKeyring?: string;
  /** create: the init gets SIGKILL when the runtime process that launched it dies (`hako up`,
   *  whose containers must not outlive it). Never for create or run, whose containers must
   *  outlive the runtime, as runc's do. */
  dieWithRuntime?: boolean;
  /** The preload shim (run.hako.shim.* annotations): its directory on the host (in the state
   *  dir, filled by the runtime before launch) and its configuration; absent: none. */
  shim?: { hostDir: string; config: ShimConfig } | null;
}

/** runc's name for a container's session keyring: its init and every exec'd process join it. */
export function sessionKeyringName(id: string): string {
  return `_ses.${id}`;
}

/** The key permission bits runc adds to the init's session keyring: search by others in a user
 *  namespace (KEY_OTH_SEARCH), else search by the owner's uid (KEY_USR_SEARCH). */
export const KEYRING_SEARCH = { OTHERS: 0x08, OWNER: 0x080000 } as const;

const SIGKILL = 9;

function keyringStep(name: string, addPerm: number): Step {
  return {
    op: 'JOIN_SESSION_KEYRING',
    args: [name, addPerm],
    what: `join the session keyring ${name} (the caller's stays out of the container)`,
  };
}

export interface BuiltPlan extends LaunchPlan {
  idmap: IdMapPlan | null;
  /** The process's user namespace refuses setgroups (exec needs to know later). */
  setgroupsDenied: boolean;
  /** The child stays dumpable until the runtime has written its id maps (rootless: /proc/PID/uid_map). */
  dumpableWhileMapped: boolean;
  /** The fd the init expects the exec fifo on (the runtime adds it to fds at launch), or -1. */
  fifoFd: number;
}

function fdPlan(o: { preserveFds?: number; extraFds?: Array<{ from: number; to: number }> }) {
  const fds: Array<{ from: number; to: number }> = [];
  for (let i = 0; i < (o.preserveFds ?? 0); i++) fds.push({ from: 3 + i, to: 3 + i });
  fds.push(...(o.extraFds ?? []));
  return { fds };
}

/** Steps shared by create and exec once the process's world is in place. */
function processSteps(proc: Process, o: PlanOptions, where: string, setgroupsDenied: boolean, isInit: boolean): Step[] {
  const steps: Step[] = [];
  if (proc.terminal) {
    if (!o.consoleSocket) throw new HakoError(`${where}.terminal: a terminal needs --console-socket (or run it in the foreground)`);
    steps.push({ op: 'CONSOLE_PTY', args: [], what: 'create the terminal and send it to the console socket' });
  } else if (isInit) {
    steps.push({ op: 'SETSID', args: [], what: 'start a new session' });
  }
  steps.push(...limitSteps(proc, where));
  steps.push(...lsmSteps(proc, where, o.host.lsm));
  const nnp = proc.noNewPrivileges === true;
  // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: do it while we
  // still have it, as runc does. With it, as late as possible.
  if (o.seccomp && !nnp) steps.push(...securitySteps(null, o.seccomp));
  steps.push(...identitySteps(proc, { setgroupsDenied, lastCap: o.host.lastCap, where }).steps);
  // After the identity steps: the kernel clears the parent-death signal when the uids, gids or
  // fs ids change, or capabilities grow (commit_creds). Before the seccomp filter of no_new_privs
  // and before REPORT_READY, which fails if the runtime died before the signal was set.
  if (isInit && o.dieWithRuntime)
    steps.push({ op: 'PARENT_DEATH_SIGNAL', args: [SIGKILL], what: 'die (SIGKILL) with the runtime process that launched it' });
  steps.push(...execSteps(proc));
  if (nnp) steps.push({ op: 'NO_NEW_PRIVS', args: [], what: 'set no_new_privs' });
  steps.push(...securitySteps(o.landlock ?? null, nnp ? (o.seccomp ?? null) : null));
  return steps;
}

export function buildCreatePlan(o: PlanOptions): BuiltPlan {
  const { cfg } = o;
  const proc = cfg.process!;
  const ns = planNamespaces(cfg);
  if (o.rootless && !ns.has('user'))
    throw new HakoError('config.json: linux.namespaces: a rootless container needs a user namespace (`hako spec --rootless` writes one)');
  const idmap = planIdMaps(cfg, o.host, o.rootless);
  const rootfs = path.resolve(o.bundle, cfg.root!.path);
  const ctx = {
    cfg,
    bundle: o.bundle,
    rootfs,
    rootless: o.rootless,
    // Devices are bound, not mknod'ed, in a new user namespace or when we already run in one (as runc does).
    userNs: ns.has('user') || !!o.host.inUserNs,
    newNet: ns.isNew('network'),
    newIpc: ns.isNew('ipc'),
    newCgroupNs: ns.isNew('cgroup'),
    idmap,
    noPivot: o.noPivot ?? false,
    // Without a mount namespace of its own (not listed: inherited), the rootfs is set up where the
    // runtime is and entered with chroot, as runc does: pivot_root would move everyone's root.
    sharedMountNs: !ns.has('mount'),
    cgroup2Unified: o.host.cgroup2Unified,
  };
  const { fds } = fdPlan(o);
  const steps: Step[] = [...ns.steps];
  // First in its namespaces, as runc's init does: nothing after runs with the caller's keyring.
  if (o.sessionKeyring) steps.push(keyringStep(o.sessionKeyring, ns.has('user') ? KEYRING_SEARCH.OTHERS : KEYRING_SEARCH.OWNER));
  if (cfg.linux?.mountLabel && !o.host.lsm?.selinux)
    throw new HakoError('config.json: linux.mountLabel: SELinux is not enabled on this host: remove the label or enable SELinux');
  steps.push(...planRootfs(ctx));
  const shimDir = o.shim ? shimContainerDir(cfg) : null;
  if (o.shim && shimDir) steps.push(...shimMountSteps(o.shim.hostDir, shimDir));
  const hooks = cfg.hooks;
  if (hooks?.prestart?.length || hooks?.createRuntime?.length || hooks?.createContainer?.length)
    steps.push({ op: 'HOOK_PAUSE', args: [HOOK_POINT.CREATE_RUNTIME], what: 'run the createRuntime and createContainer hooks' });
  if (proc.terminal && o.consoleSocket)
    steps.push({ op: 'CONSOLE_CONNECT', args: [o.consoleSocket], what: `connect to the console socket ${o.consoleSocket}` });
  // The runtime opens the fifo and hands it over: the init may not be allowed to open
  // the state dir (a user namespace that does not map the runtime's uid).
  const fifoFd = o.fifoPath ? fds.reduce((m, f) => Math.max(m, f.to + 1), 3) : -1;
  if (o.fifoPath) steps.push({ op: 'OPEN_FIFO', args: [fifoFd], what: `take the exec fifo ${o.fifoPath} (fd ${fifoFd})` });
  steps.push(...planPivot(ctx));
  // Sysctls before /proc/sys turns read-only (runc's order: sysctl, readonly and masked paths, read-only root).
  for (const [key, value] of Object.entries(cfg.linux?.sysctl ?? {})) {
    if (key.includes('..') || key.includes('/')) throw new HakoError(`config.json: linux.sysctl: "${key}" is not a sysctl name`);
    steps.push({ op: 'WRITE_FILE', args: [`/proc/sys/${key.replace(/\./g, '/')}`, value], what: `set sysctl ${key}` });
  }
  steps.push(...planFinalizeRootfs(ctx));
  // run.hako.network=none (the library's network: 'none'): a network namespace with nothing up, not even lo.
  if (ns.isNew('network') && cfg.annotations?.['run.hako.network'] !== 'none')
    steps.push({ op: 'LOOPBACK_UP', args: [], what: 'bring up the loopback interface' });
  // A uts namespace joined by path is the container's too: the name is set there (runc does).
  if (ns.has('uts')) {
    if (cfg.hostname !== undefined) steps.push({ op: 'SETHOSTNAME', args: [cfg.hostname], what: `set the hostname to "${cfg.hostname}"` });
    if (cfg.domainname !== undefined)
      steps.push({ op: 'SETDOMAINNAME', args: [cfg.domainname], what: `set the domain name to "${cfg.domainname}"` });
  } else if (cfg.hostname) {
    throw new HakoError('config.json: hostname: setting a hostname needs a uts namespace in linux.namespaces (new, or joined by path)');
  }
  const setgroupsDenied = idmap ? idmap.denySetgroups : !!o.joinedSetgroupsDenied;
  steps.push(...processSteps(proc, o, 'config.json: process', setgroupsDenied, true));
  if (shimDir) steps.push(shimCheckStep(shimDir));
  steps.push({ op: 'REPORT_READY', args: [], what: 'report the container created' });
  if (o.fifoPath) steps.push({ op: 'WAIT_FIFO', args: [], what: 'wait for start' });
  // startContainer hooks run inside the container once started, right before
  // the process; the state `start` wrote into the fifo is their stdin.
  for (const [i, h] of (cfg.hooks?.startContainer ?? []).entries()) {
    const argv = h.args?.length ? h.args : [h.path];
    // The executor runs it from one step, whose arguments are bounded (plan_ops.def).
    const strings = argv.length + (h.env?.length ?? 0);
    if (strings > maxVariadic('RUN_HOOK'))
      throw new HakoError(
        `config.json: hooks.startContainer[${i}]: args and env hold ${strings} strings together, more than the ${maxVariadic('RUN_HOOK')} a startContainer hook can take (it runs inside the container from one plan step of at most ${LIMIT.MAX_ARGS} arguments)`,
      );
    steps.push({
      op: 'RUN_HOOK',
      args: [h.timeout ?? 0, argv.length, h.path, ...argv.slice(1), ...(h.env ?? [])],
      what: `run the startContainer hook ${h.path}`,
    });
  }
  steps.push(finalExec(proc));
  // Rootless, the runtime writes the id maps through /proc/PID: the child is dumpable only while it does.
  const dumpableWhileMapped = !!idmap && o.rootless;
  return {
    cloneFlags: ns.cloneFlags,
    parentNamespaces: ns.parentNamespaces,
    parentNamespaceTypes: ns.parentNamespaceTypes,
    fds,
    steps,
    idmap,
    setgroupsDenied,
    dumpableWhileMapped,
    fifoFd,
  };
}

export interface ExecPlanOptions extends Omit<PlanOptions, 'fifoPath' | 'noPivot' | 'dieWithRuntime'> {
  /** The container's init pid: its namespaces are joined. */
  initPid: number;
  process: Process;
  /** The container's user namespace denies setgroups. */
  setgroupsDenied: boolean;
}

const JOIN_ORDER: Array<[string, number]> = [
  ['user', CLONE.NEWUSER],
  ['ipc', CLONE.NEWIPC],
  ['uts', CLONE.NEWUTS],
  ['net', CLONE.NEWNET],
  ['cgroup', CLONE.NEWCGROUP],
  ['pid', CLONE.NEWPID],
  ['time', CLONE.NEWTIME],
  ['mnt', CLONE.NEWNS],
];

/** exec: join every namespace the init is in (mount last), fork into its pid
 *  namespace, then the same process steps as the init. */
export function buildExecPlan(o: ExecPlanOptions, differs: (ns: string) => boolean): BuiltPlan {
  const steps: Step[] = [];
  // The console socket is a host path: connect before the mount namespace changes.
  if (o.process.terminal && o.consoleSocket)
    steps.push({ op: 'CONSOLE_CONNECT', args: [o.consoleSocket], what: `connect to the console socket ${o.consoleSocket}` });
  for (const [name, flag] of JOIN_ORDER) {
    if (!differs(name)) continue;
    const p = `/proc/${o.initPid}/ns/${name}`;
    steps.push({ op: 'SETNS', args: [p, flag], what: `join the container's ${name} namespace` });
  }
  steps.push({ op: 'FORK', args: [], what: "fork into the container's pid namespace" });
  // runc's exec joins the container's keyring by its name (found when the init made it
  // searchable for us), and leaves its permissions alone.
  if (o.sessionKeyring) steps.push(keyringStep(o.sessionKeyring, 0));
  const { fds } = fdPlan(o);
  steps.push(...processSteps(o.process, o, 'process', o.setgroupsDenied, false));
  steps.push({ op: 'REPORT_READY', args: [], what: 'report the process ready' });
  steps.push(finalExec(o.process));
  return {
    cloneFlags: 0,
    parentNamespaces: [],
    parentNamespaceTypes: [],
    fds,
    steps,
    idmap: null,
    setgroupsDenied: o.setgroupsDenied,
    dumpableWhileMapped: false,
    fifoFd: -1,
  };
}
