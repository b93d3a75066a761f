/**
 * A server that closes idle connections itself must be reported as the
 * server's own idle timeout, not as a middlebox; behind a shorter LB both must
 * be found. The tell: TCP keepalive refreshes a middlebox's idle timer but not
 * an application's, so the probe's keepalive'd watch connections outlive the
 * LB and still see the server's close.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLbTopology, createPairTopology } from '../../src/netns/index.js';
import { requireNetns } from '../require-netns.js';
import { assertServerClose, runProbeCli, startIdleServer, summary } from './fixtures.js';

const PORT = 7000;

for (const mode of ['fin', 'rst'] as const) {
  const kind = mode === 'fin' ? 'fin' : 'rst-by-server';
  test(`a server that ${mode === 'fin' ? 'closes' : 'resets'} connections idle for 3 s (no middlebox) is reported as the server's idle close (${kind})`, async (t) => {
    if (!requireNetns(t)) return;
    const pair = await createPairTopology();
    try {
      await startIdleServer(pair.b, PORT, 3000, mode);
      const run = await runProbeCli(pair.a, [`198.18.1.2:${PORT}`, '--max', '30s', '--json']);
      const r = assertServerClose(run, 3000, kind);
      // The watch connections, keepalive or not, were closed by the server too.
      assert.ok(
        r.evidence.some((e) => e.role === 'watch' && e.outcome === kind),
        `no watch connection saw the server's close: ${summary(run)}`,
      );
      assert.equal(r.recommendation?.basis, 'server', summary(run));
    } finally {
      await pair.destroy();
    }
  });
}

test('a server closing idle connections at 8 s behind an LB that expires them at 4 s: both reported', async (t) => {
  if (!requireNetns(t)) return;
  const lb = await createLbTopology({ lbIdleSeconds: 4, expiry: 'rst' });
  try {
    await startIdleServer(lb.backend, PORT, 8000, 'fin');
    const run = await runProbeCli(lb.client, [
      `${lb.vip}:${PORT}`,
      '--max',
      '30s',
      '--watch-server',
      '12s',
      '--json',
    ]);
    const r = run.report;
    assert.ok(r, summary(run));
    assert.equal(run.code, 0, summary(run));
    assert.equal(r.enforcedBy, 'middlebox', summary(run));
    assert.equal(r.expiry, 'rst', summary(run));
    assert.equal(r.middlebox?.expiry, 'rst', summary(run));
    assert.ok(Math.abs(r.middlebox!.estimateMs - 4000) <= 1000, summary(run));
    assert.equal(r.server?.expiry, 'fin', summary(run));
    assert.ok(Math.abs(r.server!.idleCloseMs - 8000) <= 1000, summary(run));
    assert.equal(r.recommendation?.basis, 'middlebox', summary(run));
  } finally {
    await lb.destroy();
  }
});
