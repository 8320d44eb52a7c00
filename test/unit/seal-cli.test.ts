// hako keys / seal / open through the real CLI, as the unprivileged test user and as root:
// a round trip, and each bad input refused with one sentence, a non-zero exit, no output file.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { IS_ROOT } from '../helpers/env.js';
import { hako, scratchForThisFile, testUserIds, WHO, type Who } from '../helpers/hako.js';

const { scratch } = scratchForThisFile();
const BUNDLE = JSON.stringify({
  resourceType: 'Bundle',
  type: 'collection',
  entry: [{ resource: { resourceType: 'Patient', id: 'cli-marker-7f3a' } }],
});

describe.each(WHO.filter((w) => IS_ROOT || w === 'rootless'))('seal CLI (%s)', (who: Who) => {
  const dir = scratch(who, 'seal-');
  const state = path.join(dir, 'state');
  const run = (...args: string[]) => hako(who, state, args);
  const p = (f: string) => path.join(dir, f);
  const write = (f: string, text: string, mode = 0o644) => {
    fs.writeFileSync(p(f), text, { mode });
    fs.chmodSync(p(f), mode);
    if (who === 'rootless') fs.chownSync(p(f), testUserIds().uid, testUserIds().gid);
  };
  /** One sentence on stderr, a non-zero exit, and `out` (if named) never made. */
  const refused = (args: string[], sentence: RegExp, out?: string) => {
    const r = run(...args);
    expect(r.status, r.stderr).not.toBe(0);
    expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
    expect(r.stderr.trim()).toMatch(sentence);
    if (out) expect(fs.readdirSync(dir).filter((f) => f.includes(path.basename(out)))).toEqual([]);
  };

  it('makes identities, seals to two recipients, each opens it, the sender is checked', () => {
    for (const n of ['alice', 'bob', 'carol', 'eve']) expect(run('keys', 'new', n, '--dir', dir).status).toBe(0);
    expect(fs.statSync(p('bob.key')).mode & 0o777).toBe(0o600);
    if (who === 'rootless') expect(fs.statSync(p('bob.key')).uid).toBe(testUserIds().uid);
    write('bundle.json', BUNDLE);
    const s = run('seal', '--from', p('alice.key'), '--to', p('bob.id.json'), p('carol.id.json'), '-o', p('bundle.jwe'), p('bundle.json'));
    expect(s.status, s.stderr).toBe(0);
    expect(fs.readFileSync(p('bundle.jwe'), 'utf8')).not.toContain('cli-marker-7f3a');
    for (const k of ['bob', 'carol']) {
      const o = run('open', '--key', p(`${k}.key`), '--from', p('alice.id.json'), p('bundle.jwe'));
      expect(o.status, o.stderr).toBe(0);
      expect(o.stdout).toBe(BUNDLE);
      expect(o.stderr).toMatch(/sealed by alice \(fingerprint [0-9a-f ]{39}\) to 2 recipients .*signature verified/);
    }
    const o = run('open', '--key', p('bob.key'), '-o', p('opened.json'), p('bundle.jwe'));
    expect(o.status, o.stderr).toBe(0);
    expect(fs.statSync(p('opened.json')).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(p('opened.json'), 'utf8')).toBe(BUNDLE);
  });

  it('refuses a non-recipient and a wrong expected sender', () => {
    refused(
      ['open', '--key', p('eve.key'), '-o', p('eve-out.json'), p('bundle.jwe')],
      /^hako: open: .*bundle\.jwe: not sealed to you: eve \(fingerprint .*\) is not among its 2 recipients$/,
      'eve-out.json',
    );
    refused(
      ['open', '--key', p('bob.key'), '--from', p('eve.id.json'), p('bundle.jwe')],
      /sealed by alice .*, not by the expected sender eve/,
    );
  });

  it('refuses a private key others can read', () => {
    fs.copyFileSync(p('bob.key'), p('loose.key'));
    fs.chmodSync(p('loose.key'), 0o644);
    if (who === 'rootless') fs.chownSync(p('loose.key'), testUserIds().uid, testUserIds().gid);
    refused(
      ['open', '--key', p('loose.key'), p('bundle.jwe')],
      /loose\.key: the private key file may be read by others \(mode 0644\); run chmod 600 /,
    );
    fs.chmodSync(p('loose.key'), 0o640);
    refused(['seal', '--from', p('loose.key'), '--to', p('bob.id.json'), p('bundle.json')], /may be read by others \(mode 0640\)/);
  });

  it('refuses wrong key types', () => {
    refused(
      ['seal', '--from', p('alice.id.json'), '--to', p('bob.id.json'), p('bundle.json')],
      /alice\.id\.json: type: expected "hako-private-key" for a private key, not "hako-identity" \(it is an identity file\)$/,
    );
    refused(
      ['seal', '--from', p('alice.key'), '--to', p('bob.key'), p('bundle.json')],
      /bob\.key: type: expected "hako-identity" for an identity, not "hako-private-key" \(it is a private key file\)$/,
    );
    const id = JSON.parse(fs.readFileSync(p('bob.id.json'), 'utf8'));
    write('p256.id.json', JSON.stringify({ ...id, keys: [{ ...id.keys[0], crv: 'P-256' }, id.keys[1]] }));
    refused(
      ['seal', '--from', p('alice.key'), '--to', p('p256.id.json'), p('bundle.json')],
      /p256\.id\.json: keys: no X25519 key \(found: P-256, Ed25519\)$/,
    );
    write('ec.id.json', JSON.stringify({ ...id, keys: [{ ...id.keys[0], kty: 'EC' }, id.keys[1]] }));
    refused(
      ['seal', '--from', p('alice.key'), '--to', p('ec.id.json'), p('bundle.json')],
      /ec\.id\.json: keys\[0\]\.kty: expected "OKP", not "EC"$/,
    );
    const key = JSON.parse(fs.readFileSync(p('alice.key'), 'utf8'));
    write('swapped.key', JSON.stringify({ ...key, keys: [{ ...key.keys[0], d: key.keys[1].d }, key.keys[1]] }), 0o600);
    refused(
      ['seal', '--from', p('swapped.key'), '--to', p('bob.id.json'), p('bundle.json')],
      /swapped\.key: keys\[0\]: the public key x does not belong to the private key d$/,
    );
  });

  it('refuses malformed identity files', () => {
    write('notjson.id.json', '{"type": "hako-identity",');
    refused(
      ['seal', '--from', p('alice.key'), '--to', p('notjson.id.json'), p('bundle.json')],
      /notjson\.id\.json: the identity is not JSON/,
    );
    const id = JSON.parse(fs.readFileSync(p('bob.id.json'), 'utf8'));
    write('short.id.json', JSON.stringify({ ...id, keys: [{ ...id.keys[0], x: id.keys[0].x.slice(0, 20) }, id.keys[1]] }));
    refused(
      ['seal', '--from', p('alice.key'), '--to', p('short.id.json'), p('bundle.json')],
      /short\.id\.json: keys\[0\]\.x: a X25519 public key is 32 bytes, not 15$/,
    );
    write('fp.id.json', JSON.stringify({ ...id, fingerprint: 'aaaa bbbb' }));
    refused(
      ['seal', '--from', p('alice.key'), '--to', p('fp.id.json'), p('bundle.json')],
      /fp\.id\.json: fingerprint: "aaaa bbbb" does not match the keys/,
    );
    write('arr.id.json', '[]');
    refused(
      ['open', '--key', p('bob.key'), '--from', p('arr.id.json'), p('bundle.jwe')],
      /arr\.id\.json: the identity is not a JSON object$/,
    );
  });

  it('refuses a file that is not an envelope, and sealing what is not FHIR JSON', () => {
    refused(
      ['open', '--key', p('bob.key'), '-o', p('x-out.json'), p('bundle.json')],
      /bundle\.json: not a sealed envelope: no JWE "protected" and "recipients" members/,
      'x-out.json',
    );
    write('binary.bin', '\u0000\u0001garbage');
    refused(['open', '--key', p('bob.key'), p('binary.bin')], /binary\.bin: not a sealed envelope: it is not JSON$/);
    refused(['open', '--key', p('bob.key'), p('missing.jwe')], /open: cannot read .*missing\.jwe: ENOENT$/);
    write('plain.txt', 'hello');
    refused(
      ['seal', '--from', p('alice.key'), '--to', p('bob.id.json'), '-o', p('plain.jwe'), p('plain.txt')],
      /plain\.txt is not JSON/,
      'plain.jwe',
    );
    write('nort.json', '{"a":1}');
    refused(
      ['seal', '--from', p('alice.key'), '--to', p('bob.id.json'), p('nort.json')],
      /nort\.json is not a FHIR resource: no resourceType$/,
    );
    const env = JSON.parse(fs.readFileSync(p('bundle.jwe'), 'utf8'));
    env.ciphertext = env.ciphertext.slice(0, -4);
    write('cut.jwe', JSON.stringify(env));
    refused(
      ['open', '--key', p('bob.key'), '-o', p('cut-out.json'), p('cut.jwe')],
      /signature of alice .* does not verify: the envelope was changed after it was sealed$/,
      'cut-out.json',
    );
  });
});
