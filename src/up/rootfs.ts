// The bundle's root filesystem. A bundle that builds its own declares a hook in its
// package.json — "hako": { "build": "FILE", "serves": "WHAT" } — and up runs `node FILE BUNDLE`
// first, as the calling user (the trust of `npm start`: it is the user's own bundle). The hook
// must be idempotent and cheap while its inputs are unchanged. Without a hook, root.path must
// already exist. hako itself knows nothing of any product: the FHIR bundle is one such hook.
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import type { Config } from '../oci/config.js';
import { HakoError } from '../errors.js';

export interface BuildHook {
  /** The hook's script, inside the bundle. */
  script: string;
  /** What the bundle serves, for the "serving at" line. */
  serves: string;
}

/** The bundle's declared hook, if any; a malformed declaration is an error naming its JSON path. */
export function buildHookOf(bundle: string): BuildHook | undefined {
  const file = path.join(bundle, 'package.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new HakoError(`${file}: ${(e as Error).message}`);
  }
  let pkg: unknown;
  try {
    pkg = JSON.parse(text);
  } catch (e) {
    throw new HakoError(`${file}: not JSON: ${(e as Error).message}`);
  }
  const decl = (pkg as { hako?: unknown })?.hako;
  if (decl === undefined) return undefined;
  if (typeof decl !== 'object' || decl === null || Array.isArray(decl)) throw new HakoError(`${file}: hako: must be an object`);
  const { build, serves } = decl as { build?: unknown; serves?: unknown };
  if (serves !== undefined && typeof serves !== 'string') throw new HakoError(`${file}: hako.serves: must be a string`);
  if (build === undefined) return undefined;
  if (typeof build !== 'string' || build === '') throw new HakoError(`${file}: hako.build: must be a path inside the bundle`);
  // Inside the bundle, also after symlinks: the hook is the bundle's own code, nothing else.
  const root = fs.realpathSync(bundle);
  let script: string;
  try {
    script = fs.realpathSync(path.resolve(bundle, build));
  } catch {
    throw new HakoError(`${file}: hako.build: "${build}" does not exist`);
  }
  if (!script.startsWith(root + path.sep) || !fs.statSync(script).isFile())
    throw new HakoError(`${file}: hako.build: "${build}" is not a file inside the bundle`);
  return { script, serves: serves ?? 'server' };
}

/** Runs the hook; its stderr lines are said as they come, and a failure ends with its last line. */
function runHook(hook: BuildHook, bundle: string, say: (sentence: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [hook.script, bundle], { stdio: ['ignore', 'ignore', 'pipe'] });
    let pending = '';
    let last = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (pending + chunk).split('\n');
      pending = lines.pop()!;
      for (const line of lines.filter(Boolean)) say((last = line));
    });
    child.on('error', (e) => reject(new HakoError(`running the bundle's build hook ${hook.script} failed: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (pending) say((last = pending));
      if (code === 0) return resolve();
      const how = signal ? `was killed by ${signal}` : `exited with ${code}`;
      reject(new HakoError(`the bundle's build hook ${path.relative(bundle, hook.script)} ${how}${last ? `: ${last}` : ''}`));
    });
  });
}

/** Builds (through the bundle's hook) or checks the rootfs; returns what the bundle serves. */
export async function ensureRootfs(bundle: string, cfg: Config, say: (sentence: string) => void): Promise<string> {
  const hook = buildHookOf(bundle);
  if (hook) await runHook(hook, bundle, say);
  const rootfs = path.resolve(bundle, cfg.root!.path);
  if (!fs.statSync(rootfs, { throwIfNoEntry: false })?.isDirectory())
    throw new HakoError(
      hook
        ? `config.json: root.path: "${rootfs}" is not a directory after the bundle's build hook ran`
        : `config.json: root.path: "${rootfs}" is not a directory, and the bundle declares no build hook (package.json "hako.build"): build its root filesystem first`,
    );
  return hook?.serves ?? 'server';
}
