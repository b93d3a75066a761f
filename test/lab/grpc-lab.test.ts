/**
 * `keepwire lab grpc` on the real kernel with real grpc-js peers: a quiet
 * server stream and an idle channel behind keepwire's `grpc_pass`, whose
 * upstream leg crosses the lab's L4 LB (3 s idle). Without keepalive the
 * stream hangs (the LB forgot the session; the capture shows the late
 * message refused or dropped) and a call on the idle channel fails; TCP
 * keepalive probes or HTTP/2 PINGs on the upstream leg keep both.
 */
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { grpcJsAvailable } from '../../src/lab/grpc-service.js';
import { type LabReport, runLab, SCENARIOS } from '../../src/lab/index.js';
import type { TimelineEvent } from '../../src/lab/timeline.js';
import { requireNetns } from '../require-netns.js';

function assertAllMatched(report: LabReport): void {
  const bad = report.results
    .filter((r) => !r.ok)
    .map((r) => `${r.scenario}/${r.variant}: expected ${r.expected}, got ${r.observed} (${r.detail})`);
  assert.deepEqual(bad, [], bad.join('\n'));
  assert.equal(report.results.length, SCENARIOS.grpc!.length, 'every variant ran');
}

/** The peers need @grpc/grpc-js (a development dependency): CI has it; elsewhere a missing one skips. */
function requireGrpcJs(t: TestContext): boolean {
  if (grpcJsAvailable()) return true;
  if (process.env.CI === 'true') assert.fail('@grpc/grpc-js is not installed (npm ci installs it)');
  t.skip('@grpc/grpc-js is not installed');
  return false;
}

const result = (report: LabReport, variant: string) => {
  const r = report.results.find((x) => x.variant === variant);
  assert.ok(r, `variant ${variant} ran`);
  return r;
};
const timeline = (report: LabReport, variant: string): TimelineEvent[] => result(report, variant).timeline;
const kinds = (report: LabReport, variant: string) => timeline(report, variant).map((e) => e.kind);
const at = (events: TimelineEvent[], kind: string, match: RegExp) =>
  events.find((e) => e.kind === kind && match.test(e.what))?.at;

/** What every run shows, whatever the expiry mode. */
function assertCommonEvidence(report: LabReport): void {
  // The stream without keepalive hung: message 1 arrived, then nothing until the client's own deadline.
  const hung = result(report, 'stream-no-keepalive');
  assert.match(hung.detail, /the stream hung: nothing after message 1 .*DEADLINE_EXCEEDED/);
  assert.ok(kinds(report, 'stream-no-keepalive').includes('lb-expired'), 'conntrack showed the LB forget it');
  const events = timeline(report, 'stream-no-keepalive');
  const sent2 = at(events, 'grpc-sent', /message 2/);
  assert.ok(sent2, 'the server sent message 2 after the pause');
  assert.equal(at(events, 'grpc-message', /message 2/), undefined, 'and the client never received it');

  // TCP keepalive: probes from keepwire's upstream socket crossed the LB, which never forgot the session.
  assert.ok(
    timeline(report, 'stream-grpc_socket_keepalive').some((e) => e.kind === 'probe' && e.host === 'proxy'),
    "keepwire's upstream probes were captured",
  );
  assert.ok(!kinds(report, 'stream-grpc_socket_keepalive').includes('lb-expired'));

  // PINGs: data from keepwire crossed the LB during the quiet stretch, without any TCP probe.
  const pinged = timeline(report, 'stream-grpc_ping_interval');
  const first = at(pinged, 'grpc-message', /message 1/)!;
  const second = at(pinged, 'grpc-message', /message 2/)!;
  const quietData = pinged.filter(
    (e) => e.host === 'proxy' && e.kind === 'data' && e.at > first && e.at < second,
  );
  assert.ok(
    quietData.length >= 2,
    `PING frames crossed the LB while the stream was quiet (${quietData.length})`,
  );
  assert.ok(!pinged.some((e) => e.kind === 'probe'), 'no TCP probe was needed');
  assert.ok(!kinds(report, 'stream-grpc_ping_interval').includes('lb-expired'));

  // The idle channel: PINGs without calls kept the upstream connection; the second call used it.
  assert.ok(!kinds(report, 'idle-grpc_ping_interval').includes('lb-expired'));
  assert.ok(kinds(report, 'idle-no-keepalive').includes('lb-expired'));
}

test('grpc (rst expiry): a quiet stream hangs and a stale channel fails without keepalive; probes or PINGs keep them', async (t) => {
  if (!requireNetns(t) || !requireGrpcJs(t)) return;
  const report = await runLab(SCENARIOS.grpc!, { lbIdleS: 3, expiry: 'rst' });
  assertAllMatched(report);
  assertCommonEvidence(report);
  // The backend's late message went out untranslated and keepwire's kernel refused it: the backend's
  // connection died, keepwire's never heard of it.
  const hung = kinds(report, 'stream-no-keepalive');
  assert.ok(hung.includes('untranslated'), "the backend's late message crossed the LB untranslated");
  assert.ok(hung.includes('client-rst'), "keepwire's kernel refused it with RST");
  // The stale upstream connection was reset by the LB when the second call was written on it.
  assert.ok(kinds(report, 'idle-no-keepalive').includes('lb-rst'), 'the LB reset the stale connection');
  // Retry semantics: keepwire answered UNAVAILABLE on the reused connection without replaying the call,
  // and grpc-js (no retry policy) passed it on after one attempt.
  assert.ok(
    timeline(report, 'idle-no-keepalive').some(
      (e) => e.kind === 'access' && /grpc-status 14 .*upstream connection reused, 0 retries/.test(e.what),
    ),
    "keepwire's access line: UNAVAILABLE on the reused connection, no retry",
  );
  assert.match(result(report, 'idle-no-keepalive').detail, /UNAVAILABLE .* one attempt/);
  // The client's retry policy: the backend saw the second attempt, marked by grpc-js.
  assert.ok(
    timeline(report, 'idle-client-retry').some((e) => e.kind === 'grpc-call' && /a retry/.test(e.what)),
    'the retried attempt reached the backend',
  );
  assert.match(result(report, 'idle-client-retry').detail, /2 attempts/);
});

test('grpc (drop expiry): the same outcomes when the LB drops a forgotten session silently', async (t) => {
  if (!requireNetns(t) || !requireGrpcJs(t)) return;
  const report = await runLab(SCENARIOS.grpc!, { lbIdleS: 3, expiry: 'drop' });
  assertAllMatched(report);
  assertCommonEvidence(report);
  // Nothing answers the backend's late message: it retransmits into the void.
  assert.ok(kinds(report, 'stream-no-keepalive').includes('retransmit'), 'the backend retransmitted');
  assert.ok(!kinds(report, 'stream-no-keepalive').includes('lb-rst'), 'and no RST was seen');
  // The second call vanished too: the client's deadline ended it.
  assert.match(result(report, 'idle-no-keepalive').detail, /DEADLINE_EXCEEDED/);
  // A retry policy for UNAVAILABLE does not help here: the deadline is not a retryable status.
  assert.match(result(report, 'idle-client-retry').detail, /DEADLINE_EXCEEDED .* one attempt/);
});
