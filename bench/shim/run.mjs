#!/usr/bin/env node
// The preload shim's cost on its hot path (docs/limits.md): a malloc/free loop, compiled here,
// run with and without the shim preloaded (LD_PRELOAD on the host: the container adds nothing
// to a malloc), interleaved A B A B … and reported as medians and their ratio, as MACHINE.md
// asks on this noisy machine. Also the instructions per pair under callgrind when valgrind is
// there, which are steadier than time.
//
//   node bench/shim/run.mjs [--rounds 9] [--iter 20000000]
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { SHIM_TABLE, shimConfigText } from '../../dist/plan/shim.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '9' }, iter: { type: 'string', default: '20000000' } } });
const rounds = Number(values.rounds);
const iter = Number(values.iter);
const repo = path.resolve(import.meta.dirname, '../..');
const lib = path.join(repo, 'build/Release/hako-shim.so');
if (!fs.existsSync(lib)) throw new Error(`${lib} is missing: run npm run build`);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shim-bench-'));
try {
  const bin = path.join(dir, 'malloc-bench');
  execFileSync('gcc', ['-O2', '-o', bin, path.join(import.meta.dirname, 'malloc-bench.c')]);
  // The shim's directory, as the runtime fills it: a memory ceiling well above what the loop holds.
  fs.copyFileSync(lib, path.join(dir, 'hako-shim.so'));
  fs.writeFileSync(path.join(dir, 'config'), shimConfigText({ memory: 1 << 30, processes: 64, files: 1024 }));
  const table = Buffer.alloc(SHIM_TABLE.HEADER + SHIM_TABLE.SLOT * 64);
  table.writeUInt32LE(SHIM_TABLE.MAGIC, 0);
  table.writeUInt32LE(SHIM_TABLE.VERSION, 4);
  table.writeUInt32LE(64, 12);
  fs.writeFileSync(path.join(dir, 'table'), table);
  fs.writeFileSync(path.join(dir, 'denials'), '');
  const once = (shim) => {
    const r = spawnSync(bin, [String(iter)], { encoding: 'utf8', env: shim ? { LD_PRELOAD: path.join(dir, 'hako-shim.so') } : {} });
    if (r.status !== 0) throw new Error(`malloc-bench failed: ${r.stderr}`);
    return Number(r.stdout.trim());
  };
  const a = [];
  const b = [];
  for (let i = 0; i < rounds; i++) {
    a.push(once(false));
    b.push(once(true));
  }
  const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  const out = {
    iterations: iter,
    rounds,
    nsPerPair: { without: median(a), with: median(b) },
    ratio: Number((median(b) / median(a)).toFixed(3)),
  };
  const valgrind = spawnSync('valgrind', ['--version']).status === 0;
  if (valgrind) {
    const count = (shim) => {
      const outFile = path.join(dir, `cg.${shim ? 'with' : 'without'}`);
      const r = spawnSync('valgrind', ['--tool=callgrind', `--callgrind-out-file=${outFile}`, bin, '1000000'], {
        encoding: 'utf8',
        env: shim ? { LD_PRELOAD: path.join(dir, 'hako-shim.so') } : {},
      });
      const m = /Collected : (\d+)/.exec(r.stderr);
      return m ? Number(m[1]) : NaN;
    };
    const without = count(false);
    const withShim = count(true);
    // Start-up (the loader, the shim's constructor) is in both; per pair it is noise at 1M pairs.
    out.instructionsPerPair = { without: +(without / 1e6).toFixed(1), with: +(withShim / 1e6).toFixed(1) };
  }
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
