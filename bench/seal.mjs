#!/usr/bin/env node
// Sealing and opening FHIR Bundles of about 1 KB, 100 KB and 10 MB (issue 15): the library
// hako seal/open use (dist/seal, built by npm run build:ts), one sender and one recipient,
// medians over interleaved rounds. Ratios: against ChaCha20-Poly1305 alone on the same bytes
// (what the envelope adds: HPKE per recipient, base64url, canonical JSON, Ed25519 over it all).
//
// usage: node bench/seal.mjs [rounds-scale=1]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { randomBytes } from '@noble/ciphers/utils.js';
import { newKeys, identityOf } from '../dist/seal/keys.js';
import { sealEnvelope, openEnvelope } from '../dist/seal/envelope.js';

const scale = Number(process.argv[2] ?? 1);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-seal-'));
const a = newKeys('bench-a', dir).key;
const b = newKeys('bench-b', dir).key;
fs.rmSync(dir, { recursive: true, force: true });

/** A collection Bundle of Patients, about `bytes` of JSON. */
function fhirBundle(bytes) {
  const entry = [];
  let size = 60;
  for (let i = 0; size < bytes; i++) {
    const resource = {
      resourceType: 'Patient',
      id: `p${i}`,
      name: [{ family: `Family${i}`, given: ['Given'] }],
      birthDate: '1980-02-04',
      gender: 'female',
    };
    size += JSON.stringify(resource).length + 14;
    entry.push({ resource });
  }
  return new TextEncoder().encode(JSON.stringify({ resourceType: 'Bundle', type: 'collection', entry }));
}

const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const ms = async (f) => {
  const t = process.hrtime.bigint();
  await f();
  return Number(process.hrtime.bigint() - t) / 1e6;
};

console.log(`node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'})`);
console.log('size       rounds  seal ms   open ms   bare AEAD ms  seal/AEAD  open/AEAD  open/seal  envelope/plaintext');
for (const [label, bytes, rounds] of [
  ['1 KB', 1_000, 300],
  ['100 KB', 100_000, 60],
  ['10 MB', 10_000_000, 6],
]) {
  const pt = fhirBundle(bytes);
  const n = Math.max(3, Math.round(rounds * scale));
  const seal = [];
  const open = [];
  const bare = [];
  let text = '';
  // warm-up, then interleaved rounds so drift hits all three alike
  text = JSON.stringify(await sealEnvelope(pt, a, [identityOf(b)]), null, 2);
  await openEnvelope(text, b, identityOf(a));
  for (let i = 0; i < n; i++) {
    seal.push(await ms(async () => (text = JSON.stringify(await sealEnvelope(pt, a, [identityOf(b)]), null, 2))));
    open.push(await ms(() => openEnvelope(text, b, identityOf(a))));
    bare.push(await ms(() => chacha20poly1305(randomBytes(32), randomBytes(12)).encrypt(pt)));
  }
  const [s, o, x] = [median(seal), median(open), median(bare)];
  console.log(
    `${label.padEnd(10)} ${String(n).padStart(6)}  ${s.toFixed(2).padStart(7)}  ${o.toFixed(2).padStart(8)}  ${x.toFixed(3).padStart(12)}  ${(s / x).toFixed(1).padStart(9)}  ${(o / x).toFixed(1).padStart(9)}  ${(o / s).toFixed(2).padStart(9)}  ${(text.length / pt.length).toFixed(2).padStart(8)} (${pt.length} B)`,
  );
}
