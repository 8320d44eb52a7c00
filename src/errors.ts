// One error type for everything a user can cause: its message is the one
// sentence hako prints (and logs) before exiting non-zero.

/** What a caller can branch on without parsing the sentence. */
export interface HakoErrorDetail {
  /** The step that failed: a launch plan step's sentence ("mount proc on /proc"), or the
   *  library's phase ("rootfs", "create", "exec"). */
  step?: string;
  /** The errno's name (ENOENT, EPERM) when the kernel refused something. */
  errno?: string;
  /** The file or command the failure is about. */
  path?: string;
}

export class HakoError extends Error {
  step?: string;
  errno?: string;
  path?: string;

  constructor(
    message: string,
    /** Exit status the CLI uses. */
    readonly exitCode = 1,
    detail: HakoErrorDetail = {},
  ) {
    super(message);
    this.name = 'HakoError';
    if (detail.step !== undefined) this.step = detail.step;
    if (detail.errno !== undefined) this.errno = detail.errno;
    if (detail.path !== undefined) this.path = detail.path;
  }
}
