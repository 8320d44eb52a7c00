import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { context, intOption } from '../app.js';
import { exec } from '../../runtime/exec.js';
import { Container } from '../../runtime/container.js';
import { parseJson, validateProcess } from '../../spec/validate.js';
import { capMask } from '../../plan/capabilities.js';
import type { Config, Process } from '../../spec/config.js';
import { HakoError } from '../../errors.js';
import { loadBundleConfig } from '../../runtime/create.js';
import { planSocketActivation } from '../../plan/activation.js';

/**
 * create/run: socket activation (src/plan/activation.ts). Returns the create options
 * to override: the config with LISTEN_FDS/LISTEN_PID=1 and the fds to hand on, or
 * nothing when there is no activation (the bundle's config is then read as usual).
 */
export function activationFor(bundle: string, preserveFds: number): { config?: Config; preserveFds?: number } {
  const own = process.env.LISTEN_FDS;
  const cfg = loadBundleConfig(path.resolve(bundle));
  const a = planSocketActivation(cfg, { env: process.env, pid: process.pid, preserveFds });
  if (!a.listenFds) return {};
  // Ours was consumed: a hook or child of hako must not see it as its own.
  if (own !== undefined) for (const k of ['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES']) delete process.env[k];
  return { config: a.cfg, preserveFds: a.preserveFds };
}

const collect = (v: string, prev: string[]) => [...prev, v];

/** The process to exec: --process FILE, or the container's own process with
 *  the command line and flags applied (runc's behaviour). */
function processFrom(o: Record<string, any>, args: string[], base: Process): Process {
  if (o.process) {
    const text = o.process === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(o.process, 'utf8');
    return validateProcess(parseJson(text, o.process));
  }
  if (!args.length) throw new HakoError('exec needs a command, or --process FILE');
  const p: Process = { ...base, args, terminal: !!o.tty };
  if (o.cwd) p.cwd = o.cwd;
  if (o.env.length) p.env = [...(p.env ?? []).filter((e) => !o.env.some((n: string) => n.split('=')[0] === e.split('=')[0])), ...o.env];
  if (o.user) {
    const [u, g] = String(o.user).split(':');
    if (!/^\d+$/.test(u) || (g !== undefined && !/^\d+$/.test(g))) throw new HakoError(`--user: "${o.user}" must be UID[:GID]`);
    p.user = { ...p.user, uid: Number(u), gid: g !== undefined ? Number(g) : p.user.gid };
  }
  if (o.noNewPrivs) p.noNewPrivileges = true;
  if (o.cap.length) {
    capMask(o.cap, '--cap', 63);
    const caps = { ...(p.capabilities ?? {}) } as Record<string, string[]>;
    for (const set of ['bounding', 'effective', 'permitted', 'ambient', 'inheritable'])
      caps[set] = [...new Set([...(caps[set] ?? []), ...o.cap])];
    p.capabilities = caps;
  }
  return p;
}

export const execCommand = new Command('exec')
  .description('run a new process inside a running container')
  .argument('<id>', 'container id')
  .argument('[command...]', 'command and arguments')
  .option('-p, --process <file>', 'a process.json (runtime-spec Process) to run')
  .option('-d, --detach', 'do not wait for the process')
  .option('--pid-file <file>', "write the process's host pid here")
  .option('--console-socket <path>', 'unix socket that receives the pty master')
  .option('-t, --tty', 'allocate a pseudo-terminal (with --process, its terminal field decides)')
  .option('--cwd <dir>', 'working directory inside the container')
  .option('-e, --env <NAME=value>', 'set an environment variable', collect, [])
  .option('-u, --user <uid[:gid]>', 'run as this user')
  .option('-c, --cap <cap>', 'add a capability', collect, [])
  .option('--no-new-privs', 'set no_new_privs')
  .option('--preserve-fds <n>', 'pass fds 3..3+n-1 to the process', intOption, 0)
  // Everything after the id is the command: `hako exec ID sh -c x` must not read -c as --cap.
  .passThroughOptions()
  .action(async function (this: Command, id: string, command: string[]) {
    const ctx = context(this);
    const o = this.opts();
    const base = Container.load(ctx.store, id).config().process!;
    const proc = processFrom(o, command, base);
    process.exitCode = await exec(ctx, {
      id, process: proc, detach: o.detach, pidFile: o.pidFile, consoleSocket: o.consoleSocket, preserveFds: o.preserveFds,
    });
  });
