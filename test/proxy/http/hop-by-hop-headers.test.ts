/**
 * Hop-by-hop headers (RFC 9110 §7.6.1) stop at keepwire in both directions;
 * X-Forwarded-For/Proto/Host are set; proxy_set_header applies (and an empty
 * value removes a header).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  fetchRaw,
  httpConfig,
  httpGroup,
  httpServer,
  location,
  passToGroup,
  rawUpstream,
  server,
  startHttp,
} from './fixtures.js';

test('request: Connection and what it names, Keep-Alive, TE, Trailer, Upgrade, Proxy-* are not forwarded; X-Forwarded-* set; proxy_set_header applied', async () => {
  const upstream = await rawUpstream((_req, respond) =>
    respond(
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-Resp-Hop\r\nX-Resp-Hop: 1\r\nKeep-Alive: timeout=30\r\nProxy-Authenticate: Basic\r\nX-Kept: yes\r\n\r\nok',
    ),
  );
  const lb = await startHttp(
    httpConfig(
      [
        httpServer({
          locations: [
            location({
              proxyPass: passToGroup('app'),
              proxySetHeaders: [
                { name: 'X-Real-IP', value: '$remote_addr' },
                { name: 'Accept', value: '' },
                { name: 'X-Original-Host', value: '$host' },
              ],
            }),
          ],
        }),
      ],
      [httpGroup('app', [server(upstream.port)])],
    ),
  );
  try {
    const res = await fetchRaw(
      lb.port,
      'GET /h?q=1 HTTP/1.1\r\nHost: Example.COM:8080\r\nConnection: keep-alive, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nTrailer: X-T\r\nUpgrade: h2c\r\nProxy-Authorization: Basic eA==\r\nProxy-Connection: keep-alive\r\nAccept: */*\r\nX-Forwarded-For: 10.1.1.1\r\nX-End-To-End: kept\r\n\r\n',
    );
    assert.equal(res.status, 200);
    const h = upstream.requests[0]!.headers;
    for (const name of [
      'connection',
      'x-hop',
      'keep-alive',
      'te',
      'trailer',
      'upgrade',
      'proxy-authorization',
      'proxy-connection',
      'accept',
    ])
      assert.equal(h[name], undefined, `${name} must not reach the upstream`);
    assert.equal(h['x-end-to-end'], 'kept');
    assert.equal(h.host, 'Example.COM:8080', 'the client Host is kept');
    assert.equal(h['x-forwarded-for'], '10.1.1.1, 127.0.0.1');
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.equal(h['x-forwarded-host'], 'Example.COM:8080');
    assert.equal(h['x-real-ip'], '127.0.0.1');
    assert.equal(h['x-original-host'], 'example.com');

    for (const name of ['x-resp-hop', 'proxy-authenticate']) assert.equal(res.headers[name], undefined, name);
    assert.equal(res.headers['keep-alive'], undefined, "the upstream's Keep-Alive is not the client's");
    assert.equal(res.headers['x-kept'], 'yes');
    assert.equal(res.headers.connection, 'keep-alive');
  } finally {
    await lb.close();
    await upstream.close();
  }
});
