// Identities: hako keys' files, their modes, the fingerprint, and Ed25519 sign/verify.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadIdentity, loadPrivateKey, newKeys, sign, verify } from '../../src/seal/keys.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seal-keys-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('seal keys', () => {
  it('writes a 0600 private key and a public identity whose fingerprints agree', () => {
    const { keyPath, idPath, key } = newKeys('alice', dir);
    expect(fs.statSync(keyPath).mode & 0o777).toBe(0o600);
    const k = loadPrivateKey(keyPath);
    const id = loadIdentity(idPath);
    expect(k.fingerprint).toBe(key.fingerprint);
    expect(id.fingerprint).toBe(k.fingerprint);
    expect(id.kid).toMatch(/^[0-9a-f]{32}$/);
    expect(id.fingerprint).toMatch(/^([0-9a-f]{4} ){7}[0-9a-f]{4}$/);
    expect(Buffer.from(id.x25519Pub)).toEqual(Buffer.from(k.x25519.pub));
    expect(fs.readFileSync(idPath, 'utf8')).not.toContain('"d"');
  });

  it('signs and verifies; another message or key fails', () => {
    const a = loadPrivateKey(path.join(dir, 'alice.key'));
    const b = newKeys('bob', dir).key;
    const msg = new TextEncoder().encode('hello');
    const sig = sign(msg, a);
    expect(verify(msg, sig, a.ed25519.pub)).toBe(true);
    expect(verify(new TextEncoder().encode('hellp'), sig, a.ed25519.pub)).toBe(false);
    expect(verify(msg, sig, b.ed25519.pub)).toBe(false);
    const bad = Uint8Array.from(sig);
    bad[0] ^= 1;
    expect(verify(msg, bad, a.ed25519.pub)).toBe(false);
  });

  it('refuses a key file others can read, with the chmod to run', () => {
    const p = path.join(dir, 'alice.key');
    fs.chmodSync(p, 0o640);
    expect(() => loadPrivateKey(p)).toThrow(/may be read by others \(mode 0640\); run chmod 600/);
    fs.chmodSync(p, 0o600);
  });

  it('refuses to replace an existing key', () => {
    expect(() => newKeys('alice', dir)).toThrow(/already exists/);
  });

  it('refuses an identity whose fingerprint does not match its keys', () => {
    const doc = JSON.parse(fs.readFileSync(path.join(dir, 'alice.id.json'), 'utf8'));
    const bob = JSON.parse(fs.readFileSync(path.join(dir, 'bob.id.json'), 'utf8'));
    doc.keys[0] = bob.keys[0];
    const p = path.join(dir, 'mixed.id.json');
    fs.writeFileSync(p, JSON.stringify(doc));
    expect(() => loadIdentity(p)).toThrow(/kid: .* does not match the keys/);
  });
});
