// Reading a file hako signs or checks: the exact bytes (config.json is hashed as it is, then
// parsed from those same bytes), a regular file only, bounded, never blocking on a FIFO.
// src/sys/bounded-read.ts has no runtime imports, so --require-signed (loaded lazily beside the
// CLI's bundle, src/cli/signed.ts) does not load the runtime's modules a second time.
export { readBounded as readBytes } from '../sys/bounded-read.js';
