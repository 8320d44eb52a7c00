// What the planner serves, and what it hands back to the front (FALLBACK) so
// that today's path runs it: decided before anything is done, and only on
// what the call sent. When unsure, fall back: it only costs node's start.
import fs from 'node:fs';
import path from 'node:path';
import { defaultRoot } from '../runtime/index.js';
import { readBounded } from '../sys/bounded-read.js';
import { subcommand } from '../cli/run-cli.js';

/** The verbs a planner serves (the ones containerd, Docker and Podman call per container). */
export const SERVED = new Set(['create', 'start', 'run', 'exec', 'delete', 'kill', 'state', 'list', 'ps', 'features']);

export interface CallFacts {
  /** The front's pid, as the kernel gave it (SO_PEERCRED): 0 when it is not in our pid namespace. */
  pid: number;
  /** The words after `hako`. */
  args: string[];
  env: Record<string, string>;
  umask: number;
  /** The caller's working directory (absolute). */
  cwd: string;
}

export interface PlannerFacts {
  root: string;
  umask: number;
}

/** The value of a long or short option among args (`--x V`, `--x=V`, `-x V`), or undefined. */
function optionValue(args: string[], long: string, short?: string): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') break;
    if (a === long || (short && a === short)) found = args[i + 1];
    else if (a.startsWith(`${long}=`)) found = a.slice(long.length + 1);
  }
  return found;
}

/** The global flags: the words before the subcommand. */
function globalArgs(args: string[], verb: string): string[] {
  return args.slice(0, args.indexOf(verb));
}

/** Whether a config.json (or a process.json) asks for a terminal; undefined when it cannot be read. */
function wantsTerminal(file: string, isProcess: boolean): boolean | undefined {
  try {
    const j = JSON.parse(readBounded(file, file, 16 << 20).toString('utf8')) as {
      terminal?: unknown;
      process?: { terminal?: unknown };
    };
    return (isProcess ? j.terminal : j.process?.terminal) === true;
  } catch {
    return undefined;
  }
}

/** The caller's view of the system must be ours: its paths, pids and cgroups mean what they
 *  mean here (a caller in a private mount namespace, a chroot or a container sees others). */
const SAME = ['ns/mnt', 'ns/pid', 'ns/user', 'ns/cgroup', 'root'];

function otherWorld(pid: number): string | null {
  if (pid <= 0) return 'the caller is in another pid namespace';
  for (const what of SAME) {
    try {
      const theirs = fs.statSync(`/proc/${pid}/${what}`);
      const ours = fs.statSync(`/proc/self/${what}`);
      if (theirs.ino !== ours.ino || theirs.dev !== ours.dev) return `the caller's ${what} is not the planner's`;
    } catch {
      return `the caller's ${what} cannot be compared with the planner's`;
    }
  }
  return null;
}

/** null: serve the call; else why it falls back (for the planner's debug log and the tests). */
export function fallbackReason(call: CallFacts, planner: PlannerFacts): string | null {
  const verb = subcommand(call.args);
  if (verb === undefined || !SERVED.has(verb)) return `the verb ${verb ?? '(none)'} is not served`;
  const world = otherWorld(call.pid);
  if (world !== null) return world;
  if (call.umask !== planner.umask) return `the umask ${call.umask.toString(8)} is not the planner's`;
  if (call.env.LISTEN_FDS !== undefined) return 'socket activation (LISTEN_FDS) passes fds of the caller';
  const after = call.args.slice(call.args.indexOf(verb) + 1);
  const preserve = optionValue(after, '--preserve-fds');
  if (preserve !== undefined && preserve !== '0') return '--preserve-fds passes fds of the caller';

  // The root this call would use, as today's path would resolve it.
  const rootFlag = optionValue(globalArgs(call.args, verb), '--root');
  let root: string;
  try {
    root = rootFlag !== undefined ? path.resolve(call.cwd, rootFlag) : defaultRootFor(call.env);
  } catch {
    return 'the default state root cannot be resolved (today’s path says why)';
  }
  if (root !== planner.root) return `the state root ${root} is not the planner's`;

  // A terminal without --console-socket: hako's relay needs the caller's terminal.
  if ((verb === 'run' || verb === 'exec') && optionValue(after, '--console-socket') === undefined) {
    if (verb === 'run') {
      const bundle = optionValue(after, '--bundle', '-b') ?? '.';
      if (wantsTerminal(path.resolve(call.cwd, bundle, 'config.json'), false) !== false)
        return 'run of a process with a terminal (or an unreadable config) and no --console-socket';
    } else {
      const proc = optionValue(after, '--process', '-p');
      if (proc === '-') return 'exec --process - (the process is read from the caller)';
      // Any word that could be -t (a command's own flags too: falling back is only slower).
      if (after.some((a) => a === '--tty' || /^-[a-zA-Z]*t[a-zA-Z]*$/.test(a))) return 'exec --tty with no --console-socket';
      if (proc !== undefined && wantsTerminal(path.resolve(call.cwd, proc), true) !== false)
        return 'exec --process of a process with a terminal (or unreadable) and no --console-socket';
      // Without --process the container's own process.terminal is not inherited (runc's rule): -t decides.
    }
  }
  return null;
}

/** defaultRoot() under the call's environment (the worker's process.env is the call's by now). */
function defaultRootFor(env: Record<string, string>): string {
  const saved = process.env.XDG_RUNTIME_DIR;
  if (env.XDG_RUNTIME_DIR === undefined) delete process.env.XDG_RUNTIME_DIR;
  else process.env.XDG_RUNTIME_DIR = env.XDG_RUNTIME_DIR;
  try {
    return defaultRoot();
  } finally {
    if (saved === undefined) delete process.env.XDG_RUNTIME_DIR;
    else process.env.XDG_RUNTIME_DIR = saved;
  }
}
