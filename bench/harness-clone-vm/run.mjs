// Interleaves the two clones of clone.c (see there) and prints medians and CPU per spawn.
import fs from 'node:fs';
import os from 'node:os';
import { createRequire } from 'node:module';
const vm = createRequire(import.meta.url)(process.env.CLONE_ADDON);
const keep = [];
for (let i = 0; i < Number(process.argv[2] ?? 0); i++) keep.push(new Array(1e5).fill(i));
const NS = 0x20000 | 0x4000000 | 0x8000000 | 0x20000000 | 0x40000000; // NEWNS UTS IPC PID NET, as hako's plan asks
const N = Number(process.argv[3] ?? 100);
const med = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const cpu = () => {
  const f = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 10;
};
const modes = { fork: 0, CLONE_VM: 1 };
const R = {};
for (let i = 0; i < N; i++)
  for (const [name, m] of Object.entries(modes)) {
    const c0 = cpu();
    const r = vm.spawn(m, NS, process.env.EXIT0);
    const c1 = cpu();
    if (r.code) throw new Error('exit ' + r.code);
    const x = (R[name] ??= { clone: [], total: [], cpu: 0 });
    x.clone.push(r.clone);
    x.total.push(r.total);
    x.cpu += c1 - c0;
  }
console.log(`node rss ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB, ${N} interleaved rounds, load ${os.loadavg()[0].toFixed(1)}`);
for (const [k, x] of Object.entries(R))
  console.log(
    `  ${k.padEnd(9)} clone3 ${med(x.clone).toFixed(2)} ms, clone to exit ${med(x.total).toFixed(2)} ms, cpu (process + child) ${(x.cpu / N).toFixed(2)} ms`,
  );
