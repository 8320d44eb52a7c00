// The R4 behaviour of r4-search/r4-http, a representative subset, through `hako up` rootless (as
// the test user): paging links with the container's address, _include/_revinclude, chains,
// value-quantity, system search, unknown parameters and types, update-as-create, HEAD, OPTIONS
// and 415 — the same server file, served from the container. Without the seccomp policy for
// now (copyFhirBundle policy: false): the policy is re-learned after these changes.
import fs from 'node:fs';
import path from 'node:path';
import { type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { IS_ROOT } from '../../../test/helpers/env.js';
import { scratch } from '../../../test/helpers/hako.js';
import { chownTree, clearUps, serving, startUp } from '../../../test/helpers/up.js';
import { copyFhirBundle } from './copy.js';
import { fhirClient } from './scenario.js';
import { fullAccess } from './auth-helper.js';
import { useToken } from './r4-server.js';
import {
  chainsWork,
  httpDetailsWork,
  includesWork,
  pagingWorks,
  quantityWorks,
  seed,
  systemSearchWorks,
  unknownsHandled,
} from './r4-scenario.js';
import { rootEntries } from '../../../test/helpers/leftovers.js';

const running: ChildProcess[] = [];
const made: string[] = [];
let root: string | undefined;

afterEach(async () => {
  await clearUps(running, root);
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  root = undefined;
});

// The rootless run goes through setpriv as the test user, so the file needs root.
describe.skipIf(!IS_ROOT)('FHIR R4 search and HTTP under hako up (rootless)', () => {
  it('serves paging links, includes, chains, quantities, system search, strictness, 201/HEAD/OPTIONS/415', async () => {
    const bundle = scratch('rootless', 'fhir-r4-');
    made.push(bundle);
    copyFhirBundle(bundle, { policy: false });
    const data = path.join(bundle, 'data');
    fs.mkdirSync(data, { mode: 0o700 });
    chownTree('rootless', bundle);
    root = scratch('rootless', 'state-r4-');
    made.push(root);

    const u = startUp('rootless', bundle, root, ['--listen', '127.0.0.1:0'], running);
    const { url, how } = await serving(u);
    expect(how).toBe('rootless');
    const base = url.replace(/\/$/, '');
    // A client registered in the served data volume (as root here, handed to the test user), its token from /auth/token.
    const token = await fullAccess(data, base);
    useToken(base, token);
    const client = fhirClient(base, token);

    const s = await seed(client);
    await pagingWorks(client, base, s);
    await includesWork(client, s);
    await chainsWork(client, s);
    await quantityWorks(client, s);
    await systemSearchWorks(client, base, s);
    await unknownsHandled(client, base, s);
    await httpDetailsWork(client, base);

    u.child.kill('SIGTERM');
    expect(await u.exited).toBe(0);
    expect(rootEntries(root)).toEqual([]);
  }, 240_000);
});
