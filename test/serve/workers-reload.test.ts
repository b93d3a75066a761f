/**
 * 60 reloads of a `worker_processes 2` server under a keep-alive GET load:
 * each SIGHUP starts a new generation of workers on the same listening
 * socket and drains the old one. No client sees an error (a client that
 * honours `Connection: close` and sends again after a clean close before
 * any answer), and the master's descriptors do not grow.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { closedPort } from '../support.js';
import { childrenOf, fdCount, keepAliveLoad, newStats, startMaster } from './workers-support.js';

/** Resident memory of `pid`, KiB. */
function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

const RELOADS = 60;

test(`worker_processes 2: ${RELOADS} reloads under keep-alive load, zero client errors, no descriptor growth in the master`, {
  timeout: 600_000,
}, async (t) => {
  const port = await closedPort();
  const master = await startMaster(
    t,
    `worker_processes 2;
worker_shutdown_timeout 10s;
http {
    server {
        listen 127.0.0.1:${port};
        location / { return 200 "hi\\n"; }
    }
}
`,
  );
  const fdsBefore = fdCount(master.pid);
  // After a few reloads: the first ones load code (config, resolver) the master keeps.
  const warmUp = async () => {
    for (let i = 0; i < 3; i++) {
      const seen = master.lines.length;
      master.child.kill('SIGHUP');
      await master.waitFor(
        (l) => master.lines.indexOf(l) >= seen && l.pid === master.pid && l.msg === 'reloaded',
        'warm-up reload',
        60_000,
      );
    }
  };
  await warmUp();
  const rssBefore = rssKiB(master.pid);
  let running = true;
  const stats = newStats();
  const load = keepAliveLoad(port, { clients: 4, maxRequests: 1_000_000, running: () => running, stats });
  try {
    for (let i = 0; i < RELOADS; i++) {
      const seen = master.lines.length;
      master.child.kill('SIGHUP');
      const outcome = await master.waitFor(
        (l) =>
          master.lines.indexOf(l) >= seen &&
          l.pid === master.pid &&
          (l.msg === 'reloaded' || /reload rejected/.test(String(l.msg))),
        `reload ${i + 1}`,
        60_000,
      );
      assert.equal(outcome.msg, 'reloaded', JSON.stringify(outcome));
      const okNow = stats.ok;
      // Traffic goes on between reloads, on the new generation.
      while (stats.ok < okNow + 20 && stats.errors === 0) await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    running = false;
    await load;
  }
  t.diagnostic(
    `${stats.ok} responses, ${stats.closeAnnounced} with Connection: close, ${stats.cleanCloses} clean closes before an answer, ${stats.errors} errors`,
  );
  assert.equal(stats.errors, 0, stats.errorSamples.join(', '));
  // Every old generation has left: two workers, and the master holds what it held at start.
  const end = Date.now() + 30_000;
  while ((childrenOf(master.pid).length !== 2 || fdCount(master.pid) > fdsBefore) && Date.now() < end)
    await new Promise((r) => setTimeout(r, 100));
  assert.equal(childrenOf(master.pid).length, 2);
  assert.equal(fdCount(master.pid), fdsBefore, 'master descriptors before and after');
  // Memory: a leak of one generation's worth per reload (child handles,
  // configs, sockets) would grow by far more than this bound over 60.
  const rssAfter = rssKiB(master.pid);
  t.diagnostic(`master RSS ${rssBefore} KiB -> ${rssAfter} KiB`);
  assert.ok(rssAfter - rssBefore < 16 * 1024, `master RSS grew from ${rssBefore} to ${rssAfter} KiB`);
});
