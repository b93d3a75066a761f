/**
 * `keepwire lab websocket` under both LB kinds, on the real kernel with real
 * nginx as the L7 LB: a quiet WebSocket survives an L4 LB with TCP
 * keepalive, an L7 LB only with data (keepwire's websocket_heartbeat or the
 * application's pings); the capture shows the probes ending at the L7 LB.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type LabReport, runLab, SCENARIOS } from '../../src/lab/index.js';
import { requireNetns } from '../require-netns.js';

function assertAllMatched(report: LabReport): void {
  const bad = report.results
    .filter((r) => !r.ok)
    .map((r) => `${r.scenario}/${r.variant}: expected ${r.expected}, got ${r.observed} (${r.detail})`);
  assert.deepEqual(bad, [], bad.join('\n'));
  if (process.env.CI === 'true')
    assert.deepEqual(report.skipped, [], 'CI runs every variant (nginx must be installed)');
  else
    for (const s of report.skipped)
      process.stderr.write(`# skipped ${s.scenario}/${s.variant}: ${s.reason}\n`);
}

const timeline = (report: LabReport, variant: string) =>
  report.results.find((r) => r.variant === variant)?.timeline ?? [];
const kinds = (report: LabReport, variant: string) => timeline(report, variant).map((e) => e.kind);

test('websocket --lb l7: TCP keepalive probes end at the L7 LB, which closes; websocket_heartbeat and app pings keep it', async (t) => {
  if (!requireNetns(t)) return;
  const report = await runLab(SCENARIOS.websocket!, { lbIdleS: 3, expiry: 'rst', lbKind: 'l7' });
  assertAllMatched(report);
  if (report.results.length === 0) return;
  const probes = timeline(report, 'tcp-keepalive').filter((e) => e.kind === 'probe');
  assert.ok(
    probes.some((e) => e.host === 'client') && probes.some((e) => e.host === 'backend'),
    'probes were captured arriving at the L7 LB on both legs',
  );
  assert.ok(
    kinds(report, 'tcp-keepalive').includes('lb-close'),
    'and the L7 LB closed the connection anyway',
  );
  assert.ok(
    kinds(report, 'no-keepalive').includes('lb-timeout'),
    "nginx's own log says its idle timer fired",
  );
  assert.ok(
    timeline(report, 'websocket_heartbeat').some((e) => / [1-9]\d* WebSocket heartbeats sent/.test(e.what)),
    "keepwire's access line counts the heartbeats",
  );
});

test('websocket --lb l4: TCP keepalive keeps the NAT session as heartbeats and app pings do; without keepalive the LB resets', async (t) => {
  if (!requireNetns(t)) return;
  const report = await runLab(SCENARIOS.websocket!, { lbIdleS: 3, expiry: 'rst', lbKind: 'l4' });
  assertAllMatched(report);
  assert.ok(
    kinds(report, 'no-keepalive').includes('lb-expired'),
    'conntrack showed the LB forgetting the session',
  );
  assert.ok(kinds(report, 'tcp-keepalive').includes('probe'), 'probes were captured crossing the L4 LB');
  assert.ok(!kinds(report, 'tcp-keepalive').includes('lb-expired'), 'and the LB never forgot that session');
});
