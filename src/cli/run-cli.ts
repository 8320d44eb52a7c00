// hako's command line: runc's surface, so containerd, Docker and Podman can drive it. A fresh
// program per call: a planner (src/planner/) runs many calls in one process, and commander keeps
// the values it parsed on its commands.
import { createRequire } from 'node:module';
import { Command, CommanderError } from 'commander';
import { HakoError } from '../errors.js';
import { closeLogs, makeLogger, openLog, reportError } from './log.js';
import { createCommand } from './commands/create.js';
import { startCommand } from './commands/start.js';
import { stateCommand } from './commands/state.js';
import { killCommand } from './commands/kill.js';
import { deleteCommand } from './commands/delete.js';
import { runCommand } from './commands/run.js';
import { listCommand } from './commands/list.js';
import { specCommand } from './commands/spec.js';
import { planCommand } from './commands/plan.js';
import { execCommand } from './commands/exec.js';
import { featuresCommand } from './commands/features.js';
import { psCommand } from './commands/ps.js';
import { pauseCommand } from './commands/pause.js';
import { resumeCommand } from './commands/resume.js';
import { updateCommand } from './commands/update.js';
import { eventsCommand } from './commands/events.js';
import { doctorCommand } from './commands/doctor.js';
import { signCommand } from './commands/sign.js';
import { verifyCommand } from './commands/verify.js';
import { VERSION, COMMIT } from './version.js';

// commander's usage errors are one line too: its "(Did you mean create?)" joins the error's line.
const OUTPUT = {
  writeErr: (s: string) => process.stderr.write(s),
  outputError: (s: string, write: (s: string) => void) => write(s.replace(/\n(?!$)/g, ' ')),
};

// `up` and `profile` bring the socket, HTTP, agent and rootfs-building modules
// that no runc verb needs: they are loaded only when asked for (or for help), by
// names the CLI bundler leaves alone (dist/cli/commands/*.js beside the bundle).
const LAZY: Record<string, { module: string; name: string }> = {
  up: { module: './commands/up.js', name: 'upCommand' },
  rollout: { module: './commands/rollout.js', name: 'rolloutCommand' },
  profile: { module: './commands/profile.js', name: 'profileCommand' },
  keys: { module: './commands/keys.js', name: 'keysCommand' },
  seal: { module: './commands/seal.js', name: 'sealCommand' },
  open: { module: './commands/open.js', name: 'openCommand' },
};
const GLOBAL_VALUE_FLAGS = new Set(['--root', '--log', '--log-format', '--rootless', '--criu', '--cgroup-manager']);

/** The subcommand's name: the first word that is not a global flag or its value. */
export function subcommand(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    if (GLOBAL_VALUE_FLAGS.has(argv[i])) i++;
    else if (!argv[i].startsWith('-')) return argv[i];
  }
  return undefined;
}

function makeProgram(): Command {
  const program = new Command('hako')
    .description('a rootless OCI container runtime')
    .version(`hako version ${VERSION}\ncommit: ${COMMIT}\nspec: 1.2.0`, '-v, --version')
    .option(
      '--root <dir>',
      'state directory, owned by you and not writable by others (default /run/hako as root; rootless $XDG_RUNTIME_DIR/hako, else /run/user/UID/hako, else ~/.local/state/hako)',
    )
    .option('--log <file>', 'log file (default stderr)')
    .option('--log-format <fmt>', 'text or json', 'text')
    .option('--debug', 'debug logging')
    .option('--rootless <mode>', 'true, false or auto (default auto: rootless when not root)')
    .option('--systemd-cgroup', 'accepted for compatibility; cgroupsPath slice:prefix:name is understood either way')
    .option('--criu <path>', 'accepted for compatibility (checkpointing is not supported)')
    .option('--cgroup-manager <name>', 'accepted for compatibility (cgroupfs, disabled)')
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput(OUTPUT);

  // The global flags' values, checked before any verb acts (runc refuses these too), and the
  // log opened, so a --log that cannot be written is one sentence before anything is done.
  program.hook('preAction', () => {
    const g = program.opts();
    if (g.logFormat !== 'text' && g.logFormat !== 'json') throw new HakoError(`--log-format: "${g.logFormat}" is not text or json`);
    if (g.rootless !== undefined && !['true', 'false', 'auto'].includes(g.rootless))
      throw new HakoError(`--rootless: "${g.rootless}" is not true, false or auto`);
    if (g.log !== undefined) {
      if (g.log === '') throw new HakoError('--log: the file name is empty');
      openLog(g.log);
    }
  });

  for (const c of [
    createCommand(),
    startCommand(),
    stateCommand(),
    killCommand(),
    deleteCommand(),
    runCommand(),
    listCommand(),
    specCommand,
    planCommand,
    execCommand(),
    featuresCommand(),
    psCommand(),
    pauseCommand,
    resumeCommand,
    updateCommand,
    eventsCommand,
    doctorCommand,
    signCommand,
    verifyCommand,
  ])
    program.addCommand(c.exitOverride().configureOutput(OUTPUT));
  return program;
}

/** Runs one hako command line (the words after `hako`) and gives back its exit code. */
export async function runCli(args: string[]): Promise<number> {
  const program = makeProgram();
  const sub = subcommand(args);
  const wantsHelp = sub === 'help' || (sub === undefined && !args.some((a) => a === '-v' || a === '--version'));
  process.exitCode = undefined;
  try {
    await parse(program, args, sub, wantsHelp);
    return Number(process.exitCode ?? 0);
  } finally {
    process.exitCode = undefined;
    closeLogs();
  }
}

async function parse(program: Command, args: string[], sub: string | undefined, wantsHelp: boolean): Promise<void> {
  try {
    // require() of an ES module (Node >= 20.19): the bundle is CommonJS, and a
    // dynamic import() would need the V8 code cache's loader to carry a callback.
    for (const [verb, lazy] of Object.entries(LAZY)) {
      if (sub !== verb && !wantsHelp) continue;
      const command = (createRequire(import.meta.url)(lazy.module) as Record<string, Command>)[lazy.name]!;
      program.addCommand(command.exitOverride().configureOutput(OUTPUT));
      // commander sets these on a command only: the subcommands of `profile` need them too.
      for (const c of command.commands) c.exitOverride().configureOutput(OUTPUT);
    }
    await program.parseAsync(args, { from: 'user' });
  } catch (e) {
    // By name, not instanceof: `up` is loaded from outside the bundle with its
    // own copies of commander and of hako's error class.
    const name = (e as Error)?.name;
    const g = program.opts();
    const log = makeLogger(g);
    if (e instanceof CommanderError || name === 'CommanderError') {
      // commander printed its usage line (or the help) already; a failure also gets its
      // own line in --log, as every failure does (containerd reads the last error there).
      const c = e as CommanderError;
      process.exitCode = c.exitCode;
      if (c.exitCode !== 0 && g.log && !['commander.help', 'commander.helpDisplayed', 'commander.version'].includes(c.code)) {
        try {
          log.error(
            c.message
              .replace(/^error: /, '')
              .replace(/[\r\n]+/g, ' ')
              .trim(),
          );
        } catch {
          // the log cannot be written: commander's line on stderr is all there is
        }
      }
      return;
    }
    const ours = e instanceof HakoError || name === 'HakoError';
    // Not ours: a bug, or a failure no sentence was written for. The stack only with --debug.
    reportError(log, g.log, ours ? (e as Error).message : `internal error: ${e instanceof Error ? e.message : String(e)}`);
    if (!ours && g.debug && e instanceof Error && e.stack) process.stderr.write(e.stack + '\n');
    process.exitCode = ours ? (e as HakoError).exitCode : 2;
  }
}
