// doctor: what this host offers hako, and what is missing (src/host/doctor.ts decides).
import { Command } from 'commander';
import { globals } from '../app.js';
import { checks, formatChecks, gatherFacts, verdict } from '../../host/doctor.js';
import { STRICT_ENV } from '../../cgroups/index.js';

export const doctorCommand = new Command('doctor')
  .description(
    `check what this host offers hako (cgroups, user namespaces, id maps, seccomp, Landlock, overlayfs, state root); exit 1 when rootless containers cannot run (${STRICT_ENV}=1 makes missing cgroup limits an error at create)`,
  )
  .action(function (this: Command) {
    const cs = checks(gatherFacts(globals(this).root));
    const v = verdict(cs);
    process.stdout.write(formatChecks(cs) + v.line + '\n');
    process.exitCode = v.exitCode;
  });
