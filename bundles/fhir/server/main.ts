// hako's FHIR R4 server: configuration from the environment, the data directory's lock,
// loading (snapshot and journal), listening (socket activation or an address), and a prompt,
// clean stop on SIGTERM/SIGINT at any moment.
//
//   HAKO_FHIR_DATA            data directory (default /data)
//   HAKO_FHIR_LISTEN          host:port when not socket-activated (default 127.0.0.1:8080)
//   HAKO_FHIR_DEFINITIONS     FHIR definitions directory (default: "definitions" beside this file)
//   HAKO_FHIR_SNAPSHOT_BYTES  journal bytes after which a snapshot is written (default 8 MiB,
//                             and at least the last snapshot's size)
//   HAKO_FHIR_AUTH            on (default): SMART on FHIR authorization (server/auth); off: none
//   HAKO_FHIR_KEY_FILE        the data key's file (a read-only secret): the store is encrypted;
//                             unset: a plain store (the default)
//   LISTEN_FDS, LISTEN_PID    systemd socket activation: serve on fd 3
import { onStop } from './signals.js'; // first: the signal handlers exist before anything else loads
import { FhirRouter } from '@medplum/fhir-router';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { capabilityStatement } from './capability.js';
import { loadDefinitions } from './definitions.js';
import { AuthService } from './auth/index.js';
import { addHistoryRoutes } from './history.js';
import { fhirHandler } from './http.js';
import { drainable } from './drain.js';
import { holderSentence, takeLock, type Lock } from './lock.js';
import { DurableRepository } from './repository.js';
import { loadDataKey } from './data-key.js';
import { openStoreIdentity } from './store-identity.js';
import { serveBackups } from './backup-socket.js';

const NAME = 'hako-fhir';
import { VERSION } from './version.js';
/** In-flight requests get this long to finish after a stop signal; then their connections are cut. */
const DRAIN_MS = 1_500;
const STARTED = new Date().toISOString();

function log(sentence: string): void {
  process.stderr.write(`${NAME}: ${sentence}\n`);
}

function fail(sentence: string): never {
  log(sentence);
  process.exit(1);
}

async function checkDataDir(dir: string): Promise<void> {
  const info = await stat(dir).catch(() => undefined);
  if (!info) fail(`data directory ${dir} does not exist (set HAKO_FHIR_DATA or mount a volume there)`);
  if (!info.isDirectory()) fail(`data directory ${dir} is not a directory`);
  await access(dir, constants.W_OK).catch(() => fail(`data directory ${dir} is not writable by uid ${process.getuid?.()}`));
}

function parseListen(value: string): { host: string; port: number } {
  const match = /^\[?([^\]]*)\]?:(\d+)$/.exec(value);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65535) fail(`HAKO_FHIR_LISTEN=${value} is not host:port`);
  return { host: match[1], port };
}

function listen(server: Server): Promise<string> {
  const activated = process.env.LISTEN_FDS === '1' && process.env.LISTEN_PID === String(process.pid);
  const address = process.env.HAKO_FHIR_LISTEN ?? '127.0.0.1:8080';
  return new Promise((resolve) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (activated) fail(`cannot serve on the activated socket (fd 3): ${err.message}`);
      if (err.code === 'EADDRINUSE') fail(`cannot listen on ${address}: the address is already in use`);
      fail(`cannot listen on ${address}: ${err.message}`);
    });
    if (activated) {
      server.listen({ fd: 3 }, () => resolve('the activated socket (fd 3)'));
    } else {
      const { host, port } = parseListen(address);
      server.listen({ host, port }, () => {
        const bound = server.address();
        resolve(typeof bound === 'object' && bound ? `http://${host}:${bound.port}` : address);
      });
    }
  });
}

function snapshotBytes(): number {
  const text = process.env.HAKO_FHIR_SNAPSHOT_BYTES;
  if (text === undefined) return 8 << 20;
  if (!/^\d+$/.test(text)) fail(`HAKO_FHIR_SNAPSHOT_BYTES=${text} is not a number of bytes`);
  return Number(text);
}

async function main(): Promise<void> {
  const dataDir = process.env.HAKO_FHIR_DATA ?? '/data';
  const defsDir = process.env.HAKO_FHIR_DEFINITIONS ?? join(dirname(fileURLToPath(import.meta.url)), 'definitions');
  const everyBytes = snapshotBytes();
  await checkDataDir(dataDir);
  // The key is checked before the lock is taken: a bad key file leaves nothing behind.
  const keyFile = process.env.HAKO_FHIR_KEY_FILE;
  const dataKey = keyFile === undefined ? undefined : await loadDataKey(keyFile).catch((err: Error) => fail(err.message));

  // Before the lock: a rollout's server waits for the lock ready to serve (docs/rollout.md).
  try {
    loadDefinitions(defsDir);
  } catch (err) {
    fail((err as Error).message);
  }

  let where: string | undefined;
  const taken = await takeLock(dataDir, () =>
    JSON.stringify({ pid: process.pid, host: hostname(), listen: where, since: STARTED, server: `${NAME} ${VERSION}` }),
  ).catch((err: Error) => fail(err.message));
  if ('held' in taken) fail(holderSentence(dataDir, taken.held));
  const lock: Lock = taken;

  // A store that does not open (wrong key, damage) lets go of the lock before it says so.
  const refuse = (err: Error): Promise<never> => lock.release().then(() => fail(err.message));
  const cipher = keyFile === undefined || !dataKey ? undefined : await openStoreIdentity(dataDir, dataKey, keyFile).catch(refuse);
  const opened = await DurableRepository.open(dataDir, { log, snapshotBytes: everyBytes, cipher }).catch(refuse);
  const { repo } = opened;
  const backups = await serveBackups(dataDir, repo, log).catch((err: Error) => fail(err.message));
  const auth = await AuthService.open(dataDir, { repo, log, env: process.env }).catch((err: Error) => fail(err.message));

  const router = new FhirRouter();
  addHistoryRoutes(router, repo);
  const metadata = JSON.stringify(capabilityStatement({ name: NAME, version: VERSION }, router));
  // An idle keep-alive connection is closed after 65 s: longer than clients keep one idle (undici
  // 4 s, browsers and most pools under a minute), so a client never reuses one the server is
  // closing at that moment — with 5 s, a client busy for 5 s got "other side closed".
  const server = createServer(
    { keepAliveTimeout: 65_000 },
    fhirHandler({ router, repo, metadata, auth, onError: (err) => log(`request failed: ${(err as Error).stack ?? err}`) }),
  );
  let stopping = false;
  // Stops accepting, answers with Connection: close, closes idle keep-alive connections late.
  const drain = drainable(server);

  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: finishing in-flight requests, then exiting`);
    const exit = (): void => {
      // The queued AuditEvents are written before the journal closes.
      (auth ? auth.close() : Promise.resolve())
        .then(() => backups.close())
        .then(() => repo.close())
        .then(
          () => lock.release().then(() => process.exit(0)),
          (err: Error) => fail(`closing the journal failed: ${err.message}`),
        );
    };
    // In-flight requests finish, for DRAIN_MS at most (drain.ts).
    drain(exit, DRAIN_MS);
  };
  onStop(stop);

  where = await listen(server);
  const loaded = opened.snapshot
    ? `snapshot of ${opened.snapshot.live} resources and ${opened.snapshot.gone} deleted loaded, ${opened.replayed} journal records replayed`
    : `${opened.replayed} journal records replayed`;
  log(`serving FHIR R4 on ${where} (${loaded}${cipher ? '; the store is encrypted' : ''})`);
}

await main();
