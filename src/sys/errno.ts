// errno numbers and their names ("EPERM"): for sentences about failed steps, and for comparisons.
import os from 'node:os';

const NAMES = new Map<number, string>();
for (const [name, num] of Object.entries(os.constants.errno)) if (!NAMES.has(num)) NAMES.set(num, name);

export function errnoName(n: number): string {
  return NAMES.get(n) ?? `errno ${n}`;
}

/** errno numbers by name, for comparisons: `err === E.ENOENT`. */
export const E = os.constants.errno;
