// Shared facts for the tests: where the work dir, the busybox rootfs and the
// CLI are, and the unprivileged user the setup creates.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** Scratch dirs; HAKO_TEST_WORK gives concurrent runs (one per developer) their own. */
export const WORK = process.env.HAKO_TEST_WORK ? path.resolve(process.env.HAKO_TEST_WORK) : path.join(REPO, 'test/.work');
export const BUSYBOX_ROOTFS = path.join(WORK, 'busybox-rootfs');
export const CLI = path.join(REPO, 'bin/hako');
/** The unprivileged user rootless tests run as (created by the global setup when root). */
export const TEST_USER = 'hakotest';
export const IS_ROOT = process.geteuid!() === 0;
