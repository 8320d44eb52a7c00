// One writer per data directory. Node has no flock(2), and a lock file with a pid in it is
// not enough: after a crash it is stale, and every container's server is pid 1, so a pid
// says nothing. The lock is a listening unix socket in the data directory:
//
//   - Alive means listening: connect() to it succeeds only while its server process lives
//     (the kernel closes the socket when the process dies, however it dies), and the holder
//     answers every connection with one line describing itself (pid, host, address, start).
//   - Exclusive: bind() of an existing path fails. A dead holder's socket file stays behind,
//     and removing it and binding again would race, so each taker binds the next generation,
//     lock.(N+1) above the highest lock.N, after finding every lock.* dead; of two takers
//     racing for one generation, bind lets one win.
//   - Checked after taking: once listening, the taker connects to every other lock.*; if one
//     answers, it lets go (someone took the directory meanwhile) and is refused; dead ones
//     are removed. Two racers may then both let go (each is refused; `hako up` restarts it
//     later), but two can never both hold it: whichever listened second sees the other alive.
//
// Unix sockets are found by their file, whatever the network or mount namespace, so this holds
// between bare servers and servers in containers sharing a data volume alike.
//
// Handover (docs/rollout.md): a server started by `hako rollout` has HAKO_HANDOVER_WAIT_MS set.
// Finding the lock held, it does not refuse: it writes "handover" on its first probe, and the
// holder answers that by stopping itself as on SIGTERM (stop accepting, finish in-flight
// requests, release the lock, exit). The taker polls until the lock is free, then takes it as
// usual, and only then loads the data and listens. The request comes when the new server is
// loaded and waiting, so the old one stops as late as it can. Anyone who may connect to the
// lock (the data directory's owner) may also signal the server: it grants nothing new.
import { readdir, rm } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';

const LOCK = /^lock\.(\d+)$/;
const PROBE_MS = 2_000;
const WAIT_ENV = 'HAKO_HANDOVER_WAIT_MS';
/** How often a waiting taker looks again: the longest it adds to the handover. */
const POLL_MS = 10;
const HANDOVER = 'handover';

export type Held = { held: string };
export type Lock = { path: string; release: () => Promise<void> };

/** What a connection to a lock file found: a live holder (and what it said), or nobody. */
async function probe(path: string, askHandover = false): Promise<{ alive: true; said: string } | { alive: false }> {
  return new Promise((resolve) => {
    let said = '';
    const socket = createConnection(path);
    const timer = setTimeout(() => socket.destroy(), PROBE_MS); // alive, but silent: say so
    let connected = false;
    socket.on('connect', () => {
      connected = true;
      if (askHandover) socket.write(`${HANDOVER}\n`);
    });
    socket.on('data', (d: Buffer) => (said += d.toString('utf8')));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(connected ? { alive: true, said: said.trim() } : { alive: false });
    });
    socket.on('error', () => {}); // ECONNREFUSED (dead holder) or ENOENT (removed meanwhile): close follows
  });
}

async function generations(dir: string): Promise<number[]> {
  return (await readdir(dir))
    .map((n) => LOCK.exec(n)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .sort((a, b) => b - a);
}

/** The holder's one line, as the sentence the refused server says. */
export function holderSentence(dir: string, said: string): string {
  let who = said || 'it did not say who it is';
  try {
    const h = JSON.parse(said) as { pid?: number; host?: string; listen?: string; since?: string };
    who = `pid ${h.pid} on host ${h.host}, ${h.listen ? `serving ${h.listen}` : 'starting'}, since ${h.since}`;
  } catch {
    // not JSON: quote it as it came
  }
  return `data directory ${dir} is in use by another hako FHIR server (${who}): a data directory has one writer, so stop that one first`;
}

/** HAKO_HANDOVER_WAIT_MS: how long to wait for a holder to hand over; 0 (unset) refuses at once. */
export function handoverWaitMs(env: NodeJS.ProcessEnv = process.env): number {
  const text = env[WAIT_ENV];
  if (text === undefined || text === '') return 0;
  if (!/^\d{1,9}$/.test(text)) throw new Error(`${WAIT_ENV}=${text} is not a number of milliseconds`);
  return Number(text);
}

/**
 * Takes the data directory's lock or says who holds it. describe() is asked at every
 * connection, so the line can say where the server listens once it does. With
 * HAKO_HANDOVER_WAIT_MS, a held lock is asked to hand over and waited for that long.
 */
export async function takeLock(dir: string, describe: () => string): Promise<Lock | Held> {
  const waitMs = handoverWaitMs();
  const deadline = Date.now() + waitMs;
  for (let asked = false; ; asked = true) {
    const got = await takeOnce(dir, describe, waitMs > 0 && !asked);
    if (!('held' in got) || Date.now() >= deadline) return got;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** The holder's side of a handover: stop as on SIGTERM (signals.ts and main.ts do the rest).
 *  Emitted, not sent: the seccomp policy refuses kill(2), and no system call is needed. */
function handOver(): void {
  process.stderr.write('hako-fhir: asked to hand the data directory over (a rollout): stopping\n');
  process.emit('SIGTERM', 'SIGTERM');
}

async function takeOnce(dir: string, describe: () => string, askHandover: boolean): Promise<Lock | Held> {
  for (let attempt = 0; ; attempt++) {
    const gens = await generations(dir);
    for (const gen of gens) {
      const found = await probe(join(dir, `lock.${gen}`), askHandover);
      if (found.alive) return { held: found.said };
    }
    const mine = (gens[0] ?? 0) + 1;
    const path = join(dir, `lock.${mine}`);
    let handingOver = false;
    const server = createServer((socket) => {
      socket.on('error', () => {});
      socket.on('data', (d: Buffer) => {
        if (handingOver || !d.toString('utf8').startsWith(HANDOVER)) return;
        handingOver = true;
        handOver();
      });
      socket.end(`${describe()}\n`);
    });
    const bound = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      server.once('error', resolve);
      server.listen(path, () => resolve(undefined));
    });
    if (bound) {
      if (bound.code === 'EADDRINUSE' && attempt < 20) continue; // another taker won this generation
      throw new Error(`cannot take the lock ${path}: ${bound.message}`);
    }
    server.unref();
    const release = (): Promise<void> => new Promise((resolve) => server.close(() => resolve())); // closing unlinks the path
    for (const gen of await generations(dir)) {
      if (gen === mine) continue;
      const other = join(dir, `lock.${gen}`);
      const found = await probe(other);
      if (found.alive) {
        await release();
        return { held: found.said };
      }
      await rm(other, { force: true });
    }
    return { path, release };
  }
}
