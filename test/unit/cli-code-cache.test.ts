// bin/hako hands V8 the code cache the build wrote: a cache V8 rejects (built
// from another source, or by another node) would silently cost every call
// the compile again.
import fs from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import Module from 'node:module';
import { describe, expect, test } from 'vitest';
import { REPO } from '../helpers/env.js';

const bundle = path.join(REPO, 'dist/cli/hako.cjs');

describe('the CLI bundle', () => {
  test('has a code cache that V8 accepts for it', () => {
    const cachedData = fs.readFileSync(`${bundle}.v8cache`);
    const script = new vm.Script(Module.wrap(fs.readFileSync(bundle, 'utf8')), { filename: bundle, cachedData });
    expect(script.cachedDataRejected).toBe(false);
  });

  test('V8 checks the cache against the source: one changed character and it is rejected', () => {
    const script = new vm.Script(Module.wrap(`${fs.readFileSync(bundle, 'utf8')}\n// changed`), { filename: bundle, cachedData: fs.readFileSync(`${bundle}.v8cache`) });
    expect(script.cachedDataRejected).toBe(true);
  });
});
