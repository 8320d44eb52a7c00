// The shared libraries a dynamically linked binary loads, dynamic loader included, as ldd
// reports them (ldd runs the loader in list mode, so it sees exactly what the loader would).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Parses ldd output into absolute library paths; the vDSO has no file and is skipped. */
export function parseLdd(binary: string, output: string): string[] {
  const paths: string[] = [];
  for (const line of output.split('\n')) {
    const text = line.trim();
    if (!text) continue;
    const missing = /^(\S+) => not found$/.exec(text);
    if (missing) throw new Error(`${binary} needs ${missing[1]}, which the dynamic loader cannot find`);
    const found = /^\S+ => (\/\S+) \(0x[0-9a-f]+\)$/.exec(text) ?? /^(\/\S+) \(0x[0-9a-f]+\)$/.exec(text);
    if (found) paths.push(found[1]);
    else if (!/^\S+ \(0x[0-9a-f]+\)$/.test(text)) throw new Error(`cannot read this ldd line for ${binary}: ${text}`);
  }
  return [...new Set(paths)].sort();
}

export async function sharedLibraries(binary: string): Promise<string[]> {
  let stdout: string;
  try {
    ({ stdout } = await run('ldd', [binary]));
  } catch (err) {
    const out = `${(err as { stdout?: string }).stdout ?? ''}${(err as { stderr?: string }).stderr ?? ''}`;
    if (/not a dynamic executable|statically linked/.test(out)) return [];
    throw new Error(`ldd ${binary} failed: ${(err as Error).message}`);
  }
  return parseLdd(binary, stdout);
}
