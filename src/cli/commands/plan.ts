import path from 'node:path';
import { Command } from 'commander';
import { context } from '../app.js';
import { loadBundleConfig, checkRootfs } from '../../runtime/create.js';
import { buildCreatePlan } from '../../plan/build.js';
import { readHostFacts } from '../../plan/host.js';
import { compileSecurity } from '../../runtime/security.js';
import type { Arg } from '../../plan/ops.js';

function show(a: Arg): unknown {
  if (typeof a === 'bigint') return `0x${a.toString(16)}`;
  if (a instanceof Uint8Array) return `<${a.length} bytes>`;
  return a;
}

export const planCommand = new Command('plan')
  .description('print the launch plan for a bundle: every step the container gets, in order')
  .option('-b, --bundle <dir>', 'the bundle directory', '.')
  .option('--no-pivot', 'plan for --no-pivot')
  .action(function (this: Command) {
    const ctx = context(this);
    const bundle = path.resolve(this.opts().bundle);
    const cfg = loadBundleConfig(bundle);
    checkRootfs(bundle, cfg);
    const sec = compileSecurity(cfg, ctx.log);
    const plan = buildCreatePlan({
      cfg, bundle, rootless: ctx.rootless, host: readHostFacts(), fifoPath: '<state dir>/exec.fifo',
      consoleSocket: cfg.process?.terminal ? '<console socket>' : undefined, noPivot: this.opts().pivot === false,
      seccomp: sec.seccomp, landlock: sec.landlock,
    });
    const out = {
      rootless: ctx.rootless,
      cloneFlags: `0x${plan.cloneFlags.toString(16)}`,
      parentNamespaces: plan.parentNamespaces,
      idmap: plan.idmap,
      fds: plan.fds,
      steps: plan.steps.map((s, i) => ({ n: i + 1, op: s.op, what: s.what, args: s.args.map(show) })),
    };
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  });
