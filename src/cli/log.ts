// The runtime's log: text or JSON lines to --log (or stderr). The JSON form is
// what containerd's shim parses: {"level":"error","msg":...,"time":RFC3339}.
//
// Most calls log nothing (the level is warn), yet loading pino is several
// milliseconds of every CLI call: it is required at the first message that
// passes the level, from node_modules (the CLI bundle leaves it out).
import { createRequire } from 'node:module';
import type pinoFactory from 'pino';
import type { Logger } from 'pino';
import type { Log } from '../runtime/context.js';

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

function makePino(o: LogOptions): Logger {
  const pino = createRequire(import.meta.url)('pino') as typeof pinoFactory;
  const level = o.debug ? 'debug' : 'warn';
  const dest = o.log ? pino.destination({ dest: o.log, sync: true, append: true, mkdir: true }) : pino.destination({ fd: 2, sync: true });
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
          return `time="${new Date().toISOString()}" level=${line.level} msg="${line.msg}"\n`;
        },
      },
    },
    dest,
  );
}

/** A failed command: the sentence goes to stderr and, as its own line, to --log. */
export function reportError(log: Log, logFile: string | undefined, message: string): void {
  if (logFile) log.error(message);
  process.stderr.write(`hako: ${message}\n`);
}
