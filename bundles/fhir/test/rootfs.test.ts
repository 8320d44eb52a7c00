import { execFileSync } from 'node:child_process';
import { cp, mkdtemp, rm, stat, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFhirRootfs, buildFhirTree } from '../build/rootfs.js';
import { parseLdd } from '../build/shared-libs.js';
import { treeManifest } from '../build/tree.js';

const BUNDLE = join(import.meta.dirname, '..');
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'hako-rootfs-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('ldd output', () => {
  it('gives the libraries and the loader, skipping the vDSO', () => {
    const out = [
      '\tlinux-vdso.so.1 (0x00007ffd5a1f2000)',
      '\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f956d400000)',
      '\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f956d13e000)',
      '\t/lib64/ld-linux-x86-64.so.2 (0x00007f956d687000)',
      '',
    ].join('\n');
    expect(parseLdd('/usr/bin/node', out)).toEqual([
      '/lib/x86_64-linux-gnu/libc.so.6',
      '/lib/x86_64-linux-gnu/libstdc++.so.6',
      '/lib64/ld-linux-x86-64.so.2',
    ]);
  });

  it('names a library the loader cannot find', () => {
    expect(() => parseLdd('/usr/bin/node', '\tlibuv.so.1 => not found\n')).toThrow(
      '/usr/bin/node needs libuv.so.1, which the dynamic loader cannot find',
    );
  });
});

describe('the FHIR root filesystem', () => {
  it('is the same tree, byte for byte and time for time, when built twice', async () => {
    await buildFhirTree({ bundleDir: BUNDLE, outDir: join(work, 'a') });
    await buildFhirTree({ bundleDir: BUNDLE, outDir: join(work, 'b') });
    const a = await treeManifest(join(work, 'a'));
    expect(a).toEqual(await treeManifest(join(work, 'b')));
    expect(new Set(a.map((e) => e.mtime))).toEqual(new Set([Date.UTC(2000, 0, 1)]));
  });

  it('holds the server, its definitions, node with its libraries and the mount points, and no shell', async () => {
    const manifest = await treeManifest(join(work, 'a'));
    const paths = manifest.map((e) => e.path);
    expect(paths.filter((p) => !p.includes('/'))).toEqual([
      'data',
      'definitions',
      'dev',
      'etc',
      'lib',
      'lib64',
      'node',
      'proc',
      'run',
      'server.js',
      'sys',
      'tmp',
    ]);
    expect(paths).toContain('lib64/ld-linux-x86-64.so.2');
    expect(paths.filter((p) => p.startsWith('definitions/'))).toEqual([
      'definitions/profiles-resources.json',
      'definitions/profiles-types.json',
      'definitions/search-parameters.json',
    ]);
    expect(paths.filter((p) => /(^|\/)(sh|bash|dash|busybox|apt|npm)$/.test(p))).toEqual([]);
    expect(manifest.find((e) => e.path === 'tmp')?.mode).toBe('1777');
    expect(manifest.find((e) => e.path === 'node')?.mode).toBe('755');
  });

  it('runs node on its own, with nothing from the host', () => {
    const out = execFileSync('unshare', ['-r', 'chroot', join(work, 'a'), '/node', '-e', 'console.log(1 + 1)'], {
      env: { PATH: process.env.PATH },
    });
    expect(out.toString()).toBe('2\n');
  });

  it('is rebuilt only when an input changed', async () => {
    const bundleDir = join(work, 'bundle');
    await cp(join(BUNDLE, 'server'), join(bundleDir, 'server'), { recursive: true });
    const logged: string[] = [];
    const log = (s: string): void => void logged.push(s);

    await buildFhirRootfs({ bundleDir, log });
    // The store's data key is made once, with the first build (build/secrets.ts).
    expect(logged).toEqual([
      `made the FHIR store's data key ${join(bundleDir, 'secrets', 'fhir-store.key')} (keep a copy apart from the data: without it the store cannot be read)`,
      `building the FHIR root filesystem in ${join(bundleDir, 'rootfs')}`,
    ]);
    const first = (await stat(join(bundleDir, 'rootfs'))).ino;

    await buildFhirRootfs({ bundleDir, log });
    expect(logged).toHaveLength(2);
    expect((await stat(join(bundleDir, 'rootfs'))).ino).toBe(first);

    await utimes(join(bundleDir, 'server', 'main.ts'), new Date(), new Date());
    await buildFhirRootfs({ bundleDir, log });
    expect(logged).toHaveLength(3);
  });
});
