/**
 * so_keepalive reaches the accepted (client) socket and
 * proxy_socket_keepalive the upstream socket, as the kernel reports them.
 */
import assert from 'node:assert/strict';
import { readKeepalive } from '../../src/keepalive/socket.js';
import { systemDefaults } from '../../src/keepalive/system.js';
import {
  backend,
  config,
  dial,
  listen,
  onBothPaths,
  passTo,
  sleep,
  start,
  streamServer,
  within,
} from './fixtures.js';

async function liveSession(lb: Awaited<ReturnType<typeof start>>) {
  const client = await dial(lb.ports[0]!);
  client.write('x');
  await within(new Promise((resolve) => client.once('data', resolve)), 5000, 'echo');
  const [session] = lb.runtime.liveSessions();
  assert.ok(session?.upstreamSocket, 'session is bridged');
  return { client, session };
}

onBothPaths(
  'full specs: so_keepalive=7s:3s:4 on the client leg, proxy_socket_keepalive 11s:2s:5 on the upstream leg',
  async () => {
    const peer = await backend();
    const lb = await start(
      config([
        streamServer({
          listens: [listen(0, { enable: true, idle: 7, interval: 3, count: 4 })],
          proxyPass: passTo(peer.port),
          proxySocketKeepalive: { enable: true, idle: 11, interval: 2, count: 5 },
        }),
      ]),
    );
    try {
      const { client, session } = await liveSession(lb);
      const c = readKeepalive(session.client);
      assert.deepEqual([c.enabled, c.idle, c.interval, c.count], [true, 7, 3, 4]);
      const u = readKeepalive(session.upstreamSocket!);
      assert.deepEqual([u.enabled, u.idle, u.interval, u.count], [true, 11, 2, 5]);
      client.destroy();
    } finally {
      await lb.close();
      await peer.close();
    }
  },
);

onBothPaths('"on" enables keepalive with system values; "off" and absent leave it off', async () => {
  const peer = await backend();
  const sys = systemDefaults();
  const lb = await start(
    config([
      streamServer({
        listens: [listen(0, { enable: true })],
        proxyPass: passTo(peer.port),
        proxySocketKeepalive: { enable: true },
      }),
      streamServer({
        listens: [listen(0)],
        proxyPass: passTo(peer.port),
        proxySocketKeepalive: { enable: false },
      }),
    ]),
  );
  try {
    const { client, session } = await liveSession(lb);
    const c = readKeepalive(session.client);
    assert.deepEqual([c.enabled, c.idle, c.interval, c.count], [true, sys.idle, sys.interval, sys.count]);
    const u = readKeepalive(session.upstreamSocket!);
    assert.deepEqual([u.enabled, u.idle], [true, sys.idle]);
    client.destroy();
    await lb.waitForRecords(1);

    const other = await dial(lb.ports[1]!);
    other.write('y');
    await within(new Promise((resolve) => other.once('data', resolve)), 5000, 'echo');
    const [plain] = lb.runtime.liveSessions();
    assert.equal(readKeepalive(plain!.client).enabled, false);
    assert.equal(readKeepalive(plain!.upstreamSocket!).enabled, false);
    other.destroy();
    await sleep(10);
  } finally {
    await lb.close();
    await peer.close();
  }
});
