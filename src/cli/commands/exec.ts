import fs from 'node:fs';
import { Command } from 'commander';
import { callerPaths, context, intOption } from '../app.js';
import { exec, Container, parseJson, validateProcess, capMask, readInputFile, fileError, type Process } from '../../runtime/index.js';
import { HakoError } from '../../errors.js';
import { callerFd, fromCwd } from '../../sys/caller.js';

const collect = (v: string, prev: string[]) => [...prev, v];

/** The process to exec: --process FILE, or the container's own process with
 *  the command line and flags applied (runc's behaviour). */
function processFrom(o: Record<string, any>, args: string[], base: Process): Process {
  if (o.process) {
    const name = o.process === '-' ? 'stdin' : o.process;
    let text: string;
    if (o.process !== '-') text = readInputFile(fromCwd(o.process), `--process ${o.process}`);
    else {
      try {
        text = fs.readFileSync(callerFd(0), 'utf8');
      } catch (e) {
        throw new HakoError(`--process: cannot read stdin: ${fileError(e)}`);
      }
    }
    return validateProcess(parseJson(text, name));
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

export const execCommand = (): Command =>
  new Command('exec')
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
      const o = callerPaths(this.opts());
      const base = Container.load(ctx.store, id).config().process!;
      const proc = processFrom(o, command, base);
      process.exitCode = await exec(ctx, {
        id,
        process: proc,
        detach: o.detach,
        pidFile: o.pidFile,
        consoleSocket: o.consoleSocket,
        preserveFds: o.preserveFds,
      });
    });
