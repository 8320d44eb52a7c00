import { describe, expect, it } from 'vitest';
import { compileLandlock, FS, LandlockError, NET } from '../../src/landlock/index.js';

const P = 'run.hako.landlock.';
const RO = FS.EXECUTE | FS.READ_FILE | FS.READ_DIR;
const V1 = (1n << 13n) - 1n;

describe('compileLandlock', () => {
  it('returns null without run.hako.landlock annotations', () => {
    expect(compileLandlock(undefined, 7)).toBeNull();
    expect(compileLandlock({ 'org.example': 'x' }, 7)).toBeNull();
  });

  it('builds fs and net rules on ABI 7', () => {
    const plan = compileLandlock(
      { [`${P}fs.ro`]: '/usr:/etc/', [`${P}fs.rw`]: '/data', [`${P}net.bind`]: '8080', [`${P}net.connect`]: '443, 5432' },
      7,
    )!;
    const all = V1 | FS.REFER | FS.TRUNCATE | FS.IOCTL_DEV;
    expect(plan).toEqual({
      handledFs: all,
      handledNet: NET.BIND_TCP | NET.CONNECT_TCP,
      paths: [
        { access: RO, path: '/usr' },
        { access: RO, path: '/etc' },
        { access: all, path: '/data' },
      ],
      ports: [
        { access: NET.BIND_TCP, port: 8080 },
        { access: NET.CONNECT_TCP, port: 443 },
        { access: NET.CONNECT_TCP, port: 5432 },
      ],
      warnings: [],
    });
  });

  it('handles only the network right that has an annotation', () => {
    const plan = compileLandlock({ [`${P}net.connect`]: '' }, 4)!;
    expect(plan.handledFs).toBe(0n);
    expect(plan.handledNet).toBe(NET.CONNECT_TCP);
    expect(plan.ports).toEqual([]);
  });

  it('drops what an old ABI lacks, one sentence each, in best-effort mode', () => {
    const plan = compileLandlock({ [`${P}fs.rw`]: '/data', [`${P}net.bind`]: '80' }, 1)!;
    expect(plan.handledFs).toBe(V1);
    expect(plan.paths).toEqual([{ access: V1, path: '/data' }]);
    expect(plan.handledNet).toBe(0n);
    expect(plan.ports).toEqual([]);
    expect(plan.warnings).toEqual([
      'Landlock ABI 1 lacks REFER (ABI 2): renaming or linking files into another directory is always denied',
      'Landlock ABI 1 lacks TRUNCATE (ABI 3): truncating files is not restricted',
      'Landlock ABI 1 lacks IOCTL_DEV (ABI 5): ioctl on device files is not restricted',
      'Landlock ABI 1 has no TCP rules (ABI 4): run.hako.landlock.net.bind not applied',
    ]);
  });

  it('keeps handledFs within the ABI: ABI 3 has TRUNCATE but not IOCTL_DEV', () => {
    const plan = compileLandlock({ [`${P}fs.ro`]: '/' }, 3)!;
    expect(plan.handledFs).toBe(V1 | FS.REFER | FS.TRUNCATE);
    expect(plan.warnings).toEqual(['Landlock ABI 3 lacks IOCTL_DEV (ABI 5): ioctl on device files is not restricted']);
  });

  it('says so when Landlock is unavailable, leaving nothing to enforce', () => {
    const plan = compileLandlock({ [`${P}fs.ro`]: '/usr' }, 0)!;
    expect(plan.handledFs | plan.handledNet).toBe(0n);
    expect(plan.warnings).toEqual(['Landlock is not available (ABI 0): the filesystem rules were not applied']);
  });

  it('drops only the missing path, and says which', () => {
    const plan = compileLandlock({ [`${P}fs.ro`]: '/usr:/nope' }, 7, { rootfsExists: (p) => p !== '/nope' })!;
    expect(plan.paths.map((p) => p.path)).toEqual(['/usr']);
    expect(plan.warnings).toEqual(['run.hako.landlock.fs.ro: /nope does not exist in the container, its rule was dropped']);
  });

  it('refuses every drop in strict mode', () => {
    expect(() => compileLandlock({ [`${P}fs.ro`]: '/usr', [`${P}strict`]: 'true' }, 2)).toThrow(
      new LandlockError('Landlock ABI 2 lacks TRUNCATE (ABI 3): truncating files is not restricted (run.hako.landlock.strict is true)'),
    );
    expect(() => compileLandlock({ [`${P}fs.ro`]: '/x', [`${P}strict`]: 'true' }, 7, { rootfsExists: () => false })).toThrow(
      /\/x does not exist/,
    );
    expect(compileLandlock({ [`${P}fs.ro`]: '/usr', [`${P}strict`]: 'true' }, 7)!.warnings).toEqual([]);
  });

  it.each([
    [{ [`${P}fs.readonly`]: '/' }, 'annotation run.hako.landlock.fs.readonly: unknown Landlock annotation'],
    [{ [`${P}fs.ro`]: 'usr' }, 'annotation run.hako.landlock.fs.ro: "usr" is not an absolute path'],
    [{ [`${P}net.bind`]: '80,http' }, 'annotation run.hako.landlock.net.bind: "http" is not a TCP port (0..65535)'],
    [{ [`${P}net.connect`]: '70000' }, 'annotation run.hako.landlock.net.connect: "70000" is not a TCP port (0..65535)'],
    [{ [`${P}strict`]: 'yes' }, 'annotation run.hako.landlock.strict: must be "true" or "false", not "yes"'],
  ])('rejects %j', (annotations, message) => {
    expect(() => compileLandlock(annotations, 7)).toThrow(LandlockError);
    expect(() => compileLandlock(annotations, 7)).toThrow(message);
  });
});
