/**
 * Over worker_connections, or with every upstream at max_conns, a new client
 * is turned away at once: never queued, never left waiting for a timeout.
 */
import assert from 'node:assert/strict';
import {
  backend,
  config,
  dial,
  ending,
  group,
  onBothPaths,
  server,
  sleep,
  start,
  streamServer,
  within,
} from './fixtures.js';

async function established(port: number) {
  const s = await dial(port);
  s.write('hi');
  await within(new Promise((resolve) => s.once('data', resolve)), 5000, 'echo');
  return s;
}

onBothPaths(
  'worker_connections: the connection over the cap is reset at once; a slot freed is reused',
  async () => {
    const peer = await backend();
    const lb = await start(
      config([streamServer({ proxyPass: { kind: 'group', name: 'g' } })], [group('g', [server(peer.port)])], {
        workerConnections: 2,
      }),
    );
    try {
      const a = await established(lb.ports[0]!);
      const b = await established(lb.ports[0]!);
      const began = Date.now();
      // The reset may land before or after Node reports the connect.
      const e = await dial(lb.ports[0]!).then(
        (c) => ending(c, 3000),
        (error: NodeJS.ErrnoException) => ({ kind: 'error' as const, code: error.code }),
      );
      assert.ok(Date.now() - began < 1000, 'refused immediately');
      assert.deepEqual(e, { kind: 'error', code: 'ECONNRESET' });
      const [r] = await lb.waitForRecords(1);
      assert.equal(r!.reason, 'connect_failed');
      assert.match(r!.detail ?? '', /worker_connections/);
      a.destroy();
      await lb.waitForRecords(2);
      const d = await established(lb.ports[0]!);
      d.destroy();
      b.destroy();
    } finally {
      await lb.close();
      await peer.close();
    }
  },
);

onBothPaths(
  'max_conns: with the only server full, the next client is closed at once (no live upstreams)',
  async () => {
    const peer = await backend();
    const lb = await start(
      config(
        [streamServer({ proxyPass: { kind: 'group', name: 'g' } })],
        [group('g', [server(peer.port, { maxConns: 1 })])],
      ),
    );
    try {
      const a = await established(lb.ports[0]!);
      const began = Date.now();
      const b = await dial(lb.ports[0]!);
      await ending(b, 3000);
      assert.ok(Date.now() - began < 1000);
      const [r] = await lb.waitForRecords(1);
      assert.equal(r!.reason, 'connect_failed');
      assert.equal(r!.detail, 'no live upstreams');
      assert.equal(peer.accepted.length, 1, 'the upstream never saw the second connection');
      a.destroy();
      await lb.waitForRecords(2);
      await sleep(20);
      (await established(lb.ports[0]!)).destroy();
    } finally {
      await lb.close();
      await peer.close();
    }
  },
);

onBothPaths('max_conns spills over to the next server instead of refusing', async () => {
  const p1 = await backend();
  const p2 = await backend();
  const lb = await start(
    config(
      [streamServer({ proxyPass: { kind: 'group', name: 'g' } })],
      [group('g', [server(p1.port, { maxConns: 1 }), server(p2.port)])],
    ),
  );
  try {
    const held = [];
    for (let i = 0; i < 4; i++) held.push(await established(lb.ports[0]!));
    assert.equal(p1.accepted.length, 1);
    assert.equal(p2.accepted.length, 3);
    for (const s of held) s.destroy();
  } finally {
    await lb.close();
    await p1.close();
    await p2.close();
  }
});
