/**
 * Every preset reads its numbers from recommend() (keepalive/recommend.ts):
 * probes and pings at the probe period below the LB idle, pooled connections
 * idle out before the LB forgets them. Checked for LB idle timeouts from the
 * tests' 3 s to a NAT gateway's 350 s and beyond.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  grpcChannelOptions,
  grpcServerOptions,
  httpAgentOptions,
  ioredisPreset,
  keepaliveFor,
  pgPreset,
  probePeriod,
  recommend,
  redisPreset,
  undiciPoolOptions,
  wsPreset,
} from '../../src/index.js';

for (const lbIdle of [3, 60, 240, 350, 600, 6000]) {
  test(`presets for an LB idle of ${lbIdle} s keep every packet and every pooled connection inside it`, () => {
    const r = recommend(lbIdle);
    const lbMs = lbIdle * 1000;
    const k = keepaliveFor({ lbIdle });
    assert.deepEqual(k, { enable: true, ...r.keepalive });
    assert.ok(probePeriod(k) < lbIdle);

    const pg = pgPreset({ lbIdle });
    assert.equal(pg.keepAlive, true);
    assert.equal(pg.keepAliveInitialDelayMillis, r.keepalive.idle * 1000);
    assert.equal(pg.idleTimeoutMillis, r.clientPoolIdleTimeout * 1000);
    assert.ok(pg.idleTimeoutMillis < lbMs && pg.keepAliveInitialDelayMillis < lbMs);

    assert.deepEqual(ioredisPreset({ lbIdle }), { keepAlive: r.keepalive.idle * 1000 });
    assert.deepEqual(redisPreset({ lbIdle }), {
      socket: { keepAlive: true, keepAliveInitialDelay: r.keepalive.idle * 1000 },
    });

    const ch = grpcChannelOptions({ lbIdle });
    assert.equal(ch['grpc.keepalive_time_ms'], r.appPing.period * 1000);
    assert.ok(ch['grpc.keepalive_time_ms'] < lbMs);
    assert.equal(ch['grpc.keepalive_permit_without_calls'], 1);
    const sv = grpcServerOptions({ lbIdle });
    assert.ok(
      sv['grpc.http2.min_ping_interval_without_data_ms'] < ch['grpc.keepalive_time_ms'],
      'the server accepts the pings the channel sends',
    );
    assert.equal(sv['grpc.keepalive_time_ms'], ch['grpc.keepalive_time_ms']);

    const ws = wsPreset({ lbIdle });
    assert.equal(ws.pingIntervalMs, r.appPing.period * 1000);
    assert.ok(ws.pingIntervalMs < lbMs);

    const agent = httpAgentOptions({ lbIdle });
    assert.ok(agent.timeout < lbMs && agent.keepAliveMsecs < lbMs);
    const undici = undiciPoolOptions({ lbIdle });
    assert.equal(undici.keepAliveTimeout, r.clientPoolIdleTimeout * 1000);
    assert.equal(undici.keepAliveMaxTimeout, undici.keepAliveTimeout);
    assert.equal(typeof undici.connect, 'function');
  });
}

test('a margin given to a preset is the margin of the rule', () => {
  assert.deepEqual(pgPreset({ lbIdle: 350, margin: 50 }), pgPreset(recommend(350, { margin: 50 })));
  assert.equal(pgPreset({ lbIdle: 350, margin: 50 }).keepAliveInitialDelayMillis, 300_000);
});

test("a preset refuses an LB idle no keepalive can fit under, with the rule's reason", () => {
  assert.throws(() => pgPreset({ lbIdle: 1 }), /below 2 s leaves no room/);
});
