// `run` of a process with a terminal and no --console-socket: hako takes the
// pty master itself (over a private console socket, as a client would) and
// relays it to its own stdio, in raw mode, following window size changes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { native } from '../sys/native.js';
import { HakoError } from '../errors.js';

export interface ConsoleListener {
  path: string;
  /** Resolves with the pty master once the container sent it. */
  master: Promise<number>;
  close(): void;
}

export function listenForConsole(): ConsoleListener {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-tty-'));
  const sock = path.join(dir, 'console.sock');
  const lfd = native.listenUnix(sock);
  const master = native.recvFd(lfd, 60_000).then(
    (r) => r.fd,
    (e) => {
      throw new HakoError(`receiving the container's terminal failed: ${(e as Error).message}`);
    },
  );
  return {
    path: sock,
    master,
    close: () => {
      fs.closeSync(lfd);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Relays stdin to the pty and the pty to stdout until the pty closes. */
export function relay(master: number): { done: Promise<void>; stop: () => void } {
  const stdin = process.stdin;
  const resize = () => {
    if (process.stdout.isTTY) native.setWinsize(master, process.stdout.rows, process.stdout.columns);
  };
  resize();
  process.stdout.on('resize', resize);
  if (stdin.isTTY) stdin.setRawMode(true);
  const onInput = (d: Buffer) => {
    try {
      fs.writeSync(master, d);
    } catch {
      // the pty is gone; the output side ends the relay
    }
  };
  stdin.on('data', onInput);
  const out = fs.createReadStream('', { fd: master, autoClose: false, highWaterMark: 16384 });
  const done = new Promise<void>((resolve) => {
    out.on('data', (d) => process.stdout.write(d));
    // EIO once the last holder of the pty's other side exits.
    out.on('error', () => resolve());
    out.on('end', () => resolve());
  });
  const stop = () => {
    stdin.off('data', onInput);
    stdin.pause();
    if (stdin.isTTY) stdin.setRawMode(false);
    process.stdout.off('resize', resize);
    out.destroy();
    try {
      fs.closeSync(master);
    } catch {
      // already closed
    }
  };
  return { done, stop };
}
