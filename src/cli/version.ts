import { createRequire } from 'node:module';
const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };
export const VERSION = pkg.version;
/** The commit is stamped by the build when git is there; "unknown" otherwise. */
export const COMMIT = process.env.HAKO_COMMIT ?? 'unknown';
