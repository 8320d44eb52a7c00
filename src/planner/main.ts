// The planner (dist/cli/planner.cjs --root ROOT): a warm hako for one uid and one
// state root, started by the front (bin/hako) on a call it could not connect for.
// It decides; the front executes (native/front/protocol.h). It holds nothing a
// fresh process would not see: the state root, with its locks, stays the truth.
import fs from 'node:fs';
import path from 'node:path';
import { native, LOCK_EX } from '../sys/native.js';
import { Store } from '../runtime/index.js';
import { Pool } from './pool.js';

const LOCK_NB = 4;
const ROOT_CHECK_MS = 2000;

function rootArg(argv: string[]): string | undefined {
  const i = argv.indexOf('--root');
  return i >= 0 ? argv[i + 1] : undefined;
}

function main(): void {
  // Each call waiting for its container holds a thread of the pool (waitVia): room for all of them.
  process.env.UV_THREADPOOL_SIZE ??= '40';
  const store = new Store(rootArg(process.argv.slice(2)));
  // Not the first caller's directory: a planner must not keep it busy (a umount, a removed dir).
  process.chdir('/');
  let root: string;
  try {
    // A root removed since the call that started us is not made again by a planner no one calls.
    if (!fs.existsSync(store.root)) process.exit(0);
    store.ensureRoot(); // the runtime's rules: ours, not writable by others
    root = store.root;
  } catch {
    process.exit(1);
  }
  // One planner per root: the lock is held for the planner's life.
  const lockFd = fs.openSync(path.join(root, '.planner.lock'), fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600);
  try {
    native.flock(lockFd, LOCK_EX | LOCK_NB);
  } catch {
    process.exit(0); // another planner lives
  }
  const sock = path.join(root, '.planner.sock');
  const listenFd = native.plannerListen(sock);
  const own = fs.lstatSync(sock);
  const ours = () => {
    const st = fs.lstatSync(sock, { throwIfNoEntry: false });
    return !!st && st.ino === own.ino && st.dev === own.dev;
  };
  const idleMs = Number(process.env.HAKO_PLANNER_IDLE_MS) > 0 ? Number(process.env.HAKO_PLANNER_IDLE_MS) : 30_000;

  let stopped = false;
  const pool = new Pool(new URL('./planner-worker.cjs', import.meta.url), { listenFd, root, umask: process.umask() }, () =>
    process.exit(0),
  );
  const stop = () => {
    if (stopped) return;
    stopped = true;
    clearInterval(idleTimer);
    clearInterval(rootTimer);
    if (ours()) fs.rmSync(sock, { force: true });
    native.plannerShutdown(listenFd);
    fs.closeSync(lockFd); // a new planner may start while the last calls end
    pool.stop();
  };
  const idleTimer = setInterval(
    () => {
      if (pool.inFlight === 0 && Date.now() - pool.lastActivity >= idleMs) stop();
    },
    Math.min(ROOT_CHECK_MS, Math.max(50, idleMs / 4)),
  );
  // The root removed (or the socket replaced): this planner serves nothing any more.
  const rootTimer = setInterval(() => {
    if (!ours()) stop();
  }, ROOT_CHECK_MS);
  process.on('SIGTERM', stop);
}

main();
