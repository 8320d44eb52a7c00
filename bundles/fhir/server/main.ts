// hako's FHIR R4 server: configuration from the environment, journal replay, listening
// (socket activation or an address), and a clean stop on SIGTERM/SIGINT.
//
//   HAKO_FHIR_DATA         data directory holding the journal (default /data)
//   HAKO_FHIR_LISTEN       host:port when not socket-activated (default 127.0.0.1:8080)
//   HAKO_FHIR_DEFINITIONS  FHIR definitions directory (default: "definitions" beside this file)
//   LISTEN_FDS, LISTEN_PID systemd socket activation: serve on fd 3
import { FhirRouter } from '@medplum/fhir-router';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { capabilityStatement } from './capability.js';
import { loadDefinitions } from './definitions.js';
import { fhirHandler } from './http.js';
import { Journal } from './journal.js';
import { DurableRepository, type JournalRecord } from './repository.js';

const NAME = 'hako-fhir';
const VERSION = '0.1.0';

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

async function main(): Promise<void> {
  const dataDir = process.env.HAKO_FHIR_DATA ?? '/data';
  const defsDir = process.env.HAKO_FHIR_DEFINITIONS ?? join(dirname(fileURLToPath(import.meta.url)), 'definitions');
  await checkDataDir(dataDir);
  try {
    loadDefinitions(defsDir);
  } catch (err) {
    fail((err as Error).message);
  }

  const journalPath = join(dataDir, 'journal');
  const opened = await Journal.open<JournalRecord>(journalPath).catch((err: Error) => fail(err.message));
  if (opened.droppedBytes > 0) {
    log(
      `journal ${journalPath} ended in a torn or corrupt record: dropped ${opened.droppedBytes} bytes after ${opened.records.length} whole records`,
    );
  }
  const repo = new DurableRepository(opened.journal);
  await repo.replay(opened.records);

  const router = new FhirRouter();
  const metadata = JSON.stringify(capabilityStatement({ name: NAME, version: VERSION }));
  const server = createServer(
    { keepAliveTimeout: 5_000 },
    fhirHandler({ router, repo, metadata, onError: (err) => log(`request failed: ${(err as Error).stack ?? err}`) }),
  );
  let stopping = false;
  // Keep-alive connections that finish a request after the stop would otherwise linger.
  server.on('request', (_req, res) => {
    res.on('finish', () => stopping && setImmediate(() => server.closeIdleConnections()));
  });
  const where = await listen(server);
  log(`serving FHIR R4 on ${where} (${opened.records.length} journal records replayed)`);

  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: finishing in-flight requests, then exiting`);
    // close() stops accepting and drops idle keep-alive connections; in-flight requests finish.
    server.close(() => {
      opened.journal.close().then(
        () => process.exit(0),
        (err: Error) => fail(`closing the journal failed: ${err.message}`),
      );
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

await main();
