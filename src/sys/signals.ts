// Signal names and numbers as `kill` accepts them: 9, KILL, SIGKILL.
import os from 'node:os';
import { HakoError } from '../errors.js';

const BY_NAME = os.constants.signals as Record<string, number>;

export function parseSignal(s: string | undefined): number {
  if (s === undefined || s === '') return BY_NAME.SIGTERM;
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n < 1 || n > 64) throw new HakoError(`invalid signal "${s}"`);
    return n;
  }
  const name = s.toUpperCase().startsWith('SIG') ? s.toUpperCase() : `SIG${s.toUpperCase()}`;
  const n = BY_NAME[name];
  if (!n) throw new HakoError(`invalid signal "${s}"`);
  return n;
}
