// Reading and writing cgroup files, for v2 and v1 alike: never through a symlink
// (cgroupfs holds none; one there was planted), never creating one (a missing file
// is ENOENT, not EACCES, as runc opens them).
import { closeSync, constants, openSync, readFileSync, writeSync } from 'node:fs';
import { posix } from 'node:path';
import { CgroupError } from './errors.js';

export function putFile(path: string, value: string): void {
  const fd = openSync(path, constants.O_WRONLY | constants.O_TRUNC | constants.O_NOFOLLOW);
  try {
    writeSync(fd, value);
  } finally {
    closeSync(fd);
  }
}

export function readFile(path: string): string {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/** A cgroup's directory: the mount joined with a hierarchy path (no trailing slash for "/"),
 *  refusing a path that would leave the mount. */
export function cgroupDir(mount: string, path: string): string {
  if (!path.startsWith('/') || path.split('/').includes('..'))
    throw new CgroupError(`cgroup path ${JSON.stringify(path)} would leave ${mount}`);
  return path === '/' ? mount : posix.join(mount, path);
}
