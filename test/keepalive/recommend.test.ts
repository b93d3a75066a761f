import assert from 'node:assert/strict';
import { test } from 'node:test';
import { detectionTime, parseSoKeepalive, probePeriod, recommend } from '../../src/index.js';

test('detectionTime is idle + interval x count', () => {
  assert.equal(detectionTime({ idle: 1, interval: 1, count: 2 }), 3);
  assert.equal(detectionTime({ idle: 7200, interval: 75, count: 9 }), 7875);
});

test('probePeriod is max(idle, interval): the kernel waits the interval after every probe', () => {
  assert.equal(probePeriod({ idle: 60, interval: 75 }), 75);
  assert.equal(probePeriod({ idle: 60, interval: 10 }), 60);
});

for (const lb of [3, 60, 90, 300, 350, 600, 6000, 100_000]) {
  test(`recommend(${lb}) keeps every keepalive packet inside the LB idle timeout`, () => {
    const r = recommend(lb);
    const k = r.keepalive;
    assert.ok(k.idle + r.margin <= lb, 'first probe leaves the margin');
    assert.ok(probePeriod(k) < lb, 'later probes come before the LB forgets the session');
    assert.ok(k.idle + k.interval < lb || lb <= 3, 'a lost first probe is retried before the deadline');
    assert.ok(r.httpServerKeepaliveTimeout > lb, 'server keep-alive outlives the LB');
    assert.ok(r.clientPoolIdleTimeout < lb, 'client pool idles out before the LB');
    assert.equal(r.detectionTime, detectionTime(k));
    const parsed = parseSoKeepalive(r.soKeepalive);
    assert.ok(parsed.ok, `soKeepalive ${r.soKeepalive} parses`);
    assert.deepEqual(parsed.value, { enable: true, ...k });
    assert.ok(r.appPing.period < lb, 'application pings come before the LB forgets the session');
    assert.equal(r.appPing.period, probePeriod(k));
    assert.ok(r.appPing.serverMinInterval < r.appPing.period, 'a server accepts the pings it is sent');
    assert.equal(r.reasoning.length, 6);
  });
}

test('recommend for the seed incident (LVS 90 s) gives nginx so_keepalive=60s:15s:3', () => {
  const r = recommend(90);
  assert.equal(r.soKeepalive, '60s:15s:3');
  assert.equal(r.httpServerKeepaliveTimeout, 99);
  assert.equal(r.clientPoolIdleTimeout, 60);
  assert.match(r.reasoning[0]!, /idle 1m < LB idle 90s/);
});

test('recommend honours an explicit margin and refuses impossible input', () => {
  assert.equal(recommend(90, { margin: 10 }).keepalive.idle, 80);
  assert.throws(() => recommend(1), /below 2 s leaves no room/);
  assert.throws(() => recommend(90, { margin: 90 }), /margin must be a whole number of seconds in 1..89/);
  assert.throws(() => recommend(Number.NaN), RangeError);
});
