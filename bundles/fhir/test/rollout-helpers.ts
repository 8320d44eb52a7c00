// What the rollout tests in hako share: a FHIR bundle serving a given version, the running
// store key handed to the next version, the load generator (bench/rollout/load.mjs) and reading
// back what it was told was written.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { REPO } from '../../../test/helpers/env.js';
import { scratch, type Who } from '../../../test/helpers/hako.js';
import { chownTree } from '../../../test/helpers/up.js';
import { copyFhirBundle } from './copy.js';

const LOAD = path.join(REPO, 'bench/rollout/load.mjs');

/** A test file's processes (stopped after each test), scratch dirs and state root. */
export interface Rollouts {
  running: ChildProcess[];
  made: string[];
  root?: string;
}

/** A copy of the FHIR bundle serving VERSION, authorization off; `patch` edits its main.ts. */
export function rolloutBundle(
  t: Rollouts,
  who: Who,
  version: string,
  o: { env?: string[]; patch?: (main: string) => string } = {},
): string {
  const dir = scratch(who, `roll-${version}-`);
  t.made.push(dir);
  // HAKO_ROLL_FHIR_TREE: a bundle tree to prove this against (a commit's, while bundles/fhir is being edited).
  const tree = process.env.HAKO_ROLL_FHIR_TREE;
  if (tree) {
    for (const name of ['config.json', 'package.json', 'build', 'server'])
      fs.cpSync(path.join(tree, name), path.join(dir, name), { recursive: true });
    const file = path.join(dir, 'config.json');
    const cfg = JSON.parse(fs.readFileSync(file, 'utf8'));
    cfg.process.env.push('HAKO_FHIR_AUTH=off');
    fs.writeFileSync(file, JSON.stringify(cfg, null, 2));
  } else copyFhirBundle(dir, { auth: false });
  fs.writeFileSync(path.join(dir, 'server/version.ts'), `export const VERSION = '${version}';\n`);
  if (o.patch) {
    const main = path.join(dir, 'server/main.ts');
    const text = fs.readFileSync(main, 'utf8');
    const patched = o.patch(text);
    expect(patched).not.toBe(text);
    fs.writeFileSync(main, patched);
  }
  if (o.env) {
    const file = path.join(dir, 'config.json');
    const cfg = JSON.parse(fs.readFileSync(file, 'utf8'));
    cfg.process.env.push(...o.env);
    fs.writeFileSync(file, JSON.stringify(cfg, null, 2));
  }
  fs.mkdirSync(path.join(dir, 'data'), { mode: 0o700 });
  chownTree(who, dir);
  return dir;
}

/** A new version is deployed with the store's key (BUNDLE/secrets, made by the first build):
 *  without it the new server cannot open the store and the rollout rolls back. */
export function sameKey(from: string, to: string): void {
  fs.rmSync(path.join(to, 'secrets'), { recursive: true, force: true });
  if (fs.existsSync(path.join(from, 'secrets'))) execFileSync('cp', ['-a', path.join(from, 'secrets'), to]);
}

export interface LoadResult {
  /** [start ms since the load began, wait ms, 1 ok | 0 failed] */
  samples: [number, number, number][];
  failures: Record<string, number>;
  acked: string[];
}

/** The load generator, as root (a client on loopback); stop() ends it and reads what it saw. */
export function startLoad(t: Rollouts, url: string, out: string): { stop: () => Promise<LoadResult> } {
  const child = spawn(process.execPath, [LOAD, url, '4', out], { stdio: ['ignore', 'ignore', 'inherit'] });
  t.running.push(child);
  const exited = new Promise((r) => child.once('exit', r));
  return {
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      return JSON.parse(fs.readFileSync(out, 'utf8')) as LoadResult;
    },
  };
}

/** Every acknowledged write is there, read back 8 at a time (a search by many _ids is slow). */
export async function missing(url: string, ids: string[]): Promise<string[]> {
  const lost: string[] = [];
  for (let i = 0; i < ids.length; i += 8)
    await Promise.all(
      ids.slice(i, i + 8).map(async (id) => {
        const res = await fetch(`${url}Patient/${id}`);
        await res.arrayBuffer();
        if (res.status !== 200) lost.push(`${id} (HTTP ${res.status})`);
      }),
    );
  return lost;
}

/** The version the server reports in /metadata. */
export async function version(url: string): Promise<string> {
  return ((await (await fetch(`${url}metadata`)).json()) as { software: { version: string } }).software.version;
}
