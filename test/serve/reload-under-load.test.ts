/**
 * 60 reloads of a one-process server under a keep-alive GET load (issue
 * #23 defect 4 and the chaos suite's reload part): every SIGHUP swaps the
 * generation on the same listening socket, and the old generation closes a
 * client connection only right after a response that said
 * `Connection: close` (or at keepalive_timeout), so no client ever sees a
 * reset, a 5xx, or even a clean close before its answer. The process's
 * descriptors come back to where they were once the load stops.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { closedPort, serveCli } from '../support.js';
import { fdCount, loadSummary, pollUntil, reloadsUnderLoad } from './workers-support.js';

const RELOADS = 60;

test(`one process: ${RELOADS} reloads under keep-alive load, zero client errors, no clean close before an answer, descriptors back`, {
  timeout: 280_000,
}, async (t) => {
  const port = await closedPort();
  const serve = serveCli(
    t,
    `worker_shutdown_timeout 10s;
http {
    server {
        listen 127.0.0.1:${port};
        location / { return 200 "hi\\n"; }
    }
}
`,
  );
  const pid = serve.child.pid!;
  await serve.waitFor((l) => l.msg === 'started', 'started');
  const fdsBefore = fdCount(pid);
  const stats = await reloadsUnderLoad(serve, port, { reloads: RELOADS, clients: 4, timeoutMs: 30_000 });
  t.diagnostic(loadSummary(stats));
  assert.equal(stats.errors, 0, stats.errorSamples.join(', '));
  assert.equal(stats.cleanCloses, 0, 'no connection closed under a client');
  assert.ok(stats.closeAnnounced >= RELOADS, 'each reload moved the busy clients with Connection: close');
  // The old generations drained: the process holds what it held at start.
  await pollUntil(() => fdCount(pid) <= fdsBefore, 30_000);
  assert.equal(fdCount(pid), fdsBefore, 'descriptors before and after');
});
