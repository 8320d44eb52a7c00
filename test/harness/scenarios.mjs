// The library's scenarios, each run in a node process of its own as root or as the test
// user (run-scenario.mjs): what a test suite does with `import { Hako } from 'hako'`.
// Each returns what it saw (JSON) and the host pids of every process it started, so the
// test can check from outside that nothing is left: state dirs, mounts, cgroups, processes.
import net from 'node:net';
import { Hako } from '../../dist/index.js';

const errorOf = (e) => ({ name: e.name, message: e.message, step: e.step, errno: e.errno, path: e.path });
async function failure(p) {
  try {
    await p;
    return null;
  } catch (e) {
    return errorOf(e);
  }
}
const firstLine = (stream) =>
  new Promise((resolve) => {
    let text = '';
    stream.setEncoding('utf8');
    stream.on('data', function on(c) {
      text += c;
      if (text.includes('\n')) {
        stream.off('data', on);
        resolve(text.slice(0, text.indexOf('\n')));
      }
    });
  });

export const scenarios = {
  /** run, start with streamed output, exec, state, kill, wait, close twice, exec when stopped and when closed. */
  async basics({ root, rootfs }) {
    const pids = [];
    const hako = new Hako({ root });
    const run = await hako.run({ rootfs, args: ['sh', '-c', 'echo hello; echo oops >&2; exit 3'] });
    const c = await hako.start({
      rootfs,
      args: ['sh', '-c', 'echo up; trap "echo bye; exit 5" TERM; while :; do sleep 0.05; done'],
      env: { GREETING: 'hi there' },
    });
    pids.push(c.pid);
    const up = await firstLine(c.stdout);
    const status = c.state().status;
    const exec = await c.exec(['sh', '-c', 'echo $$ "$GREETING"; hostname; echo err >&2; exit 7']);
    const streamed = await c.spawn(['sh', '-c', 'echo one; sleep 0.1; echo two']);
    pids.push(streamed.pid);
    const lines = [];
    streamed.stdout.setEncoding('utf8');
    streamed.stdout.on('data', (d) => lines.push(d));
    const streamedExit = await streamed.wait();
    const bye = firstLine(c.stdout);
    c.kill('TERM');
    const exit = await c.wait();
    const afterExit = { bye: await bye, kill: c.kill('TERM') };
    const execStopped = await failure(c.exec(['true']));
    await c.close();
    await c.close();
    const execClosed = await failure(c.exec(['true']));
    const k = await hako.start({ rootfs, args: ['sleep', '60'] });
    pids.push(k.pid);
    k.kill('KILL');
    const killed = await k.wait();
    await k.close();
    await hako.close();
    return {
      pids,
      run,
      up,
      status,
      exec,
      streamed: { lines: lines.join(''), exit: streamedExit },
      exit,
      afterExit,
      execStopped,
      execClosed,
      killed,
    };
  },

  /** Bad input: one sentence each, with the step, errno and path. */
  async bad({ root, rootfs }) {
    const hako = new Hako({ root });
    const out = {
      missingRootfs: await failure(hako.run({ rootfs: `${rootfs}-not-there`, args: ['true'] })),
      notFound: await failure(hako.run({ rootfs, args: ['/bin/no-such-program'] })),
      notFoundInPath: await failure(hako.run({ rootfs, args: ['no-such-program'] })),
      emptyArgs: await failure(hako.run({ rootfs, args: [] })),
      badEnv: await failure(hako.run({ rootfs, args: ['true'], env: { 'A=B': 'c' } })),
      twoSources: await failure(hako.run({ rootfs, bundle: rootfs, args: ['true'] })),
      image: await failure(hako.run({ image: '/some/oci-layout', args: ['true'] })),
      badConfig: await failure(hako.run({ rootfs, args: ['true'], config: { process: { cwd: 'relative' } } })),
      badMountSource: await failure(hako.run({ rootfs, args: ['true'], mounts: [{ source: '/no/such/dir', target: '/mnt' }] })),
      badCwd: await failure(hako.run({ rootfs, args: ['true'], cwd: '/no/such/dir' })),
    };
    await hako.close();
    return { pids: [], ...out };
  },

  /** network 'none' (not even lo) and 'loopback'; a published port served from inside. */
  async network({ root, rootfs, hostTools, node }) {
    const hako = new Hako({ root });
    const none = await hako.run({ rootfs, args: ['ip', '-o', 'link', 'show', 'lo'], network: 'none' });
    const loopback = await hako.run({ rootfs, args: ['ip', '-o', 'link', 'show', 'lo'], network: 'loopback' });
    // The server accepts on the socket it was handed (fd 3), as a socket-activated one does.
    const server = `require('net').createServer((s) => s.end(process.env.LISTEN_FDNAMES + ' from pid ' + process.pid)).listen({ fd: 3 }); console.log('listening');`;
    const c = await hako.start({ ...hostTools, args: [node, '-e', server], ports: [{ container: 8080 }], network: 'none' });
    const listening = await firstLine(c.stdout);
    const [host, port] = c.address(8080).split(':');
    const reply = await new Promise((resolve, reject) => {
      let text = '';
      net
        .connect(Number(port), host)
        .on('data', (d) => (text += d))
        .on('end', () => resolve(text))
        .on('error', reject);
    });
    const pids = [c.pid];
    await c.close();
    // The port is closed with the container.
    const refused = await new Promise((resolve) =>
      net
        .connect(Number(port), host)
        .on('error', (e) => resolve(e.code))
        .on('connect', () => resolve('connected')),
    );
    await hako.close();
    return { pids, none, loopback, listening, address: { host, port: Number(port) }, reply, refused };
  },

  /** 50 containers started at once from one process, each with its own output. */
  async parallel({ root, rootfs, count = 50 }) {
    const hako = new Hako({ root });
    const pids = [];
    const t0 = Date.now();
    let timerTicks = 0;
    const ticker = setInterval(() => timerTicks++, 10);
    const results = await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const c = await hako.start({ rootfs, args: ['sh', '-c', `echo ${i}; sleep 0.3; echo done $$`] });
        pids.push(c.pid);
        const r = await Promise.all([
          new Promise((resolve) => {
            let t = '';
            c.stdout.setEncoding('utf8');
            c.stdout.on('data', (d) => (t += d)).on('end', () => resolve(t));
          }),
          c.wait(),
        ]);
        const running = hako.containers().length;
        await c.close();
        return { stdout: r[0], code: r[1].code, running };
      }),
    );
    clearInterval(ticker);
    const ms = Date.now() - t0;
    const maxRunning = Math.max(...results.map((r) => r.running));
    await hako.close();
    return {
      pids,
      ms,
      timerTicks,
      maxRunning,
      ok: results.every((r, i) => r.code === 0 && r.stdout === `${i}\ndone 1\n`),
      bad: results.filter((r, i) => r.code !== 0 || r.stdout !== `${i}\ndone 1\n`).slice(0, 3),
    };
  },

  /** A script that throws mid-way with containers running (and one exec'd process): the exit guard removes them. */
  async throws({ root, rootfs }) {
    const hako = new Hako({ root });
    const a = await hako.start({ rootfs, args: ['sleep', '60'] });
    const b = await hako.start({ rootfs, args: ['sleep', '60'] });
    const e = await b.spawn(['sleep', '60']);
    process.stdout.write(JSON.stringify({ pids: [a.pid, b.pid, e.pid] }) + '\n');
    throw new Error('the test failed here');
  },

  /** The process is SIGKILLed: its containers die with it; the next Hako on the root sweeps their state. */
  async killed({ root, rootfs }) {
    const hako = new Hako({ root });
    const a = await hako.start({ rootfs, args: ['sleep', '60'] });
    const b = await hako.start({ rootfs, args: ['sleep', '60'] });
    process.stdout.write(JSON.stringify({ pids: [a.pid, b.pid] }) + '\n');
    process.kill(process.pid, 'SIGKILL');
  },

  /** One hako.run(options): the suites that run a container as either user (api-run.ts). */
  async run({ root, options }) {
    const hako = new Hako({ root });
    return { pids: [], ...(await hako.run(options)) };
  },

  /** A fresh Hako on a root with stale containers: its first start sweeps them. */
  async sweep({ root, rootfs }) {
    const hako = new Hako({ root });
    const r = await hako.run({ rootfs, args: ['true'] });
    return { pids: [], code: r.code };
  },
};
