// hako's command line: runc's surface, so containerd, Docker and Podman can drive it.
import { Command, CommanderError } from 'commander';
import { HakoError } from '../errors.js';
import { makeLogger, reportError } from './log.js';
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
import { upCommand } from './commands/up.js';
import { psCommand } from './commands/ps.js';
import { pauseCommand } from './commands/pause.js';
import { resumeCommand } from './commands/resume.js';
import { updateCommand } from './commands/update.js';
import { eventsCommand } from './commands/events.js';
import { VERSION, COMMIT } from './version.js';

const program = new Command('hako')
  .description('a rootless OCI container runtime')
  .version(`hako version ${VERSION}\ncommit: ${COMMIT}\nspec: 1.2.0`, '-v, --version')
  .option('--root <dir>', 'state directory (default /run/hako, or $XDG_RUNTIME_DIR/hako rootless)')
  .option('--log <file>', 'log file (default stderr)')
  .option('--log-format <fmt>', 'text or json', 'text')
  .option('--debug', 'debug logging')
  .option('--rootless <mode>', 'true, false or auto (default auto: rootless when not root)')
  .option('--systemd-cgroup', 'accepted for compatibility; cgroupsPath slice:prefix:name is understood either way')
  .option('--criu <path>', 'accepted for compatibility (checkpointing is not supported)')
  .option('--cgroup-manager <name>', 'accepted for compatibility (cgroupfs, disabled)')
  .enablePositionalOptions()
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

for (const c of [createCommand, startCommand, stateCommand, killCommand, deleteCommand, runCommand, listCommand, specCommand, planCommand, execCommand, featuresCommand, psCommand, pauseCommand, resumeCommand, updateCommand, eventsCommand, upCommand])
  program.addCommand(c.exitOverride());

async function main(): Promise<void> {
  try {
    await program.parseAsync(process.argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode;
      return;
    }
    const g = program.opts();
    const log = makeLogger(g);
    const msg = e instanceof HakoError ? e.message : `internal error: ${(e as Error).stack ?? e}`;
    reportError(log, g.log, msg);
    process.exitCode = e instanceof HakoError ? e.exitCode : 2;
  }
}

await main();
