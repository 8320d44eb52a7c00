// `hako plan` is the audit of what a container gets: it must print the very plan `create`
// executes. It used to build its own (no rootfs for Landlock's checks, no --preserve-fds, no
// socket activation), so it could show rules create drops and miss fds create hands on.
import { describe, it, expect } from 'vitest';
import { scratchForThisFile, hako, WHO } from '../helpers/hako.js';
import { IS_ROOT } from '../helpers/env.js';

const { makeBundle } = scratchForThisFile();
const LL = 'run.hako.landlock.';

interface Printed {
  fds: Array<{ from: number; to: number }>;
  steps: Array<{ op: string; args: unknown[] }>;
}

describe.each(WHO)('hako plan prints the plan create runs (%s)', (who) => {
  const run = it.skipIf(who === 'root' && !IS_ROOT);

  run('a Landlock path missing from the rootfs is dropped in the plan as in create', () => {
    const { bundle, root } = makeBundle(who, (c) => {
      c.annotations = { [`${LL}fs.ro`]: '/:/nope' };
    });
    const r = hako(who, root, ['plan', '-b', bundle]);
    expect(r.status).toBe(0);
    const plan = JSON.parse(r.stdout) as Printed;
    const paths = plan.steps.filter((s) => s.op === 'LANDLOCK_PATH').map((s) => s.args[1]);
    expect(paths).toEqual(['/']);
    expect(r.stderr).toContain(`${LL}fs.ro: /nope does not exist in the container, its rule was dropped`);
  });

  run('--preserve-fds: the fds create hands on are in the plan', () => {
    const { bundle, root } = makeBundle(who);
    const plan = JSON.parse(hako(who, root, ['plan', '-b', bundle, '--preserve-fds', '2']).stdout) as Printed;
    expect(plan.fds).toEqual([
      { from: 3, to: 3 },
      { from: 4, to: 4 },
    ]);
    const fifo = plan.steps.find((s) => s.op === 'OPEN_FIFO')!;
    expect(fifo.args).toEqual([5]);
  });
});
