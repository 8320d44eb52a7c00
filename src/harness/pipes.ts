// The container's stdout and stderr as Node streams. Node has no pipe(2), so each pipe is
// a FIFO made in a private directory, opened at both ends and unlinked (the directory
// too) at once, so that nothing is left on disk whatever becomes of the process: the read
// end (non-blocking) becomes a net.Socket our event loop drains, the write end (a separate
// open file, blocking as programs expect) is handed to the container and closed here once
// the container has its copy, so the stream ends when the container's last writer exits.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { native } from '../sys/native.js';

export interface Pipe {
  /** What the container writes, as we read it. */
  readable: net.Socket;
  /** The write end for the container; ours to close once it is handed over. */
  writeFd: number;
}

/** The container's stdout and stderr: both FIFOs in one private directory, gone before this returns. */
export function openPipes(): [Pipe, Pipe] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-pipe-'));
  const made: string[] = [];
  const opened: number[] = [];
  try {
    const pipes = ['out', 'err'].map((name) => {
      const file = path.join(dir, name);
      native.mkfifo(file, 0o600);
      made.push(file);
      const readFd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOFOLLOW);
      opened.push(readFd);
      const writeFd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW);
      opened.push(writeFd);
      return { readFd, writeFd };
    });
    return pipes.map(({ readFd, writeFd }) => ({ readable: new net.Socket({ fd: readFd, readable: true, writable: false }), writeFd })) as [
      Pipe,
      Pipe,
    ];
  } catch (e) {
    for (const fd of opened) fs.closeSync(fd);
    throw e;
  } finally {
    // Each name by itself (no recursive walk): this runs twice per container.
    for (const f of made) fs.unlinkSync(f);
    fs.rmdirSync(dir);
  }
}

let devNull = -1;
/** The container's stdin: /dev/null (one fd for every container), so a program reading it
 *  sees EOF instead of whatever file the first open() would have put at fd 0. */
export function nullInput(): number {
  if (devNull < 0) devNull = fs.openSync('/dev/null', fs.constants.O_RDONLY);
  return devNull;
}

/** Everything the stream carries until its end, as text. */
export function collect(s: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    s.setEncoding('utf8');
    s.on('data', (c: string) => (text += c));
    s.once('end', () => resolve(text));
    s.once('error', reject);
  });
}
