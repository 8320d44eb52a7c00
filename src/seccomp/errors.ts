/** A seccomp profile hako cannot compile; the message names the JSON path. */
export class SeccompError extends Error {
  override name = 'SeccompError';
}
