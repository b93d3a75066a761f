/**
 * proxy_timeout: a session with no byte in either direction for T is ended,
 * with a FIN to both peers, or with a RST to both when
 * reset_timedout_connection is on (what LVS, F5 and NLB do). Traffic in
 * either direction keeps it alive.
 */
import assert from 'node:assert/strict';
import {
  backend,
  config,
  dial,
  ending,
  onBothPaths,
  passTo,
  sleep,
  start,
  streamServer,
  within,
} from './fixtures.js';

const T = 1000;

for (const reset of [false, true]) {
  onBothPaths(
    `idle for ${T} ms: both peers see ${reset ? 'a RST (reset_timedout_connection on)' : 'a FIN'}`,
    async () => {
      const peer = await backend();
      const lb = await start(
        config([
          streamServer({ proxyPass: passTo(peer.port), proxyTimeoutMs: T, resetTimedoutConnection: reset }),
        ]),
      );
      try {
        const client = await dial(lb.ports[0]!);
        const echoed = new Promise((resolve) => client.once('data', resolve));
        client.write('x');
        await within(echoed, 5000, 'echo');
        const upstreamSide = peer.accepted[0]!;
        const startedIdle = Date.now();
        const [clientEnd, upstreamEnd] = await Promise.all([
          ending(client, 10_000),
          ending(upstreamSide, 10_000),
        ]);
        const idleMs = Date.now() - startedIdle;
        if (reset) {
          assert.deepEqual(clientEnd, { kind: 'error', code: 'ECONNRESET' });
          assert.deepEqual(upstreamEnd, { kind: 'error', code: 'ECONNRESET' });
        } else {
          assert.deepEqual(clientEnd, { kind: 'end' });
          assert.deepEqual(upstreamEnd, { kind: 'end' });
        }
        assert.ok(idleMs >= T - 100 && idleMs < T + 1500, `ended after ${idleMs} ms idle`);
        const [record] = await lb.waitForRecords(1);
        assert.equal(record!.reason, 'idle_timeout');
        assert.equal(record!.idleTimeoutMs, T);
      } finally {
        await lb.close();
        await peer.close();
      }
    },
  );
}

onBothPaths(`traffic every T/2 keeps a session alive for 3T, in either direction`, async () => {
  const peer = await backend((s) => s.on('data', () => {}));
  const lb = await start(config([streamServer({ proxyPass: passTo(peer.port), proxyTimeoutMs: T })]));
  try {
    const client = await dial(lb.ports[0]!);
    let ended = false;
    client.on('data', () => {});
    client.on('close', () => {
      ended = true;
    });
    client.on('error', () => {});
    await within(
      (async () => {
        while (peer.accepted.length === 0) await sleep(10);
      })(),
      5000,
      'upstream accept',
    );
    const upstreamSide = peer.accepted[0]!;
    // Alternate directions so both count as activity.
    for (let i = 0; i < 6; i++) {
      await sleep(T / 2);
      assert.equal(ended, false, `session ended after ${((i + 1) * T) / 2} ms despite traffic`);
      if (i % 2 === 0) client.write('ping');
      else upstreamSide.write('pong');
    }
    assert.equal(ended, false);
    assert.equal(lb.records.length, 0);
    // Then silence: it must go within about T.
    const e = await ending(client, T + 3000);
    assert.deepEqual(e, { kind: 'end' });
    const [record] = await lb.waitForRecords(1);
    assert.equal(record!.reason, 'idle_timeout');
    assert.ok(record!.durationMs >= 3 * T + T - 200, `duration ${record!.durationMs}`);
  } finally {
    await lb.close();
    await peer.close();
  }
});
