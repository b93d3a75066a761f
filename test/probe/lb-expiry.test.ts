/**
 * keepwire probe against the namespace LB (kernel NAT whose conntrack timer
 * is the LB idle timeout): it must find the 5 s timeout within ±1 s and tell
 * a reset from a blackhole, judged by the kernel both with a keepalive probe
 * as the use (--payload none, TCP_INFO) and with application bytes to a
 * server that never answers (--payload HEX, SIOCOUTQ).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLbTopology, type Expiry } from '../../src/netns/index.js';
import { requireNetns } from '../require-netns.js';
import { assertMiddlebox, type ProbeRun, runProbeCli, startIdleServer } from './fixtures.js';

const LB_IDLE_S = 5;
const PORT = 7000;

/** The LB measured as such; stderr is no terminal here and --progress was not given: no progress lines. */
function assertLb(run: ProbeRun, expiry: Expiry): void {
  assertMiddlebox(run, expiry, LB_IDLE_S);
  assert.equal(run.stderr, '');
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
      assertLb(keepaliveProbe, expiry);
      assertLb(bytes, expiry);
      assert.equal(keepaliveProbe.report!.settings.payload, 'none');
      assert.equal(bytes.report!.settings.payload, '6b770a');
    } finally {
      await lb.destroy();
    }
  });
}
