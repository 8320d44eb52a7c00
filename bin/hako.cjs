#!/usr/bin/env node
// The hako command: runs the bundled CLI (dist/cli/hako.cjs) with the V8 code
// cache tools/bundle-cli.mjs wrote beside it, so its functions are not
// compiled again on every call. The cache file opens with the SHA-1 of the
// bundle it was made from: V8 itself only compares the source's length, and
// would run stale code for a changed bundle of the same length. A missing,
// stale or rejected cache (another node) only costs the compile.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const Module = require('node:module');

const file = path.join(__dirname, '../dist/cli/hako.cjs');
const source = fs.readFileSync(file);
const digest = `${crypto.createHash('sha1').update(source).digest('hex')}\n`;
let cachedData;
try {
  const cache = fs.readFileSync(`${file}.v8cache`);
  if (cache.subarray(0, digest.length).toString('latin1') === digest) cachedData = cache.subarray(digest.length);
} catch {
  // no cache: compile from source
}
const script = new vm.Script(Module.wrap(source.toString('utf8')), { filename: file, cachedData });
const mod = new Module(file, module);
mod.filename = file;
mod.paths = Module._nodeModulePaths(path.dirname(file));
// The build writes the cache once the call is done, with every function it compiled.
const out = process.env.HAKO_WRITE_CODE_CACHE;
if (out) process.on('exit', () => fs.writeFileSync(out, Buffer.concat([Buffer.from(digest, 'latin1'), script.createCachedData()])));
script.runInThisContext()(mod.exports, Module.createRequire(file), mod, file, path.dirname(file));
