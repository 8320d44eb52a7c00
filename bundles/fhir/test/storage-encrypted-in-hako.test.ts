// The encrypted store under `hako up`, rootless (as the test user) and as root (the server on a
// subordinate uid): the build hook makes the data key once in BUNDLE/secrets (0600, owned by
// the server's uid on the host, outside the rootfs and the data volume), the container gets it
// read-only at /run/secrets with only its path in the environment, nothing written through the
// API is readable in the data volume, and a restart reads it back with the same key.
import fs from 'node:fs';
import path from 'node:path';
import { type ChildProcess } from 'node:child_process';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { IS_ROOT } from '../../../test/helpers/env.js';
import { hako, scratch, testUserIds, type Who } from '../../../test/helpers/hako.js';
import { chownTree, serving, startUp, stopAll } from '../../../test/helpers/up.js';
import { copyFhirBundle } from './copy.js';
import { filesContaining } from './storage-encrypted-files.js';
import { fhir } from './storage-server.js';

const MARKER = 'Kestrel4409';
const running: ChildProcess[] = [];
const made: string[] = [];
afterEach(async () => {
  await stopAll(running);
});
afterAll(() => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

const WHO: Who[] = ['rootless', 'root'];

describe.skipIf(!IS_ROOT)('encrypted FHIR store under hako up', { timeout: 600_000 }, () => {
  for (const who of WHO) {
    it(`${who}: the key is a read-only secret of the server's uid alone, and the volume holds no plaintext`, async () => {
      const bundle = scratch(who, 'sto-bundle-');
      const root = scratch(who, 'sto-state-');
      made.push(bundle, root);
      copyFhirBundle(bundle, { auth: false });
      chownTree(who, bundle);
      const id = `sto-${who}`;
      const up = () => startUp(who, bundle, root, ['--listen', '127.0.0.1:0', '--id', id], running);
      try {
        const first = up();
        const { url } = await serving(first);
        const base = url.replace(/\/$/, '');
        const created = await fhir(base, 'POST', 'Patient', { resourceType: 'Patient', name: [{ family: MARKER }] });
        expect(created.status).toBe(201);
        expect(first.stderr()).toContain("made the FHIR store's data key");

        // The key: 0600 in a 0700 directory, both owned by the server's uid on the host.
        const state = hako(who, root, ['state', id]);
        const pid = JSON.parse(state.stdout).pid as number;
        const serverUid = Number(/^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
        const key = path.join(bundle, 'secrets', 'fhir-store.key');
        const st = fs.statSync(key);
        expect(st.mode & 0o777).toBe(0o600);
        expect(fs.statSync(path.dirname(key)).mode & 0o777).toBe(0o700);
        expect(st.uid).toBe(serverUid);
        if (who === 'rootless') expect(serverUid).toBe(testUserIds().uid);
        else expect(serverUid).not.toBe(0);
        // Only the path travels: not in config.json, not in the server's environment.
        const keyHex = fs.readFileSync(key, 'utf8').trim();
        expect(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8')).not.toContain(keyHex);
        const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8');
        expect(environ).toContain('HAKO_FHIR_KEY_FILE=/run/secrets/fhir-store.key');
        expect(environ).not.toContain(keyHex);
        // Read-only inside: writing the key from the container fails.
        const write = hako(who, root, ['exec', id, '/node', '-e', "require('fs').writeFileSync('/run/secrets/fhir-store.key','x')"]);
        expect(write.status).not.toBe(0);
        expect(write.stderr).toMatch(/EROFS|EACCES|EPERM|not permitted|read-only/i);

        first.child.kill('SIGTERM');
        expect(await first.exited).toBe(0);
        const data = path.join(bundle, 'data');
        expect(fs.readFileSync(path.join(data, 'journal')).subarray(0, 8).toString()).toBe('HAKOFJ3\n');
        expect(fs.existsSync(path.join(data, 'store.id'))).toBe(true);
        expect(filesContaining(data, MARKER)).toEqual([]);

        // A restart opens the same store with the same key.
        const second = up();
        const again = await serving(second);
        const read = await fhir(again.url.replace(/\/$/, ''), 'GET', `Patient/${created.json.id}`);
        expect(read.json.name[0].family).toBe(MARKER);
        expect(second.stderr()).not.toContain("made the FHIR store's data key");
        second.child.kill('SIGTERM');
        expect(await second.exited).toBe(0);
      } finally {
        await stopAll(running);
        hako(who, root, ['delete', '--force', id]);
      }
    });
  }
});
