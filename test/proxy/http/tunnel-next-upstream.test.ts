/**
 * An Upgrade (WebSocket) request makes its upstream attempts as any request
 * (one attempt loop, `ProxyExchange`): proxy_next_upstream_tries and
 * proxy_next_upstream_timeout bound them, a server that does not answer the
 * handshake within proxy_read_timeout is a timeout (504, or the next
 * server), and the tunnel opens on the server that answers 101. After the
 * 101 a reset on one side is passed on as a reset.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RequestRecord } from '../../../src/proxy/http/index.js';
import {
  httpConfig,
  httpGroup,
  httpServer,
  location,
  passToGroup,
  RawClient,
  rawUpstream,
  server,
  sleep,
  startHttp,
} from './fixtures.js';

const UPGRADE = 'GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n';

/** Two primaries that never answer, then a backup that switches protocols and echoes. */
async function scenario(nextUpstreamTimeoutMs: number) {
  const silent = () => rawUpstream(() => {});
  const a = await silent();
  const b = await silent();
  const backup = await rawUpstream((req, respond) => {
    respond('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    req.socket.removeAllListeners('data');
    req.socket.on('data', (d: Buffer) => req.socket.write(d));
  });
  const lb = await startHttp(
    httpConfig(
      [
        httpServer({
          locations: [
            location({
              proxyPass: passToGroup('app'),
              proxyReadTimeoutMs: 1_000,
              proxyNextUpstreamTimeoutMs: nextUpstreamTimeoutMs,
            }),
          ],
        }),
      ],
      [
        httpGroup('app', [
          server(a.port, { maxFails: 0 }),
          server(b.port, { maxFails: 0 }),
          server(backup.port, { backup: true, maxFails: 0 }),
        ]),
      ],
    ),
  );
  const c = await RawClient.open(lb.port);
  try {
    const t0 = Date.now();
    c.send(UPGRADE);
    const res = await c.response({ timeoutMs: 15_000 });
    const ms = Date.now() - t0;
    let echo = '';
    if (res.status === 101) {
      c.send('ping');
      const deadline = Date.now() + 5_000;
      const buf = () => (c as unknown as { buf: Buffer }).buf.toString('latin1');
      while (buf() !== 'ping' && Date.now() < deadline) await sleep(10);
      echo = buf();
    }
    c.close();
    const [log] = await lb.waitForRequests(1);
    return {
      status: res.status,
      ms,
      echo,
      log: log as RequestRecord,
      backupRequests: backup.requests.length,
    };
  } finally {
    c.close();
    await lb.close();
    await Promise.all([a.close(), b.close(), backup.close()]);
  }
}

test('a tunnel honours proxy_next_upstream_timeout: two handshakes time out, the budget is spent, 504 and the backup is not tried', async () => {
  const r = await scenario(1_500);
  assert.equal(r.status, 504);
  assert.equal(r.log.tries, 2, 'the first timeout (1 s) was within the 1.5 s budget, the second was not');
  assert.equal(r.log.reason, 'upstream_timeout');
  assert.match(r.log.detail ?? '', /proxy_next_upstream_timeout \(1500 ms\) spent/);
  assert.equal(r.backupRequests, 0);
  assert.ok(r.ms >= 1_800 && r.ms < 4_000, `answered after ${r.ms} ms`);
});

test('without a proxy_next_upstream_timeout the handshake moves on to the server that answers 101, and the tunnel works', async () => {
  const r = await scenario(0);
  assert.equal(r.status, 101);
  assert.equal(r.echo, 'ping');
  assert.equal(r.backupRequests, 1);
  assert.equal(r.log.tries, 3);
  assert.equal(r.log.status, 101);
});

test('after the 101 an upstream reset is passed on to the client as a reset, and the slot is freed', async () => {
  const backend = await rawUpstream((req, respond) => {
    respond('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    req.socket.removeAllListeners('data');
    req.socket.on('data', () => req.socket.resetAndDestroy());
  });
  const lb = await startHttp(
    httpConfig(
      [httpServer({ locations: [location({ proxyPass: passToGroup('app') })] })],
      [httpGroup('app', [server(backend.port)])],
    ),
  );
  try {
    const c = await RawClient.open(lb.port);
    const error = new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      c.socket.once('error', (e) => resolve(e));
      c.socket.once('close', () => resolve(undefined));
    });
    c.send(UPGRADE);
    assert.equal((await c.response({ timeoutMs: 5_000 })).status, 101);
    c.send('reset me');
    const e = await error;
    assert.equal(e?.code, 'ECONNRESET');
    const [log] = await lb.waitForRequests(1);
    assert.equal(log!.status, 101);
    assert.equal(log!.reason, 'upstream_reset');
    const frontend = lb.runtime.httpGeneration!.frontends[0]!;
    const deadline = Date.now() + 5_000;
    while (frontend.connections.size > 0 && Date.now() < deadline) await sleep(20);
    assert.equal(frontend.connections.size, 0);
    assert.equal(frontend.tunnels.size, 0);
  } finally {
    await lb.close();
    await backend.close();
  }
});
