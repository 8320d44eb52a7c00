// OCI hooks get the state on stdin but need not read it: only a non-zero exit
// or a timeout fails one (issue 10 B: `spawnSync … EPIPE` failed `true` at random).
import { describe, it, expect } from 'vitest';
import { runHooks } from '../../src/runtime/hooks.js';
import type { OciState } from '../../src/oci/state.js';

const state: OciState = { ociVersion: '1.2.0', id: 'h1', status: 'creating', pid: 1, bundle: '/b', annotations: { a: 'b' } };
// Bigger than a socket's buffer: writing it to a hook that exits unread meets EPIPE every time.
const big: OciState = { ...state, annotations: { big: 'x'.repeat(1 << 20) } };

describe('hooks', () => {
  it('a hook that is `true` never fails, run 50 times', () => {
    for (let i = 0; i < 50; i++) expect(() => runHooks('prestart', [{ path: '/bin/true' }], state)).not.toThrow();
  });

  it('a hook that exits without reading a state bigger than the pipe still succeeds', () => {
    for (let i = 0; i < 5; i++) expect(() => runHooks('createRuntime', [{ path: '/bin/true' }], big)).not.toThrow();
  });

  it('the exit status still counts when the hook did not read its stdin', () => {
    expect(() => runHooks('createRuntime', [{ path: '/bin/false' }], big)).toThrow('createRuntime hook /bin/false failed (exit status 1)');
    expect(() => runHooks('createRuntime', [{ path: '/bin/sh', args: ['sh', '-c', 'echo no >&2; exit 3'] }], state)).toThrow(
      'createRuntime hook /bin/sh failed (exit status 3): no',
    );
  });

  it('a hook that reads the whole state gets it', () => {
    expect(() => runHooks('prestart', [{ path: '/bin/sh', args: ['sh', '-c', 'test "$(wc -c)" -gt 1048576'] }], big)).not.toThrow();
  });

  it('a timeout still fails', () => {
    expect(() => runHooks('prestart', [{ path: '/bin/sleep', args: ['sleep', '10'], timeout: 1 }], state)).toThrow(
      'prestart hook /bin/sleep timed out after 1 s',
    );
  });
});
