/**
 * `worker_processes 2` on a real `keepwire serve`: a master and two worker
 * processes share the listening sockets the master made, the kernel spreads
 * connections over both, a broken configuration on SIGHUP leaves the running
 * workers serving, SIGQUIT lets a request in flight finish, and gather()
 * answers once per worker.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fetchRaw, get, okResponse, rawUpstream } from '../proxy/http/fixtures.js';
import { closedPort, within } from '../support.js';
import { childrenOf, keepAliveLoad, startMaster } from './workers-support.js';

function conf(port: number, extra = '', listenParams = ''): string {
  return `worker_processes 2;
worker_shutdown_timeout 10s;
${extra}
http {
    server {
        listen 127.0.0.1:${port}${listenParams};
        location / { return 200 "hi\\n"; }
    }
}
`;
}

/** Requests per worker pid, from the access log lines of `port`. */
function requestsPerPid(lines: Record<string, unknown>[], port: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const l of lines)
    if (l.msg === 'request' && l.listen === `127.0.0.1:${port}`)
      out.set(l.pid as number, (out.get(l.pid as number) ?? 0) + 1);
  return out;
}

for (const [what, params] of [
  ['one shared socket', ''],
  ['reuseport (a socket per worker)', ' reuseport'],
] as const) {
  test(`worker_processes 2 (${what}): connections are spread over both workers, the master accepts none`, async (t) => {
    const port = await closedPort();
    const master = await startMaster(t, conf(port, '', params));
    const workers = childrenOf(master.pid);
    assert.equal(workers.length, 2, `two workers: ${workers}`);
    // Waves of 40 connections at once, 3 requests each. With SO_REUSEPORT the kernel hashes each
    // connection to one worker's socket, so one wave spreads them. On one shared socket every
    // worker is woken and whichever accepts first takes the connection (libuv accepts until
    // EAGAIN, as nginx without accept_mutex): both serve, but a wave may go 108/12 or worse, so
    // up to five waves are sent until each worker has served a connection.
    const reuseport = params !== '';
    let total = 0;
    for (let wave = 0; wave < (reuseport ? 1 : 5); wave++) {
      const stats = await keepAliveLoad(port, { clients: 40, maxRequests: 3, running: () => true });
      assert.equal(stats.errors, 0, stats.errorSamples.join(', '));
      assert.equal(stats.ok, 120);
      total += 120;
      await master.waitFor(
        () => [...requestsPerPid(master.lines, port).values()].reduce((a, b) => a + b, 0) === total,
        'every request logged',
      );
      if (requestsPerPid(master.lines, port).size === 2) break;
    }
    const per = requestsPerPid(master.lines, port);
    t.diagnostic(`requests per worker: ${[...per.values()].join(', ')}`);
    assert.deepEqual(
      [...per.keys()].sort((a, b) => a - b),
      workers,
      'only the workers serve, and both do',
    );
    // With reuseport, each worker took at least one connection in eight (3 requests each).
    if (reuseport)
      for (const [pid, n] of per)
        assert.ok(n >= 15, `worker ${pid} served ${n} of 120: ${[...per.values()]}`);
  });
}

test('worker_processes 2: a broken configuration on SIGHUP is refused and the same workers keep serving', async (t) => {
  const port = await closedPort();
  const master = await startMaster(t, conf(port));
  const before = childrenOf(master.pid);
  writeFileSync(master.file, `${conf(port)}\nbogus_directive on;\n`);
  master.child.kill('SIGHUP');
  const refused = await master.waitFor((l) => /reload rejected/.test(String(l.msg)), 'reload rejected');
  assert.equal(refused.pid, master.pid);
  // stderr and stdout are separate pipes: the diagnostic may arrive after the log line.
  await master.waitForStderr(/unknown directive "bogus_directive"/, 10_000).catch(() => {});
  assert.match(master.stderr(), /unknown directive "bogus_directive"/);
  assert.deepEqual(childrenOf(master.pid), before, 'no worker was started or stopped');
  const res = await fetchRaw(port, get('/'));
  assert.equal(res.status, 200);
});

test('worker_processes 2: SIGQUIT lets a request in flight finish, then the master and its workers exit 0', async (t) => {
  let arrived!: () => void;
  const inFlight = new Promise<void>((r) => {
    arrived = r;
  });
  const up = await rawUpstream((_req, respond) => {
    arrived();
    setTimeout(() => respond(okResponse('slow')), 1500);
  });
  t.after(() => up.close());
  const port = await closedPort();
  const master = await startMaster(
    t,
    `worker_processes 2;
worker_shutdown_timeout 10s;
http {
    server {
        listen 127.0.0.1:${port};
        location / { proxy_pass http://127.0.0.1:${up.port}; }
    }
}
`,
  );
  const workers = childrenOf(master.pid);
  const response = fetchRaw(port, get('/slow'));
  await within(inFlight, 10_000, 'request at the upstream');
  master.child.kill('SIGQUIT');
  const res = await response;
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), 'slow');
  assert.equal(await within(master.exited, 20_000, 'master exit'), 0);
  for (const w of workers) assert.ok(!existsSync(`/proc/${w}`), `worker ${w} exited`);
  const exits = master.lines.filter((l) => l.msg === 'worker exited');
  assert.deepEqual(exits.map((l) => [l.worker, l.code]).sort(), workers.map((w) => [w, 0]).sort());
});

test('worker_processes 2: gather() in a worker answers once per live worker, and skips one that died', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'keepwire-gather-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const probe = new URL('./gather-probe.js', import.meta.url).href;
  const saved = { opts: process.env.NODE_OPTIONS, dir: process.env.KEEPWIRE_TEST_GATHER_DIR };
  process.env.NODE_OPTIONS = `${saved.opts ?? ''} --import=${probe}`.trim();
  process.env.KEEPWIRE_TEST_GATHER_DIR = dir;
  const port = await closedPort();
  let master: Awaited<ReturnType<typeof startMaster>>;
  try {
    master = await startMaster(t, conf(port));
  } finally {
    if (saved.opts === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = saved.opts;
    if (saved.dir === undefined) delete process.env.KEEPWIRE_TEST_GATHER_DIR;
    else process.env.KEEPWIRE_TEST_GATHER_DIR = saved.dir;
  }
  const answersOf = (pid: number): number[] | undefined => {
    try {
      const v = JSON.parse(readFileSync(join(dir, `${pid}.json`), 'utf8')) as { pid: number }[];
      return Array.isArray(v) ? v.map((a) => a.pid).sort((a, b) => a - b) : undefined;
    } catch {
      return undefined;
    }
  };
  const until = async (what: string, ok: () => boolean, ms = 20_000) => {
    const end = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const [a, b] = childrenOf(master.pid) as [number, number];
  await until('both workers gathered both', () =>
    [a, b].every((w) => JSON.stringify(answersOf(w)) === JSON.stringify([a, b].sort((x, y) => x - y))),
  );
  process.kill(b, 'SIGKILL');
  await master.waitFor((l) => l.msg === 'worker exited unexpectedly' && l.worker === b, 'worker exit logged');
  // The survivor's answers never wait on the dead worker: first itself
  // alone or with the replacement, then both once the new one listens.
  await until('the survivor gathers itself and the replacement', () => {
    const now = childrenOf(master.pid);
    const got = answersOf(a);
    return now.length === 2 && !now.includes(b) && JSON.stringify(got) === JSON.stringify(now);
  });
});
