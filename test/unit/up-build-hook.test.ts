// A bundle's own build hook (package.json "hako.build"), run by `hako up` before serving: the
// declaration is checked (a path inside the bundle, also after symlinks), the hook runs as a
// real node process with its stderr said line by line, and a failure is one sentence.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildHookOf, ensureRootfs } from '../../src/up/rootfs.js';
import type { Config } from '../../src/oci/config.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function bundle(pkg: unknown, files: Record<string, string> = {}): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-hook-'));
  dirs.push(dir);
  if (pkg !== undefined) fs.writeFileSync(path.join(dir, 'package.json'), typeof pkg === 'string' ? pkg : JSON.stringify(pkg));
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

const cfg = { ociVersion: '1.2.0', root: { path: 'rootfs' } } as Config;

describe('the build hook declaration', () => {
  it('is optional: no package.json, or one without "hako.build"', () => {
    expect(buildHookOf(bundle(undefined))).toBeUndefined();
    expect(buildHookOf(bundle({ name: 'x' }))).toBeUndefined();
    expect(buildHookOf(bundle({ hako: { serves: 'x' } }))).toBeUndefined();
  });

  it('names the JSON path of what is wrong', () => {
    expect(() => buildHookOf(bundle('{'))).toThrow(/package\.json: not JSON/);
    expect(() => buildHookOf(bundle({ hako: 'build.mjs' }))).toThrow(/package\.json: hako: must be an object$/);
    expect(() => buildHookOf(bundle({ hako: { build: 7 } }))).toThrow(/hako\.build: must be a path inside the bundle$/);
    expect(() => buildHookOf(bundle({ hako: { build: 'b.mjs', serves: 1 } }))).toThrow(/hako\.serves: must be a string$/);
    expect(() => buildHookOf(bundle({ hako: { build: 'missing.mjs' } }))).toThrow(/hako\.build: "missing\.mjs" does not exist$/);
  });

  it('refuses a hook outside the bundle, by ../ or through a symlink, and a directory', () => {
    const outside = bundle(undefined, { 'evil.mjs': '', 'index.mjs': '' });
    const b = bundle({ hako: { build: `../${path.basename(outside)}/evil.mjs` } });
    expect(() => buildHookOf(b)).toThrow(/is not a file inside the bundle$/);
    const linked = bundle({ hako: { build: 'build/index.mjs' } });
    fs.symlinkSync(outside, path.join(linked, 'build'));
    expect(() => buildHookOf(linked)).toThrow(/hako\.build: "build\/index\.mjs" is not a file inside the bundle$/);
    expect(() => buildHookOf(bundle({ hako: { build: 'd' } }, { 'd/x': '' }))).toThrow(/is not a file inside the bundle$/);
  });
});

describe('running the hook', () => {
  it('runs node HOOK BUNDLE, says its stderr lines, and returns what the bundle serves', async () => {
    const b = bundle(
      { hako: { build: 'build.mjs', serves: 'test server' } },
      {
        'build.mjs':
          "import fs from 'node:fs'; console.error('making ' + process.argv[2]); fs.mkdirSync(process.argv[2] + '/rootfs', { recursive: true });",
      },
    );
    const said: string[] = [];
    expect(await ensureRootfs(b, cfg, (s) => said.push(s))).toBe('test server');
    expect(said).toEqual([`making ${b}`]);
    expect(fs.statSync(path.join(b, 'rootfs')).isDirectory()).toBe(true);
  });

  it('a failing hook is one sentence with its last line', async () => {
    const b = bundle(
      { hako: { build: 'build.mjs' } },
      { 'build.mjs': "console.error('step one'); console.error('no compiler here'); process.exit(3);" },
    );
    await expect(ensureRootfs(b, cfg, () => {})).rejects.toThrow(/^the bundle's build hook build\.mjs exited with 3: no compiler here$/);
  });

  it('a hook that builds nothing, and a bundle without hook or rootfs, are named', async () => {
    const b = bundle({ hako: { build: 'build.mjs' } }, { 'build.mjs': '' });
    await expect(ensureRootfs(b, cfg, () => {})).rejects.toThrow(
      /root\.path: ".*\/rootfs" is not a directory after the bundle's build hook ran$/,
    );
    await expect(ensureRootfs(bundle(undefined), cfg, () => {})).rejects.toThrow(
      /the bundle declares no build hook \(package\.json "hako\.build"\): build its root filesystem first$/,
    );
  });
});
