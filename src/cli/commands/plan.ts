// plan: print the launch plan create would execute for a bundle, step by step: the same
// function create calls (socket activation and --preserve-fds included), so the audit
// cannot drift from what runs.
import { Command } from 'commander';
import { context, intOption } from '../app.js';
import { planContainer, activationFromEnvironment } from '../../runtime/index.js';
import type { Arg } from '../../plan/ops.js';
import { detect } from '../../cgroups/index.js';
import { hostLimitFacts, limitLayers } from '../../plan/limit-layers.js';

function show(a: Arg): unknown {
  if (typeof a === 'bigint') return `0x${a.toString(16)}`;
  if (a instanceof Uint8Array) return `<${a.length} bytes>`;
  return a;
}

export const planCommand = new Command('plan')
  .description('print the launch plan for a bundle: every step the container gets, in order')
  .option('-b, --bundle <dir>', 'the bundle directory', '.')
  .option('--no-pivot', 'plan for --no-pivot')
  .option('--console-socket <path>', 'plan for this console socket')
  .option('--preserve-fds <n>', 'plan for fds 3..3+n-1 passed to the container', intOption, 0)
  .action(function (this: Command) {
    const ctx = context(this);
    const o = this.opts();
    const activation = activationFromEnvironment(o.bundle, o.preserveFds);
    // Without --console-socket a terminal is what `hako run` gives it: its own socket.
    const { plan, cfg, shim } = planContainer(
      ctx,
      {
        bundle: o.bundle,
        noPivot: o.pivot === false,
        preserveFds: o.preserveFds,
        ...activation,
        consoleSocket: o.consoleSocket ?? "<hako run's console socket>",
      },
      '<state dir>/exec.fifo',
    );
    const out = {
      rootless: ctx.rootless,
      cloneFlags: `0x${plan.cloneFlags.toString(16)}`,
      parentNamespaces: plan.parentNamespaces,
      idmap: plan.idmap,
      fds: plan.fds,
      // Which layer holds each limit on this host: cgroup v2, cgroup v1, rlimit, shim, none.
      limits: limitLayers(cfg, hostLimitFacts(detect()), shim),
      steps: plan.steps.map((s, i) => ({ n: i + 1, op: s.op, what: s.what, args: s.args.map(show) })),
    };
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  });
