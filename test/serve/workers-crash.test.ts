/**
 * A worker killed with SIGKILL under load: the master logs its exit and
 * forks a replacement at once on the same listening sockets; the other
 * worker keeps serving new connections meanwhile (the socket never closes,
 * so nothing is refused), and the only client errors are connections the
 * killed worker held.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { closedPort } from '../support.js';
import { childrenOf, keepAliveLoad, newStats, startMaster } from './workers-support.js';

test('worker_processes 2: kill -9 of a worker under load — served on, restarted at once, errors only on its connections', async (t) => {
  const port = await closedPort();
  const master = await startMaster(
    t,
    `worker_processes 2;
http {
    server {
        listen 127.0.0.1:${port};
        keepalive_requests 5;
        location / { return 200 "hi\\n"; }
    }
}
`,
  );
  const [victim, survivor] = childrenOf(master.pid) as [number, number];
  const CLIENTS = 8;
  let running = true;
  const stats = newStats();
  // keepalive_requests 5: every client opens a new connection every 5 requests.
  const load = keepAliveLoad(port, { clients: CLIENTS, maxRequests: 4000, running: () => running, stats });
  while (stats.ok < 100) await new Promise((r) => setTimeout(r, 20));

  process.kill(victim, 'SIGKILL');
  const exit = await master.waitFor(
    (l) => l.msg === 'worker exited unexpectedly' && l.worker === victim,
    'the exit logged',
  );
  assert.equal(exit.signal, 'SIGKILL');
  const forked = await master.waitFor(
    (l) =>
      l.msg === 'worker started' &&
      l.pid === master.pid &&
      l.worker !== victim &&
      l.generation === 1 &&
      Date.parse(String(l.time)) >= Date.parse(String(exit.time)),
    'a replacement forked',
  );
  // The master forks the replacement without delay (it had been serving).
  const forkMs = Date.parse(String(forked.time)) - Date.parse(String(exit.time));
  assert.ok(forkMs < 1000, `replacement forked ${forkMs} ms after the exit`);
  const okAtKill = stats.ok;
  const listening = await master.waitFor(
    (l) => l.msg === 'started' && l.pid === forked.worker,
    'the replacement listens',
    30_000,
  );
  const backMs = Date.parse(String(listening.time)) - Date.parse(String(exit.time));
  t.diagnostic(
    `replacement forked after ${forkMs} ms, listening after ${backMs} ms (Node start-up on this machine)`,
  );
  // Meanwhile the survivor took new connections.
  assert.ok(stats.ok > okAtKill, 'requests were answered while the replacement started');
  const servedBySurvivor = master.lines.filter((l) => l.msg === 'request' && l.pid === survivor).length;
  assert.ok(servedBySurvivor > 0);
  const okBefore = stats.ok;
  while (stats.ok < okBefore + 100) await new Promise((r) => setTimeout(r, 20));
  running = false;
  await load;
  assert.deepEqual(
    childrenOf(master.pid),
    [survivor, forked.worker as number].sort((a, b) => a - b),
  );
  // At most one failed request per client connection the killed worker held.
  assert.ok(stats.errors <= CLIENTS, `${stats.errors} errors: ${stats.errorSamples.join(', ')}`);
  t.diagnostic(`${stats.ok} ok, ${stats.errors} errors (${stats.errorSamples.join(', ')})`);
});
