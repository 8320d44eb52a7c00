// The runtime's log: text or JSON lines to --log (or stderr). The JSON form is
// what containerd's shim parses: {"level":"error","msg":...,"time":RFC3339}.
import pino, { type Logger } from 'pino';

export interface LogOptions {
  log?: string;
  logFormat?: string;
  debug?: boolean;
}

export function makeLogger(o: LogOptions): Logger {
  const level = o.debug ? 'debug' : 'warn';
  const json = o.logFormat === 'json';
  const dest = o.log ? pino.destination({ dest: o.log, sync: true, append: true, mkdir: true }) : pino.destination({ fd: 2, sync: true });
  if (json) {
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
          const o = JSON.parse(s) as { level: string; msg: string };
          return `time="${new Date().toISOString()}" level=${o.level} msg="${o.msg}"\n`;
        },
      },
    },
    dest,
  );
}

/** A failed command: the sentence goes to stderr and, as its own line, to --log. */
export function reportError(log: Logger, logFile: string | undefined, message: string): void {
  if (logFile) log.error(message);
  process.stderr.write(`hako: ${message}\n`);
}
