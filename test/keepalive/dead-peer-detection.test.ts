/**
 * On the wire: when the peer vanishes silently (every packet dropped), a socket
 * with keepalive idle=1 interval=1 count=2 fails with ETIMEDOUT after
 * detectionTime = 1 + 1 x 2 = 3 s of silence, and not before the idle time.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { detectionTime } from '../../src/keepalive/recommend.js';
import { createPairTopology, SocketAgent } from '../../src/netns/index.js';
import { requireNetns } from '../require-netns.js';

test('a blackholed peer is detected within detectionTime ± 1.5 s, and not before idle', async (t) => {
  if (!requireNetns(t)) return;
  const pair = await createPairTopology();
  try {
    const keepalive = { idle: 1, interval: 1, count: 2 };
    const server = await SocketAgent.start(pair.b);
    await server.listen({ host: '198.18.1.2', port: 7001, echo: true });
    const client = await SocketAgent.start(pair.a);
    await client.connect('c', { host: '198.18.1.2', port: 7001, keepalive });
    client.send({ op: 'send', id: 'c', data: 'x' });
    const lastTraffic = await client.waitFor((e) => e.ev === 'data' && e.id === 'c', 5_000);
    // The peer disappears: from now on b drops everything it receives. The
    // client has nothing in flight, so only keepalive can notice.
    await pair.b.nft(
      'table inet blackhole { chain input { type filter hook input priority filter; policy drop; }; }',
    );
    const failure = await client.waitFor(
      (e) => e.id === 'c' && (e.ev === 'error' || e.ev === 'close'),
      15_000,
    );
    assert.equal(failure.ev, 'error');
    assert.equal(failure.code, 'ETIMEDOUT');
    const elapsedS = (failure.t - lastTraffic.t) / 1000;
    const expected = detectionTime(keepalive);
    assert.equal(expected, 3);
    assert.ok(elapsedS > keepalive.idle, `failed after ${elapsedS}s, before the idle time`);
    assert.ok(
      Math.abs(elapsedS - expected) <= 1.5,
      `detected after ${elapsedS}s, expected ${expected}s ± 1.5s`,
    );
  } finally {
    await pair.destroy();
  }
});
