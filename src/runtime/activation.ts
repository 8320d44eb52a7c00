// Socket activation, its one home (systemd's protocol, runc's behaviour): the
// listening sockets sit at fds 3..3+N-1 of the container's process, with
// LISTEN_FDS=N and LISTEN_PID naming that process *as it sees itself*: pid 1,
// since it is the init of a new pid namespace. Pure: the CLI passes hako's env.
//
// Two ways in:
// - hako itself was socket-activated (LISTEN_FDS=N in its environment, LISTEN_PID
//   unset or hako's pid): those N fds go to the container first, then the
//   --preserve-fds ones after them, as runc does;
// - config.json's process.env declares LISTEN_FDS=N for fds passed with
//   --preserve-fds: LISTEN_PID is set for the container's process;
// - `hako up` owns the listening socket and hands it to the server at fd 3.
import fs from 'node:fs';
import type { Config } from '../oci/config.js';
import { HakoError } from '../errors.js';
import { fromCwd } from '../sys/caller.js';
import { loadBundleConfig } from './create.js';

export interface ActivationInput {
  /** hako's own environment. */
  env: Record<string, string | undefined>;
  /** hako's pid (LISTEN_PID of an activated runtime names it). */
  pid: number;
  /** --preserve-fds */
  preserveFds: number;
}

export interface Activation {
  cfg: Config;
  /** Fds from 3 on that the container gets: the activation ones and then the preserved ones. */
  preserveFds: number;
  /** Number of activation fds (0 when none). */
  listenFds: number;
}

const LISTEN_RE = /^LISTEN_(FDS|PID|FDNAMES)=/;

function count(v: string, what: string): number {
  if (!/^\d+$/.test(v)) throw new HakoError(`${what}: LISTEN_FDS="${v}" is not a number of fds`);
  return Number(v);
}

export function planSocketActivation(cfg: Config, inp: ActivationInput): Activation {
  const procEnv = cfg.process?.env ?? [];
  let listenFds = 0;
  let preserveFds = inp.preserveFds;
  let names: string | undefined;
  const own = inp.env.LISTEN_FDS;
  if (own !== undefined && own !== '' && (inp.env.LISTEN_PID === undefined || inp.env.LISTEN_PID === String(inp.pid))) {
    listenFds = count(own, "hako's environment");
    preserveFds += listenFds;
    names = inp.env.LISTEN_FDNAMES;
  } else {
    const declared = procEnv.find((e) => e.startsWith('LISTEN_FDS='));
    if (!declared) return { cfg, preserveFds, listenFds: 0 };
    listenFds = count(declared.slice('LISTEN_FDS='.length), 'config.json: process.env');
    if (listenFds > inp.preserveFds)
      throw new HakoError(`config.json: process.env: LISTEN_FDS=${listenFds} but --preserve-fds passes only ${inp.preserveFds} fd(s)`);
    names = procEnv.find((e) => e.startsWith('LISTEN_FDNAMES='))?.slice('LISTEN_FDNAMES='.length);
  }
  if (listenFds === 0) return { cfg, preserveFds, listenFds: 0 };
  const pidNs = cfg.linux?.namespaces?.find((n) => n.type === 'pid');
  if (!pidNs || pidNs.path)
    throw new HakoError(
      'config.json: linux.namespaces: socket activation needs a new pid namespace: LISTEN_PID must be the pid the process sees itself as (1 as the init of its own pid namespace)',
    );
  const env = [...procEnv.filter((e) => !LISTEN_RE.test(e)), `LISTEN_FDS=${listenFds}`, 'LISTEN_PID=1'];
  if (names !== undefined) env.push(`LISTEN_FDNAMES=${names}`);
  return { cfg: { ...cfg, process: { ...cfg.process!, env } }, preserveFds, listenFds };
}

/** create/run: the create options socket activation overrides: the config with
 *  LISTEN_FDS/LISTEN_PID=1 and the fds to hand on, or nothing when there is no
 *  activation (the bundle's config is then read as usual). */
export function activationFromEnvironment(bundle: string, preserveFds: number): { config?: Config; preserveFds?: number } {
  const own = process.env.LISTEN_FDS;
  const cfg = loadBundleConfig(fromCwd(bundle));
  const a = planSocketActivation(cfg, { env: process.env, pid: process.pid, preserveFds });
  if (!a.listenFds) return {};
  // Ours was consumed: a hook or child of hako must not see it as its own.
  if (own !== undefined) for (const k of ['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES']) delete process.env[k];
  return { config: a.cfg, preserveFds: a.preserveFds };
}

/** Fds hako passes in one SCM_RIGHTS message at most (the kernel's SCM_MAX_FD). */
const MAX_PASSED_FDS = 253;

/** --preserve-fds N (with any activation fds counted in): fds 3..3+N-1 must be open in hako,
 *  and few enough to pass on. Checked before anything is made: an fd that is not open was an
 *  E2BIG from the first step, a huge N a plan of billions of steps that never finished. */
export function checkPreservedFds(n: number | undefined, flag = '--preserve-fds'): void {
  if (!n) return;
  if (!Number.isSafeInteger(n) || n < 0) throw new HakoError(`${flag}: ${n} is not a number of fds`);
  if (n > MAX_PASSED_FDS) throw new HakoError(`${flag} ${n}: at most ${MAX_PASSED_FDS} fds can be passed to a container`);
  for (let fd = 3; fd < 3 + n; fd++) {
    try {
      fs.fstatSync(fd);
    } catch {
      throw new HakoError(`${flag} ${n}: fd ${fd} is not open (it passes fds 3 to ${2 + n}, which hako must have been given)`);
    }
  }
}

export const ACTIVATION_FD = 3;

/** `hako up`: the bundle's config with the activation environment for one socket. */
export function withSocketActivation(cfg: Config): Config {
  const namespaces = cfg.linux?.namespaces ?? [];
  const fresh = (type: string) => namespaces.some((n) => n.type === type && !n.path);
  if (!fresh('pid'))
    throw new HakoError('config.json: linux.namespaces: hako up needs a new pid namespace (the server must be pid 1 for LISTEN_PID)');
  // Root or not, up runs the container in a user namespace: its root is never the host's.
  if (!fresh('user')) throw new HakoError('config.json: linux.namespaces: hako up needs a new user namespace; add {"type": "user"}');
  const env = (cfg.process!.env ?? []).filter((e) => !LISTEN_RE.test(e));
  return { ...cfg, process: { ...cfg.process!, env: [...env, 'LISTEN_FDS=1', 'LISTEN_PID=1'] } };
}

/** `hako up`: where the runtime places the socket: our fd at the container's fd 3. */
export function listenerFds(listenerFd: number): Array<{ from: number; to: number }> {
  return [{ from: listenerFd, to: ACTIVATION_FD }];
}
