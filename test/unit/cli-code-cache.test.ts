// bin/hako.cjs (today's node path behind the C front) hands V8 the code cache the build wrote. V8 rejects a cache for a
// source of another length, but checks nothing else: bin/hako.cjs must not hand it
// a cache made from another bundle of the same length, or stale code would run.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';
import Module from 'node:module';
import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, test } from 'vitest';
import { REPO } from '../helpers/env.js';

const bundle = path.join(REPO, 'dist/cli/hako.cjs');
const cacheFile = `${bundle}.v8cache`;
/** The V8 data after the cache's first line (the bundle's SHA-1). */
const v8Data = () => {
  const c = fs.readFileSync(cacheFile);
  return c.subarray(c.indexOf(10) + 1);
};
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-cache-test-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('the CLI code cache', () => {
  test('V8 accepts it for the bundle it was made from', () => {
    const script = new vm.Script(Module.wrap(fs.readFileSync(bundle, 'utf8')), { filename: bundle, cachedData: v8Data() });
    expect(script.cachedDataRejected).toBe(false);
  });

  test('a bundle changed but of the same length: bin/hako.cjs runs the new code, not the cached one', () => {
    // A copy of the tree: bin/hako.cjs, and the bundle with "hako version" spelt differently.
    fs.mkdirSync(path.join(tmp, 'bin'));
    fs.mkdirSync(path.join(tmp, 'dist/cli'), { recursive: true });
    fs.copyFileSync(path.join(REPO, 'bin/hako.cjs'), path.join(tmp, 'bin/hako.cjs'));
    fs.copyFileSync(path.join(REPO, 'bin/package.json'), path.join(tmp, 'bin/package.json'));
    for (const shared of ['build', 'node_modules', 'package.json']) fs.symlinkSync(path.join(REPO, shared), path.join(tmp, shared));
    const src = fs.readFileSync(bundle, 'utf8');
    expect(src).toContain('hako version');
    const changed = src.replace('hako version', 'hako VERSION');
    expect(changed.length).toBe(src.length);
    fs.writeFileSync(path.join(tmp, 'dist/cli/hako.cjs'), changed);
    fs.copyFileSync(cacheFile, path.join(tmp, 'dist/cli/hako.cjs.v8cache'));
    // V8 alone would take the old cache (and run the old string)…
    const script = new vm.Script(Module.wrap(changed), { filename: bundle, cachedData: v8Data() });
    expect(script.cachedDataRejected).toBe(false);
    // …bin/hako.cjs does not.
    expect(execFileSync(process.execPath, [path.join(tmp, 'bin/hako.cjs'), '--version'], { encoding: 'utf8' })).toMatch(/^hako VERSION /);
  });
});
