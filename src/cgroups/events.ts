// memory.events counters, and a watch on them for `hako events` (OOM notifications).
// The kernel signals a change of memory.events as a file modification (inotify).
import { readFileSync, watch } from 'node:fs';
import { posix } from 'node:path';
import { parseFlatKeyed } from './stats.js';

export interface MemoryEvents {
  low: number;
  high: number;
  max: number;
  oom: number;
  oomKill: number;
  oomGroupKill: number;
}

export function readMemoryEvents(dir: string): MemoryEvents {
  let e: Record<string, number> = {};
  try {
    e = parseFlatKeyed(readFileSync(posix.join(dir, 'memory.events'), 'utf8'));
  } catch {
    // No memory controller here: every counter stays 0.
  }
  return {
    low: e.low ?? 0,
    high: e.high ?? 0,
    max: e.max ?? 0,
    oom: e.oom ?? 0,
    oomKill: e.oom_kill ?? 0,
    oomGroupKill: e.oom_group_kill ?? 0,
  };
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

/** The v1 counterparts: memory.oom_control's oom_kill (and under_oom), memory.failcnt for "max". */
export function readMemoryEventsV1(read: (file: string) => string | null): MemoryEvents {
  const c = parseFlatKeyed(read('memory.oom_control') ?? '');
  const failcnt = Number(read('memory.failcnt')?.trim() ?? 0) || 0;
  const kills = c.oom_kill ?? 0;
  return { low: 0, high: 0, max: failcnt, oom: kills + (c.under_oom ?? 0), oomKill: kills, oomGroupKill: 0 };
}

/** v1 files send no inotify events (the eventfd API needs cgroup.event_control): poll. */
export function watchOomV1(read: (file: string) => string | null, onOom: (events: MemoryEvents) => void, intervalMs = 200): () => void {
  let last = readMemoryEventsV1(read);
  const timer = setInterval(() => {
    const now = readMemoryEventsV1(read);
    if (now.oom > last.oom || now.oomKill > last.oomKill) onOom(now);
    last = now;
  }, intervalMs);
  return () => clearInterval(timer);
}
