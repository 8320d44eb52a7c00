// memory.events counters, and a watch on them for `hako events` (OOM notifications).
// The kernel signals a change of memory.events as a file modification (inotify).
import { readFileSync, watch } from 'node:fs';
import { posix } from 'node:path';
import { parseFlatKeyed } from './stats.js';

export interface MemoryEvents { low: number; high: number; max: number; oom: number; oomKill: number; oomGroupKill: number }

export function readMemoryEvents(dir: string): MemoryEvents {
  let e: Record<string, number> = {};
  try {
    e = parseFlatKeyed(readFileSync(posix.join(dir, 'memory.events'), 'utf8'));
  } catch {
    // No memory controller here: every counter stays 0.
  }
  return { low: e.low ?? 0, high: e.high ?? 0, max: e.max ?? 0, oom: e.oom ?? 0, oomKill: e.oom_kill ?? 0, oomGroupKill: e.oom_group_kill ?? 0 };
}

/**
 * Calls onOom with the new counters each time oom or oom_kill grows. Returns a function
 * that stops watching. runc's `events` emits {"type":"oom"} on the same condition.
 */
export function watchOom(dir: string, onOom: (events: MemoryEvents) => void): () => void {
  let last = readMemoryEvents(dir);
  const watcher = watch(posix.join(dir, 'memory.events'), () => {
    const now = readMemoryEvents(dir);
    if (now.oom > last.oom || now.oomKill > last.oomKill) onOom(now);
    last = now;
  });
  // The cgroup going away (rmdir) ends the watch; that is not an error for the caller.
  watcher.on('error', () => watcher.close());
  return () => watcher.close();
}
