// The server's side of `hako-fhir backup`: a unix socket, DATA/backup.sock, on which a backup asks
// for its position. The server seals the active journal segment (writes held only for the rename)
// and answers with the sealed segment's number: every write acknowledged before the request is
// in segments 1..N, and sealed segments are never rewritten, so the command then copies them
// from the data directory while writes go on in the next segment.
//
// Who may ask: whoever may connect to the socket, which takes search and write access to the
// data directory (0700: its owner) or root: the people who could copy the files anyway. No token
// is needed, and none travels. (No chmod of the socket: the seccomp policy refuses chmod, and the
// directory's mode is what keeps others out.)
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { DurableRepository } from './repository.js';

export const BACKUP_SOCKET = 'backup.sock';

export type BackupPosition = { segment: number; nextSeq: number; encrypted: boolean };

/** Listens on DATA/backup.sock (the data directory's lock is held: a leftover socket is stale). */
export async function serveBackups(
  dir: string,
  repo: DurableRepository,
  log: (sentence: string) => void,
): Promise<{ close: () => Promise<void> }> {
  const path = join(dir, BACKUP_SOCKET);
  await rm(path, { force: true });
  const server = createServer((socket) => {
    socket.on('error', () => {});
    let asked = '';
    socket.on('data', (chunk: Buffer) => {
      asked += chunk.toString('utf8');
      if (!asked.includes('\n')) return;
      if (asked.trim() !== 'seal') {
        socket.end(`${JSON.stringify({ error: 'unknown request (expected "seal")' })}\n`);
        return;
      }
      repo.sealForBackup().then(
        (at) => {
          log(`backup: sealed journal segment ${at.segment} for a backup at record #${at.nextSeq - 1}`);
          socket.end(`${JSON.stringify({ ...at, encrypted: repo.encrypted } satisfies BackupPosition)}\n`);
        },
        (err: Error) => socket.end(`${JSON.stringify({ error: err.message })}\n`),
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`cannot listen on ${path} for backups: ${err.message}`)));
    server.listen(path, () => resolve());
  });
  server.unref();
  return { close: () => new Promise((resolve) => server.close(() => resolve())) };
}
