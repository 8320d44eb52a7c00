// `hako up` as tests drive it: started as root or as the test user with its output kept, waited
// on until it serves, and stopped as a user would when a test fails half-way.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { CLI, TEST_USER } from './env.js';
import { hako, testUserIds, type Who } from './hako.js';

export interface Up {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** `hako --root ROOT up BUNDLE ARGS…`; the child is added to `running` for stopAll. */
export function startUp(who: Who, bundle: string, root: string, args: string[], running: ChildProcess[]): Up {
  const argv = [CLI, '--root', root, 'up', bundle, ...args];
  const child =
    who === 'root'
      ? spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('setpriv', ['--reuid', TEST_USER, '--regid', TEST_USER, '--init-groups', '--reset-env', ...argv], {
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { PATH: process.env.PATH },
          cwd: os.tmpdir(),
        });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c));
  child.stderr!.on('data', (c: Buffer) => (err += c));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  running.push(child);
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Polls until test() holds; fails with up's output when up exits or time runs out. */
export async function until(what: string, up: Up, test: () => boolean, ms = 90_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!test()) {
    if (up.child.exitCode !== null || Date.now() > deadline)
      throw new Error(`${what} did not happen; stdout: ${up.stdout()} stderr: ${up.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const SERVING = /^FHIR server at (http:\/\/127\.0\.0\.1:(\d+)\/) \(hako container (\S+), (.*)\)$/m;

/** Waits for up's "FHIR server at URL (hako container ID, HOW)" line. */
export async function serving(up: Up): Promise<{ url: string; port: number; id: string; how: string }> {
  await until('serving', up, () => SERVING.test(up.stdout()));
  const [, url, port, id, how] = SERVING.exec(up.stdout())!;
  return { url: url!, port: Number(port), id: id!, how: how! };
}

/** For afterEach: SIGTERM (up stops its container), SIGKILL only if it has not ended in 20 s. */
export async function stopAll(running: ChildProcess[]): Promise<void> {
  for (const c of running.splice(0)) {
    if (c.exitCode !== null || c.signalCode !== null) continue;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    if ((await Promise.race([gone, new Promise((r) => setTimeout(() => r('late'), 20_000))])) === 'late') c.kill('SIGKILL');
  }
}

/** For afterEach of the tests that run `hako up` in a state root: stop the ups (stopAll), then
 *  delete any container a failed test left in ROOT and remove ROOT. */
export async function clearUps(running: ChildProcess[], root: string | undefined): Promise<void> {
  await stopAll(running);
  if (!root || !fs.existsSync(root)) return;
  for (const id of fs.readdirSync(root).filter((n) => !n.startsWith('.'))) hako('root', root, ['delete', '--force', id]);
  fs.rmSync(root, { recursive: true, force: true });
}

/** What a stopped up must not leave in its state root: container state dirs, its control socket
 *  (ROOT/.ID.up.sock). Other dot files are not up's (the planner's lock and socket). */
export function upLeftovers(root: string): string[] {
  return fs.readdirSync(root).filter((n) => !n.startsWith('.') || n.endsWith('.up.sock'));
}

/** Hands a tree to the test user (rootless runs build and write in it). */
export function chownTree(who: Who, dir: string): void {
  if (who !== 'rootless') return;
  const { uid, gid } = testUserIds();
  fs.chownSync(dir, uid, gid);
  for (const name of fs.readdirSync(dir, { recursive: true }) as string[]) fs.lchownSync(path.join(dir, name), uid, gid);
}
