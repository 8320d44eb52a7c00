// A copy of the FHIR bundle as its users get it — config, package.json (with the build hook),
// build/ and server/ — without what a build leaves (rootfs/, data/, .cache/). The copy must lie
// below the repository, where the hook finds the workspace's node_modules.
import fs from 'node:fs';
import path from 'node:path';

const FHIR = path.resolve(import.meta.dirname, '..');

/** auth false: with HAKO_FHIR_AUTH=off in the container's environment.
 *  policy false: without the two-phase seccomp profile, the Landlock rules and the shim, for probes
 *  `hako exec`'d to look at the other walls (ids, namespaces, mounts, capabilities) with calls
 *  the server itself never makes; the policy has tests of its own (test/escape). */
export function copyFhirBundle(dest: string, o: { policy?: boolean; auth?: boolean } = {}): void {
  for (const name of ['config.json', 'package.json']) fs.copyFileSync(path.join(FHIR, name), path.join(dest, name));
  for (const dir of ['build', 'server']) fs.cpSync(path.join(FHIR, dir), path.join(dest, dir), { recursive: true });
  if (o.auth === false) {
    // HAKO_FHIR_AUTH=off: for suites about storage, where a token adds nothing.
    const file = path.join(dest, 'config.json');
    const cfg = JSON.parse(fs.readFileSync(file, 'utf8'));
    cfg.process.env.push('HAKO_FHIR_AUTH=off');
    fs.writeFileSync(file, JSON.stringify(cfg, null, 2));
  }
  if (o.policy === false) {
    const file = path.join(dest, 'config.json');
    const cfg = JSON.parse(fs.readFileSync(file, 'utf8'));
    delete cfg.linux.seccomp;
    // The preload shim's allowlists too (run.hako.shim.*): they would refuse the probe's connects first.
    for (const key of Object.keys(cfg.annotations ?? {}))
      if (key.startsWith('run.hako.landlock.') || key.startsWith('run.hako.shim.')) delete cfg.annotations[key];
    fs.writeFileSync(file, JSON.stringify(cfg, null, 2));
  }
}
