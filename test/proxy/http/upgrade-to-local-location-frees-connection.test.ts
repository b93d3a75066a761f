/**
 * Until the upstream answers 101, an Upgrade request is an ordinary request
 * (RFC 9110 §7.8, nginx): to a `return` location, or to no location, it gets
 * the answer any request gets there (the location's text), the connection
 * goes on by the keep-alive rules, the client's FIN is read and the
 * worker_connections slot is freed. An upgrade the upstream refuses is an
 * ordinary response too: the connection goes on at once instead of holding
 * its slot for proxy_read_timeout.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  get,
  httpConfig,
  httpGroup,
  httpServer,
  location,
  okResponse,
  passToGroup,
  RawClient,
  type RunningHttp,
  rawUpstream,
  server,
  sleep,
  startHttp,
} from './fixtures.js';

const upgrade = (path: string) =>
  `GET ${path} HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;

/** Resolves once the proxy holds no client connection (bounded). */
async function noConnectionsLeft(lb: RunningHttp, timeoutMs = 5_000): Promise<void> {
  const frontend = lb.runtime.httpGeneration!.frontends[0]!;
  const deadline = Date.now() + timeoutMs;
  while (frontend.connections.size > 0 || lb.runtime.limiter.active > 0) {
    if (Date.now() > deadline)
      assert.fail(
        `${frontend.connections.size} connections, ${lb.runtime.limiter.active} worker_connections slots still held`,
      );
    await sleep(20);
  }
}

test('Upgrade requests to return locations get the location text, go on, and free their slot: more of them than worker_connections, then a normal request is served', async () => {
  const app = await rawUpstream((_req, respond) => respond(okResponse('from app')));
  const lb = await startHttp(
    httpConfig(
      [
        httpServer({
          locations: [
            location({ prefix: '/healthz', returnDirective: { code: 200, text: 'ok\n' } }),
            location({ prefix: '/admin', returnDirective: { code: 403, text: 'denied\n' } }),
            location({ prefix: '/', proxyPass: passToGroup('app') }),
          ],
        }),
      ],
      [httpGroup('app', [server(app.port)])],
      { workerConnections: 3 },
    ),
  );
  try {
    // Three times the cap, one after the other: each must give its slot back.
    for (let i = 0; i < 9; i++) {
      const c = await RawClient.open(lb.port);
      const path = i % 3 === 2 ? '/admin' : '/healthz';
      c.send(upgrade(path));
      const res = await c.response({ timeoutMs: 5_000 });
      if (path === '/admin') {
        assert.equal(res.status, 403);
        assert.equal(res.body.toString(), 'denied\n', 'the location text, as nginx');
      } else {
        assert.equal(res.status, 200);
        assert.equal(res.body.toString(), 'ok\n');
      }
      assert.notEqual(res.headers.connection, 'close', 'keep-alive as for any request');
      // The connection goes on: a second request on it is answered.
      c.send(get('/healthz'));
      const again = await c.response({ timeoutMs: 5_000 });
      assert.equal(again.status, 200);
      // The client's FIN is read: the proxy closes its side.
      c.socket.end();
      await c.waitClosed(5_000);
      c.close();
    }
    await noConnectionsLeft(lb);
    const c = await RawClient.open(lb.port);
    c.send(get('/'));
    const res = await c.response({ timeoutMs: 5_000 });
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), 'from app');
    c.close();
    assert.equal(app.requests.length, 1, 'only the normal request reached the upstream');
  } finally {
    await lb.close();
    await app.close();
  }
});

test('Upgrade request matching no location: 404 as any request, and the connection goes on', async () => {
  const lb = await startHttp(
    httpConfig([httpServer({ locations: [location({ prefix: '/only', returnDirective: { code: 204 } })] })]),
  );
  try {
    const c = await RawClient.open(lb.port);
    c.send(upgrade('/elsewhere'));
    const res = await c.response({ timeoutMs: 5_000 });
    assert.equal(res.status, 404);
    assert.equal(res.body.toString(), '404 Not Found\n');
    c.send(get('/only'));
    assert.equal((await c.response({ timeoutMs: 5_000 })).status, 204);
    c.socket.end();
    await c.waitClosed(5_000);
    await noConnectionsLeft(lb);
    const logs = await lb.waitForRequests(2);
    assert.equal(logs[0]!.status, 404);
    assert.equal(logs[0]!.reason, 'local');
  } finally {
    await lb.close();
  }
});

test('an upgrade the upstream refuses is an ordinary response: the connection goes on at once, not after proxy_read_timeout', async () => {
  const app = await rawUpstream((req, respond) =>
    respond(
      req.headers.upgrade === undefined
        ? okResponse('plain')
        : 'HTTP/1.1 400 Bad Request\r\nContent-Length: 8\r\n\r\nrefused\n',
    ),
  );
  const lb = await startHttp(
    httpConfig(
      [httpServer({ locations: [location({ proxyPass: passToGroup('app'), proxyReadTimeoutMs: 60_000 })] })],
      [httpGroup('app', [server(app.port)])],
      { workerConnections: 2 },
    ),
  );
  try {
    for (let i = 0; i < 4; i++) {
      const c = await RawClient.open(lb.port);
      c.send(upgrade('/ws'));
      const res = await c.response({ timeoutMs: 5_000 });
      assert.equal(res.status, 400);
      assert.equal(res.body.toString(), 'refused\n');
      c.send(get('/next'));
      const next = await c.response({ timeoutMs: 5_000 });
      assert.equal(next.status, 200);
      assert.equal(next.body.toString(), 'plain');
      c.socket.end();
      await c.waitClosed(5_000);
      c.close();
    }
    await noConnectionsLeft(lb);
    const logs = await lb.waitForRequests(8);
    assert.equal(logs[0]!.status, 400);
    assert.equal(logs[0]!.upstreamStatus, 400);
  } finally {
    await lb.close();
    await app.close();
  }
});

test('after an Upgrade request answered by a return location the connection timers run: a silent client is closed after keepalive_timeout', async () => {
  const lb = await startHttp(
    httpConfig([
      httpServer({
        keepaliveTimeoutMs: 1_000,
        locations: [location({ returnDirective: { code: 200, text: 'ok\n' } })],
      }),
    ]),
  );
  try {
    const c = await RawClient.open(lb.port);
    c.send(upgrade('/'));
    const res = await c.response({ timeoutMs: 5_000 });
    assert.equal(res.body.toString(), 'ok\n');
    const t0 = Date.now();
    await c.waitClosed(5_000);
    const ms = Date.now() - t0;
    assert.ok(ms >= 500 && ms < 4_000, `closed after ${ms} ms idle`);
    await noConnectionsLeft(lb);
  } finally {
    await lb.close();
  }
});
