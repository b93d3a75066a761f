/**
 * Every lab scenario and variant, under one LB expiry behaviour, on the real
 * kernel: each observed outcome must match its expectation, and the timeline
 * must show the evidence (the LB forgetting the session, probes, resets).
 * scenarios-rst.test.ts and scenarios-drop.test.ts run it once each: one file
 * for both took close to the runner's 120 s per-file limit on a loaded host.
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

const kinds = (report: LabReport, variant: string) =>
  report.results.find((r) => r.variant === variant)?.timeline.map((e) => e.kind) ?? [];

export function labScenarioTests(expiry: 'rst' | 'drop'): void {
  test(`long-request (${expiry} expiry): the response is lost without keepalive, saved by so_keepalive or the sysctl`, async (t) => {
    if (!requireNetns(t)) return;
    const report = await runLab(SCENARIOS['long-request']!, { lbIdleS: 3, expiry });
    assertAllMatched(report);
    // This is what `npm start` runs; a newcomer must see it within a minute.
    assert.ok(report.durationS < 60, `the default lab run took ${report.durationS}s`);
    // Evidence, not assumptions: the LB was seen forgetting the session, and probes were seen where they save it.
    assert.ok(
      kinds(report, 'no-keepalive').includes('lb-expired'),
      'conntrack showed the LB forgetting the session',
    );
    assert.ok(
      kinds(report, 'backend-so_keepalive').includes('probe'),
      'probes from the backend were captured',
    );
    assert.ok(
      !kinds(report, 'backend-so_keepalive').includes('lb-expired'),
      'and the LB never forgot that session',
    );
    if (expiry === 'rst') {
      assert.ok(
        kinds(report, 'client-late-probe').includes('lb-rst'),
        'the late probe was answered with a RST by the LB',
      );
      assert.ok(
        kinds(report, 'no-keepalive').includes('untranslated'),
        "the backend's late answer went out untranslated",
      );
    }
  });

  test(`idle-pool (${expiry} expiry): a pooled connection idle past the LB fails; a shorter pool idle or keepalive fixes it`, async (t) => {
    if (!requireNetns(t)) return;
    const report = await runLab(SCENARIOS['idle-pool']!, { lbIdleS: 3, expiry });
    assertAllMatched(report);
    const byName = Object.fromEntries(report.results.map((r) => [r.variant, r]));
    assert.match(byName['pool-idle-below-lb']!.detail, /on a new connection/);
    assert.match(byName['pool-tcp-keepalive']!.detail, /on the reused connection/);
    if (expiry === 'rst') {
      assert.ok(
        kinds(report, 'keepwire-retry').includes('retry'),
        "keepwire's stale-connection retry was logged",
      );
    }
    assert.ok(
      !kinds(report, 'keepwire-socket-keepalive').includes('retry'),
      'with proxy_socket_keepalive nothing needs a retry',
    );
  });

  test(`dead-peer (${expiry} expiry): only keepalive or TCP_USER_TIMEOUT notice a silent peer, in the promised time`, async (t) => {
    if (!requireNetns(t)) return;
    const report = await runLab(SCENARIOS['dead-peer']!, { lbIdleS: 3, expiry });
    assertAllMatched(report);
    const byName = Object.fromEntries(report.results.map((r) => [r.variant, r]));
    // idle + interval x count = 1 + 1 x 2 = 3 s; TCP_USER_TIMEOUT 2 s (plus the retransmission that trips it).
    assert.ok(
      Math.abs(byName['idle-keepalive']!.afterS! - 3) <= 1.5,
      `detected after ${byName['idle-keepalive']!.afterS}s`,
    );
    assert.ok(
      byName['in-flight-user-timeout']!.afterS! <= 4,
      `detected after ${byName['in-flight-user-timeout']!.afterS}s`,
    );
  });

  test(`l4-proxy (${expiry} expiry): keepwire's upstream leg lives only with proxy_socket_keepalive below the LB idle`, async (t) => {
    if (!requireNetns(t)) return;
    const report = await runLab(SCENARIOS['l4-proxy']!, { lbIdleS: 3, expiry });
    assertAllMatched(report);
    const late = report.results.find((r) => r.variant === 'proxy-late-keepalive')!;
    assert.ok(
      late.timeline.some(
        (e) => e.host === 'proxy' && e.kind === 'session-end' && /upstream_reset|upstream/.test(e.what),
      ),
      'keepwire logged why the session ended',
    );
    assert.ok(
      kinds(report, 'proxy-keepalive').includes('probe'),
      "probes on keepwire's upstream leg were captured",
    );
  });
}
