// Hooks on real containers that do not read the state on their stdin: the
// operation never fails because of that (issue 10 B), only on an exit status.
import { describe, it, expect } from 'vitest';
import { hako, WHO, scratchForThisFile } from '../helpers/hako.js';
import { IS_ROOT } from '../helpers/env.js';

const { makeBundle } = scratchForThisFile();

describe.each(WHO)('hooks that ignore stdin (%s)', (who) => {
  const run = it.skipIf(who === 'root' && !IS_ROOT);

  run('50 `true` hooks at each of createRuntime and poststart never fail the run', () => {
    const trues = Array.from({ length: 50 }, () => ({ path: '/bin/true' }));
    const { bundle, root } = makeBundle(who, (c) => (c.hooks = { createRuntime: trues, poststart: trues }));
    for (let i = 0; i < 3; i++) {
      const r = hako(who, root, ['run', '-b', bundle, `t${i}`]);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    }
  });

  run('a `false` hook that ignores stdin fails the create with its exit status', () => {
    const { bundle, root } = makeBundle(who, (c) => (c.hooks = { createRuntime: [{ path: '/bin/false' }] }));
    const r = hako(who, root, ['run', '-b', bundle, 'f1']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toBe('hako: createRuntime hook /bin/false failed (exit status 1)\n');
  });
});
