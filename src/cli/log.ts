// The runtime's log: text or JSON lines to --log (or stderr). The JSON form is
// what containerd's shim parses: {"level":"error","msg":...,"time":RFC3339}.
//
// Most calls log nothing (the level is warn), yet loading pino is several
// milliseconds of every CLI call: it is required at the first message that
// passes the level, from node_modules (the CLI bundle leaves it out).
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type pinoFactory from 'pino';
import type { Logger } from 'pino';
import type { Log } from '../runtime/index.js';
import { HakoError } from '../errors.js';
import { fileError } from '../runtime/index.js';
import { callerFd, fromCwd } from '../sys/caller.js';

export interface LogOptions {
  log?: string;
  logFormat?: string;
  debug?: boolean;
}

const LEVELS = { debug: 20, info: 30, warn: 40, error: 50 } as const;

export function makeLogger(o: LogOptions): Log {
  const threshold = o.debug ? LEVELS.debug : LEVELS.warn;
  let pinoLogger: Logger | undefined;
  const at = (name: keyof typeof LEVELS) => (msg: string) => {
    if (LEVELS[name] < threshold) return;
    pinoLogger ??= makePino(o);
    pinoLogger[name](msg);
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

const opened = new Map<string, number>();

/** mkdir -p, one level at a time: node's recursive mkdir never returns for a path under
 *  /proc (mkdir says ENOENT while the parent exists, and it tries again). */
function mkdirParents(dir: string): void {
  const missing: string[] = [];
  for (let d = dir; !fs.statSync(d, { throwIfNoEntry: false }); d = path.dirname(d)) missing.unshift(d);
  for (const d of missing) {
    try {
      fs.mkdirSync(d, { mode: 0o755 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
}

/** The --log file opened for appending (its directory made if missing), once per process.
 *  Opened here, not by pino: pino throws node's raw error at the first message (a directory,
 *  a path under a file) or retries forever (a path under /proc). */
export function openLog(file: string): number {
  const known = opened.get(file);
  if (known !== undefined) return known;
  let fd: number;
  try {
    mkdirParents(path.dirname(fromCwd(file)));
    // O_NONBLOCK: a FIFO nobody reads must not hang the runtime (ENXIO instead).
    fd = fs.openSync(fromCwd(file), fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NONBLOCK, 0o644);
    const st = fs.fstatSync(fd);
    if (!st.isFile() && !st.isFIFO() && !st.isCharacterDevice()) {
      fs.closeSync(fd);
      throw Object.assign(new Error('not a regular file'), { code: 'not a regular file' });
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    const why = code === 'ENXIO' ? 'it is a FIFO nobody reads' : code === 'ENOENT' ? 'its directory cannot be created' : fileError(e);
    throw new HakoError(`--log ${file}: cannot open it for writing: ${why}`);
  }
  opened.set(file, fd);
  return fd;
}

/** Closes the --log files this call opened: a planner serves the next call with none open. */
export function closeLogs(): void {
  for (const fd of opened.values()) fs.closeSync(fd);
  opened.clear();
}

function makePino(o: LogOptions): Logger {
  const pino = createRequire(import.meta.url)('pino') as typeof pinoFactory;
  const level = o.debug ? 'debug' : 'warn';
  const dest = pino.destination({ fd: o.log ? openLog(o.log) : callerFd(2), sync: true });
  if (o.logFormat === 'json') {
    return pino(
      {
        level,
        base: undefined,
        messageKey: 'msg',
        timestamp: pino.stdTimeFunctions.isoTime,
        formatters: { level: (label) => ({ level: label }) },
      },
      dest,
    );
  }
  // Text: one plain line per message, like runc's text logs.
  return pino(
    {
      level,
      base: undefined,
      timestamp: false,
      formatters: { level: (label) => ({ level: label }) },
      hooks: {
        streamWrite: (s: string) => {
          const line = JSON.parse(s) as { level: string; msg: string };
          return `time="${new Date().toISOString()}" level=${line.level} msg=${JSON.stringify(line.msg)}\n`;
        },
      },
    },
    dest,
  );
}

/** A failed command: the sentence goes to stderr and, as its own line, to --log. */
export function reportError(log: Log, logFile: string | undefined, sentence: string): void {
  // One line, whatever the user typed into it (an id or a signal with a newline).
  const message = sentence.replace(/[\r\n]+/g, ' ');
  let also = '';
  if (logFile) {
    try {
      log.error(message);
    } catch (e) {
      // The log itself is what failed: say so on the same line (one line, always).
      const why = e instanceof HakoError ? e.message : String(e);
      if (why !== message) also = ` (and ${why})`;
    }
  }
  process.stderr.write(`hako: ${message}${also}\n`);
}
