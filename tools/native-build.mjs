#!/usr/bin/env node
// `npm install` builds the addon with node-gyp, which downloads node's headers unless told
// where they are: with no network but the npm registry that fails for any user without a
// `nodedir` in their npmrc. Point it at the headers installed with this node (Debian's
// /usr/include/node, an official tarball's include/node) when they are there.
import { spawnSync } from 'node:child_process';
import { copyFileSync, chmodSync, existsSync, realpathSync, renameSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const prefix = dirname(dirname(realpathSync(process.execPath)));
const local = existsSync(join(prefix, 'include/node/common.gypi'));
const nodeGyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
const r = spawnSync(process.execPath, [nodeGyp, 'rebuild', ...(local ? [`--nodedir=${prefix}`] : [])], { stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);

// bin/hako is the C front (issue 20), built with the addon; the node entry is bin/hako.cjs.
// Copied under another name and renamed into place, so a running bin/hako is never rewritten.
const repo = dirname(import.meta.dirname);
const tmp = join(repo, 'bin/.hako.tmp');
copyFileSync(join(repo, 'build/Release/hako-front'), tmp);
chmodSync(tmp, 0o755);
renameSync(tmp, join(repo, 'bin/hako'));
