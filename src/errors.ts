// One error type for everything a user can cause: its message is the one
// sentence hako prints (and logs) before exiting non-zero.
export class HakoError extends Error {
  constructor(
    message: string,
    /** Exit status the CLI uses. */
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'HakoError';
  }
}
