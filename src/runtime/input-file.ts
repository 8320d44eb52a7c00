// Reading a file a user names (a bundle's config.json, exec's --process, update's
// --resources): only a regular file, only up to a size a config can have, and never
// blocking on it (src/sys/bounded-read.ts).
import { fileError, readBounded } from '../sys/bounded-read.js';

/** Far above any real config.json (runc has no limit; a 10 MiB config is already absurd). */
export const MAX_INPUT_BYTES = 16 * 1024 * 1024;

export { fileError };

/** The text of `file` (symlinks followed, as runc does), or one sentence: `cannot read FILE: why`.
 *  `what` names it in that sentence (default the path). */
export function readInputFile(file: string, what = file): string {
  return readBounded(file, what, MAX_INPUT_BYTES).toString('utf8');
}
