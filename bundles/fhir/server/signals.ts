// Imported first by main.ts, so the SIGTERM/SIGINT handlers exist before the rest of the
// server (Medplum is most of it) is even loaded. In a container the server is pid 1, and the
// kernel drops a signal to pid 1 that has no handler: without this, a stop in the first second
// was lost and ended in SIGKILL. Until the server says how to stop, a signal ends the process
// at once with status 0: nothing has been acknowledged, and every file step before serving is
// crash-safe (the same as a SIGKILL there).
type Stop = (signal: string) => void;

let stop: Stop | undefined;
let received: string | undefined;

function onSignal(signal: string): void {
  received ??= signal;
  if (stop) stop(signal);
  else process.exit(0);
}

process.on('SIGTERM', () => onSignal('SIGTERM'));
process.on('SIGINT', () => onSignal('SIGINT'));

/** From now on a signal calls this (at once when one came already). */
export function onStop(handler: Stop): void {
  stop = handler;
  if (received) handler(received);
}

/** Long start-up work calls this now and then so a signal can be handled (it ends the process). */
export function yieldToSignals(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
