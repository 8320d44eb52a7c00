// The C executor's plan reader under AddressSanitizer and UBSan: valid,
// truncated and corrupted plans end in a clean exit, never a crash.
import { describe, it, expect } from 'vitest';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { REPO } from '../helpers/env.js';

describe('native plan reader', () => {
  it('survives truncated and corrupted plans under ASan/UBSan', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-asan-'));
    const bin = path.join(dir, 'plan-reader');
    execFileSync('cc', [
      '-std=gnu11',
      '-D_GNU_SOURCE',
      '-Wall',
      '-Wextra',
      '-Werror',
      '-g',
      '-fsanitize=address,undefined',
      '-fno-sanitize-recover=all',
      '-o',
      bin,
      path.join(REPO, 'test/native/plan-reader.c'),
      path.join(REPO, 'native/executor.c'),
      path.join(REPO, 'native/fdpass.c'),
    ]);
    const out = execFileSync(bin, ['1000'], { encoding: 'utf8' });
    fs.rmSync(dir, { recursive: true, force: true });
    expect(out).toMatch(/^plan reader: valid, \d+ truncations and 1000 corruptions handled$/m);
  });
});
