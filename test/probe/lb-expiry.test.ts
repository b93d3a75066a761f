/**
 * keepwire probe against the namespace LB (kernel NAT whose conntrack timer
 * is the LB idle timeout): it must find the 5 s timeout within ±1 s and tell
 * a reset from a blackhole, judged by the kernel both with a keepalive probe
 * as the use (--payload none, TCP_INFO) and with application bytes to a
 * server that never answers (--payload HEX, SIOCOUTQ).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLbTopology, type Expiry, requireNetns } from '../../src/netns/index.js';
import { type ProbeRun, runProbeCli, startIdleServer, summary } from './fixtures.js';

const LB_IDLE_S = 5;
const PORT = 7000;

function assertMiddlebox(run: ProbeRun, expiry: Expiry): void {
  const r = run.report;
  assert.ok(r, summary(run));
  assert.equal(run.code, 0, summary(run));
  assert.equal(r.verdict, 'measured', summary(run));
  assert.equal(r.enforcedBy, 'middlebox', summary(run));
  assert.equal(r.expiry, expiry, summary(run));
  assert.equal(r.middlebox?.expiry, expiry, summary(run));
  assert.ok(
    Math.abs(r.idleTimeout!.estimateMs - LB_IDLE_S * 1000) <= 1000,
    `T ${r.idleTimeout!.estimateMs} ms is not within ±1 s of ${LB_IDLE_S} s\n${summary(run)}`,
  );
  assert.equal(r.server, null, `the server closes nothing, yet: ${summary(run)}`);
  // stderr is no terminal here and --progress was not given: no progress lines.
  assert.equal(run.stderr, '');
  // Every use that failed did so the way the LB expires sessions.
  for (const e of r.evidence) {
    if (e.role === 'grid' && e.usedAtMs !== undefined && e.outcome !== 'alive')
      assert.equal(e.outcome, expiry, summary(run));
  }
}

for (const expiry of ['rst', 'drop'] as const) {
  test(`an LB that forgets idle sessions after 5 s with ${expiry} expiry: T within ±1 s and kind ${expiry}, with a keepalive probe and with bytes as the use`, async (t) => {
    if (!requireNetns(t)) return;
    const lb = await createLbTopology({ lbIdleSeconds: LB_IDLE_S, expiry });
    try {
      // A server that reads and never answers: delivery is judged by the client's kernel alone.
      await startIdleServer(lb.backend, PORT, 0, 'never');
      const target = `${lb.vip}:${PORT}`;
      const [keepaliveProbe, bytes] = await Promise.all([
        runProbeCli(lb.client, [target, '--max', '30s', '--json']),
        runProbeCli(lb.client, [target, '--max', '30s', '--payload', '6b770a', '--json']),
      ]);
      assertMiddlebox(keepaliveProbe, expiry);
      assertMiddlebox(bytes, expiry);
      assert.equal(keepaliveProbe.report!.settings.payload, 'none');
      assert.equal(bytes.report!.settings.payload, '6b770a');
    } finally {
      await lb.destroy();
    }
  });
}
