// hako up's credential for the served FHIR server's AuditEvents: read from the data volume
// mounted at /data (BUNDLE/data/auth/supervisor.secret), never through a link, only a secret's shape.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../../src/oci/config.js';
import { supervisorAuthorization } from '../../src/up/audit-event.js';

const SECRET = `hako-supervisor.${'A1_-'.repeat(11)}`;
const cfg = (source: string, destination = '/data'): Config =>
  ({ ociVersion: '1.0.2', mounts: [{ destination, type: 'bind', source, options: ['rbind', 'rw'] }] }) as Config;

let bundle: string;
afterEach(() => rmSync(bundle, { recursive: true, force: true }));

function volume(): string {
  bundle = mkdtempSync(join(tmpdir(), 'hako-audit-auth-'));
  mkdirSync(join(bundle, 'data', 'auth'), { recursive: true });
  return join(bundle, 'data', 'auth');
}

describe('supervisorAuthorization', () => {
  it('is the Bearer header of DATA/auth/supervisor.secret, the source resolved against the bundle', () => {
    writeFileSync(join(volume(), 'supervisor.secret'), `${SECRET}\n`, { mode: 0o600 });
    expect(supervisorAuthorization(cfg('data'), bundle)).toBe(`Bearer ${SECRET}`);
    expect(supervisorAuthorization(cfg(join(bundle, 'data')), bundle)).toBe(`Bearer ${SECRET}`);
  });

  it('is undefined before the server made the secret, and without a volume at /data', () => {
    volume();
    expect(supervisorAuthorization(cfg('data'), bundle)).toBeUndefined();
    writeFileSync(join(bundle, 'data', 'auth', 'supervisor.secret'), SECRET);
    expect(supervisorAuthorization(cfg('data', '/srv'), bundle)).toBeUndefined();
  });

  it('follows no link and sends nothing but a secret’s shape', () => {
    const auth = volume();
    writeFileSync(join(bundle, 'host-file'), `${SECRET}\n`);
    symlinkSync(join(bundle, 'host-file'), join(auth, 'supervisor.secret'));
    expect(supervisorAuthorization(cfg('data'), bundle)).toBeUndefined();
    rmSync(join(auth, 'supervisor.secret'));
    writeFileSync(join(auth, 'supervisor.secret'), 'root:x:0:0:root:/root:/bin/bash\n');
    expect(supervisorAuthorization(cfg('data'), bundle)).toBeUndefined();
  });
});
