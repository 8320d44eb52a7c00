// exec: a new process in a running container. It joins every namespace of
// the init (mount last) and forks into its pid namespace; it carries no host
// fd (all close-on-exec) and no host cwd (setns(mnt) then chdir).
import fs from 'node:fs';
import { HakoError } from '../errors.js';
import type { Process } from '../oci/config.js';
import { buildExecPlan, sessionKeyringName, type BuiltPlan } from '../plan/build.js';
import { readHostFacts } from '../host/facts.js';
import { processParent } from '../sys/process-parent.js';
import { fromCwd } from '../sys/caller.js';
import { launch, closeFd, type Launched } from './launch.js';
import { writeAtomic } from './store.js';
import { Container } from './container.js';
import { compileSecurity } from './security.js';
import { checkPreservedFds } from './activation.js';
import { sendSeccompListener } from './seccomp-listener.js';
import { waitAndForward, checkExec } from './wait.js';
import { execCgroupOf, cgroupTarget } from './cgroup.js';
import type { RuntimeContext } from './context.js';

export interface ExecOptions {
  id: string;
  process: Process;
  detach?: boolean;
  pidFile?: string;
  consoleSocket?: string;
  preserveFds?: number;
  extraFds?: Array<{ from: number; to: number }>;
}

function nsDiffers(pid: number) {
  return (name: string) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/ns/${name}`) !== fs.readlinkSync(`/proc/self/ns/${name}`);
    } catch {
      return false;
    }
  };
}

/** The process started and past setup, not yet waited for: the library waits for it itself
 *  (without the CLI's signal forwarding) and checks its exec with checkExec(plan, syncFd). */
export function launchExec(ctx: RuntimeContext, o: ExecOptions): { plan: BuiltPlan; launched: Launched } {
  checkPreservedFds(o.preserveFds);
  const c = Container.load(ctx.store, o.id);
  const status = c.status();
  if (status !== 'running' && status !== 'created') throw new HakoError(`cannot exec in container "${o.id}": it is ${status}`);
  const cfg = c.config();
  const security = compileSecurity(cfg, ctx.log, c.record.rootfs);
  const plan = buildExecPlan(
    {
      cfg,
      bundle: c.record.bundle,
      rootless: c.record.rootless,
      host: readHostFacts(),
      initPid: c.record.pid,
      process: o.process,
      setgroupsDenied: c.record.setgroupsDenied,
      consoleSocket: o.consoleSocket,
      preserveFds: o.preserveFds,
      extraFds: o.extraFds,
      seccomp: security.seccomp,
      landlock: security.landlock,
      sessionKeyring: c.record.noNewKeyring ? undefined : sessionKeyringName(c.record.id),
    },
    nsDiffers(c.record.pid),
  );
  // The exec'd process is our grandchild: become its subreaper to wait for it.
  if (!o.detach) processParent().setSubreaper();
  // A NOTIFY filter's fd goes to the agent too: the exec'd process's pid, the container's state.
  // Like runc, the process joins the container's cgroup (or the init's, below it): its limits, pause and kill --all cover it.
  const launched = launch(plan, {
    cgroup: cgroupTarget(execCgroupOf(c.record.cgroup, c.record.pid), ctx.log),
    onSeccompFd: (fd, pid) => sendSeccompListener(cfg, fd, pid, c.ociState()),
  });
  if (o.pidFile) writeAtomic(fromCwd(o.pidFile), String(launched.pid), 0o644);
  return { plan, launched };
}

export async function exec(ctx: RuntimeContext, o: ExecOptions): Promise<number> {
  const { plan, launched } = launchExec(ctx, o);
  if (o.detach) {
    closeFd(launched.syncFd);
    closeFd(launched.pidfd);
    return 0;
  }
  checkExec(plan, launched.syncFd);
  return waitAndForward(launched.pid, launched.pidfd);
}
