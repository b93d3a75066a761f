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
import {
  childrenOf,
  fdCount,
  loadSummary,
  pollUntil,
  reloadsUnderLoad,
  startMaster,
} from './workers-support.js';

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
  const stats = await reloadsUnderLoad(master, port, {
    reloads: RELOADS,
    clients: 4,
    timeoutMs: 60_000,
    from: master.pid,
  });
  t.diagnostic(loadSummary(stats));
  assert.equal(stats.errors, 0, stats.errorSamples.join(', '));
  // Every old generation has left: two workers, and the master holds what it held at start.
  await pollUntil(() => childrenOf(master.pid).length === 2 && fdCount(master.pid) <= fdsBefore, 30_000);
  assert.equal(childrenOf(master.pid).length, 2);
  assert.equal(fdCount(master.pid), fdsBefore, 'master descriptors before and after');
  // Memory: a leak of one generation's worth per reload (child handles,
  // configs, sockets) would grow by far more than this bound over 60.
  const rssAfter = rssKiB(master.pid);
  t.diagnostic(`master RSS ${rssBefore} KiB -> ${rssAfter} KiB`);
  assert.ok(rssAfter - rssBefore < 16 * 1024, `master RSS grew from ${rssBefore} to ${rssAfter} KiB`);
});
