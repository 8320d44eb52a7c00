// One error type for the driver: its message is the one sentence a user sees,
// naming the JSON path (linux.resources.…, linux.cgroupsPath) or the cgroup file.
export class CgroupError extends Error {
  override name = 'CgroupError';
}

export function describeValue(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(JSON.stringify(value) ?? value);
}
