/**
 * The stale keep-alive connection retry is a free attempt, as nginx gives
 * back the try of a cached connection that failed (`u->peer.tries++` in
 * ngx_http_upstream_next): with `proxy_next_upstream_tries 1` a request that
 * met a connection the upstream had just closed is still repeated on a fresh
 * one, and the access line counts both attempts. The upstream resets a
 * kept-alive connection on the first byte of its next request: a
 * deterministic stale-connection race.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  httpConfig,
  httpGroup,
  httpServer,
  location,
  okResponse,
  passToGroup,
  RawClient,
  rawUpstream,
  server,
  startHttp,
} from './fixtures.js';

test('proxy_next_upstream_tries 1 still repeats a request that met a stale keep-alive connection', async () => {
  const up = await rawUpstream((req, respond) => respond(okResponse(`up ${req.url}`)), {
    resetBeforeRequest: (index) => index >= 1,
  });
  const lb = await startHttp(
    httpConfig(
      [httpServer({ locations: [location({ proxyPass: passToGroup('app'), proxyNextUpstreamTries: 1 })] })],
      [httpGroup('app', [server(up.port)], { keepalive: 4 })],
    ),
  );
  const client = await RawClient.open(lb.port);
  try {
    client.send('GET /warm HTTP/1.1\r\nHost: t\r\n\r\n');
    assert.equal((await client.response()).status, 200);
    client.send('GET /again HTTP/1.1\r\nHost: t\r\n\r\n');
    const res = await client.response();
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), 'up /again');
    assert.equal(lb.retries().filter((r) => r.kind === 'stale_connection').length, 1);
    const line = (await lb.waitForRequests(2)).find((r) => r.path === '/again');
    assert.ok(line, 'the access line of the repeated request');
    assert.deepEqual([line.tries, line.retries, line.upstreamConnect], [2, 1, 'new']);
  } finally {
    client.close();
    await lb.close();
    await up.close();
  }
});
