// The README's vitest example, as written there, run by a vitest of its own (rootless and
// as root): `hako/vitest` resolves to the built package, the rootfs is the test busybox tree.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, it, expect } from 'vitest';
import { BUSYBOX_ROOTFS, IS_ROOT, REPO } from '../helpers/env.js';
import { scratchForThisFile, WHO } from '../helpers/hako.js';
import { nodeAs } from './scenario.js';

const { scratch } = scratchForThisFile();

function readmeExample(): string {
  const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Use it from a test suite'));
  const m = /```ts\n([\s\S]*?)```/.exec(section);
  if (!m) throw new Error('README.md: no ```ts block under "Use it from a test suite"');
  return m[1]!;
}

describe.skipIf(!IS_ROOT).each(WHO)("README's test-suite example (%s)", (who) => {
  it('passes as written, and leaves nothing', () => {
    const code = readmeExample();
    expect(code).toContain("from 'hako/vitest'");
    const dir = scratch(who, 'hrn-readme-');
    fs.writeFileSync(path.join(dir, 'readme.spec.ts'), code.replaceAll('/srv/rootfs/busybox', BUSYBOX_ROOTFS));
    // The container's state goes to a root of this test's own (the default would be $XDG_RUNTIME_DIR/hako).
    fs.writeFileSync(path.join(dir, 'vitest.config.mjs'), `export default { test: { include: ['readme.spec.ts'] }, cacheDir: 'cache' };\n`);
    fs.mkdirSync(path.join(dir, 'state'));
    if (who === 'rootless')
      for (const f of ['readme.spec.ts', 'vitest.config.mjs', 'state']) fs.chownSync(path.join(dir, f), ...owner(dir));
    const root = who === 'root' ? '/run/hako' : path.join(dir, 'state/hako');
    const listing = () => (fs.existsSync(root) ? fs.readdirSync(root).filter((f) => f.startsWith('hako-')) : []);
    const before = listing();
    const env = { PATH: process.env.PATH!, HOME: dir, NO_COLOR: '1', XDG_RUNTIME_DIR: path.join(dir, 'state') };
    const [cmd, argv] = nodeAs(who, [path.join(REPO, 'node_modules/vitest/vitest.mjs'), 'run', '--configLoader', 'runner'], env);
    const r = spawnSync(cmd, argv, { encoding: 'utf8', cwd: dir, env, timeout: 120_000 });
    expect(r.stdout + r.stderr).toMatch(/Tests\s+1 passed/);
    expect(r.status).toBe(0);
    expect(listing().filter((f) => !before.includes(f))).toEqual([]);
  });
});

function owner(dir: string): [number, number] {
  const st = fs.statSync(dir);
  return [st.uid, st.gid];
}
