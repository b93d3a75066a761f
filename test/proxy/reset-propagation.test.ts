/**
 * A reset on one leg must reach the other leg as a reset, never as a clean
 * FIN: a peer that sees a FIN believes it got all the data.
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

async function session() {
  const peer = await backend((s) => s.on('data', () => {}));
  const lb = await start(config([streamServer({ proxyPass: passTo(peer.port) })]));
  const client = await dial(lb.ports[0]!);
  client.write('hello');
  await within(
    (async () => {
      while (peer.accepted.length === 0) await sleep(10);
    })(),
    5000,
    'upstream accept',
  );
  await sleep(50);
  return { peer, lb, client, upstreamSide: peer.accepted[0]! };
}

onBothPaths('client reset → upstream sees ECONNRESET; logged as client_reset', async () => {
  const { peer, lb, client, upstreamSide } = await session();
  try {
    const seen = ending(upstreamSide);
    client.resetAndDestroy();
    assert.deepEqual(await seen, { kind: 'error', code: 'ECONNRESET' });
    const [record] = await lb.waitForRecords(1);
    assert.equal(record!.reason, 'client_reset');
    assert.equal(record!.bytesFromClient, 5);
  } finally {
    await lb.close();
    await peer.close();
  }
});

onBothPaths('upstream reset → client sees ECONNRESET; logged as upstream_reset', async () => {
  const { peer, lb, client, upstreamSide } = await session();
  try {
    const seen = ending(client);
    upstreamSide.resetAndDestroy();
    assert.deepEqual(await seen, { kind: 'error', code: 'ECONNRESET' });
    const [record] = await lb.waitForRecords(1);
    assert.equal(record!.reason, 'upstream_reset');
  } finally {
    await lb.close();
    await peer.close();
  }
});

onBothPaths(
  'clean client close → upstream sees FIN; logged as client_closed with both addresses',
  async () => {
    const { peer, lb, client, upstreamSide } = await session();
    try {
      const seen = ending(upstreamSide);
      client.end();
      assert.deepEqual(await seen, { kind: 'end' });
      upstreamSide.end();
      const [record] = await lb.waitForRecords(1);
      assert.equal(record!.reason, 'client_closed');
      assert.equal(record!.upstream, `127.0.0.1:${peer.port}`);
      assert.equal(record!.client, `127.0.0.1:${client.localPort}`);
      assert.equal(record!.tries, 1);
      assert.ok(record!.durationMs >= 50);
    } finally {
      await lb.close();
      await peer.close();
    }
  },
);
