/**
 * No expiry up to --max is a result ("none"), not a failure; and
 * --verify-keepalive proves a fix on the real path: probes every second keep a
 * 4 s LB's session, a first probe after 6 s comes too late.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLbTopology, createPairTopology } from '../../src/netns/index.js';
import { requireNetns } from '../require-netns.js';
import { runProbeCli, startIdleServer, summary } from './fixtures.js';

const PORT = 7000;

test('no expiry up to --max 10s is reported as none, exit 0', async (t) => {
  if (!requireNetns(t)) return;
  const pair = await createPairTopology();
  try {
    await startIdleServer(pair.b, PORT, 0, 'never');
    const run = await runProbeCli(pair.a, [`198.18.1.2:${PORT}`, '--max', '10s', '--json']);
    const r = run.report;
    assert.ok(r, summary(run));
    assert.equal(run.code, 0, summary(run));
    assert.equal(r.verdict, 'none', summary(run));
    assert.equal(r.expiry, 'none', summary(run));
    assert.equal(r.idleTimeout, null, summary(run));
    assert.equal(r.middlebox, null, summary(run));
    assert.equal(r.server, null, summary(run));
    // The longest planned idle was actually tried, and carried data.
    assert.ok(
      r.evidence.some((e) => e.role === 'grid' && e.outcome === 'alive' && e.idleMs! >= 9950),
      summary(run),
    );
  } finally {
    await pair.destroy();
  }
});

test('--verify-keepalive 1s:1s:3 behind a 4 s LB survives; 6s:: does not (exit 1)', async (t) => {
  if (!requireNetns(t)) return;
  const lb = await createLbTopology({ lbIdleSeconds: 4, expiry: 'rst' });
  try {
    await startIdleServer(lb.backend, PORT, 0, 'never');
    const target = `${lb.vip}:${PORT}`;
    const [good, late] = await Promise.all([
      runProbeCli(lb.client, [target, '--max', '30s', '--verify-keepalive', '1s:1s:3', '--json']),
      runProbeCli(lb.client, [target, '--max', '30s', '--verify-keepalive', '6s::', '--json']),
    ]);
    assert.ok(good.report && late.report, `${summary(good)}\n${summary(late)}`);
    const g = good.report.verify[0]!;
    assert.equal(g.spec, '1s:1s:3');
    assert.equal(g.survived, true, summary(good));
    assert.ok(g.heldMs! > good.report.idleTimeout!.highMs, `held only ${g.heldMs} ms: ${summary(good)}`);
    assert.equal(good.code, 0, summary(good));
    const l = late.report.verify[0]!;
    assert.equal(l.spec, '6s::');
    assert.equal(l.survived, false, summary(late));
    assert.equal(late.code, 1, summary(late));
    assert.match(l.detail, /first probe comes only after 6s idle, later than the/);
  } finally {
    await lb.destroy();
  }
});
