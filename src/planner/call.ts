// One call, in a planner worker: the caller's environment, working directory
// and stdio put in place, the CLI run with the front as the process parent, the
// exit code sent back, and everything the call set undone, so nothing of it
// reaches the next call on this thread.
import fs from 'node:fs';
import { native, type PlannerCall } from '../sys/native.js';
import { useCaller } from '../sys/caller.js';
import { sleepMs } from '../sys/proc.js';
import { frontParent, useProcessParent } from '../sys/process-parent.js';
import { runCli } from '../cli/run-cli.js';
import { fallbackReason, type PlannerFacts } from './serves.js';

/** "NAME=value" strings as an environment (the first of a name wins, as getenv's does). */
function envOf(list: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of list) {
    const i = e.indexOf('=');
    if (i <= 0) continue;
    const k = e.slice(0, i);
    if (!(k in env)) env[k] = e.slice(i + 1);
  }
  return env;
}

/** Replaces process.env's contents (a worker's process.env is its own). */
function setEnv(env: Record<string, string>): void {
  for (const k of Object.keys(process.env)) delete process.env[k];
  Object.assign(process.env, env);
}

/** The caller's working directory, or null when it cannot be named (deleted, or not a path). */
function cwdOf(fd: number): string | null {
  try {
    const p = fs.readlinkSync(`/proc/self/fd/${fd}`);
    return p.startsWith('/') && !p.endsWith(' (deleted)') ? p : null;
  } catch {
    return null;
  }
}

type Write = typeof process.stdout.write;

/** All of buf to fd, waiting out a full non-blocking pipe; a closed one drops it (today's write would fail too). */
function writeAll(fd: number, buf: Uint8Array): void {
  for (let off = 0; off < buf.length;) {
    try {
      off += fs.writeSync(fd, buf, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') return;
      sleepMs(1);
    }
  }
}

/** process.stdout/stderr write to the call's fds 1 and 2, synchronously, until undone. */
function redirectOutput(stdout: number, stderr: number): () => void {
  const saved: Array<[NodeJS.WriteStream, Write]> = [];
  for (const [stream, fd] of [
    [process.stdout, stdout],
    [process.stderr, stderr],
  ] as const) {
    saved.push([stream, stream.write]);
    stream.write = ((chunk: string | Uint8Array, enc?: unknown, cb?: unknown) => {
      writeAll(fd, typeof chunk === 'string' ? Buffer.from(chunk, typeof enc === 'string' ? (enc as BufferEncoding) : 'utf8') : chunk);
      const done = typeof enc === 'function' ? enc : cb;
      if (typeof done === 'function') (done as () => void)();
      return true;
    }) as Write;
  }
  return () => {
    for (const [stream, write] of saved) stream.write = write;
  };
}

/** Serves one call (or hands it back) and closes every fd it brought. */
export async function serveCall(call: PlannerCall, planner: PlannerFacts, baseEnv: Record<string, string>): Promise<void> {
  let undoOutput: (() => void) | undefined;
  try {
    const env = envOf(call.env);
    const cwd = cwdOf(call.cwdFd);
    const args = call.argv.slice(1);
    const why =
      cwd === null ? 'the working directory has no name' : fallbackReason({ pid: call.pid, args, env, umask: call.umask, cwd }, planner);
    if (why !== null) {
      // HAKO_PLANNER_DEBUG: the caller is told why (the tests and a puzzled user).
      if (env.HAKO_PLANNER_DEBUG) writeAll(call.stdio[2], Buffer.from(`hako: the planner falls back: ${why}\n`));
      native.callFallback(call.conn);
      return;
    }
    native.callTaken(call.conn);
    setEnv(env);
    useCaller({ cwd: cwd!, stdio: call.stdio, pid: call.pid });
    useProcessParent(frontParent(call.conn));
    undoOutput = redirectOutput(call.stdio[1], call.stdio[2]);
    let code: number;
    try {
      code = await runCli(args);
    } catch {
      code = 2; // runCli reports its own failures: this is a bug in it
    }
    native.callExit(call.conn, code);
  } catch {
    // The front went away (EPIPE): it has said what it says then, and cleaned up after itself.
  } finally {
    undoOutput?.();
    useProcessParent(undefined);
    useCaller(undefined);
    setEnv(baseEnv);
    process.exitCode = undefined;
    for (const fd of [call.cwdFd, ...call.stdio, call.conn]) native.closeFd(fd);
  }
}
