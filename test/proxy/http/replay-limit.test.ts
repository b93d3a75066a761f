/**
 * client_body_buffer_size bounds how much of a request body keepwire keeps
 * to repeat the request on a fresh connection. The upstream here resets a
 * kept-alive connection on the first byte of its next request, as a server
 * that closed it just then: a deterministic stale-connection race.
 *   - a body under the limit is repeated on a fresh connection and reaches
 *     the upstream exactly once, whole;
 *   - a body over it was streamed without a copy: the client gets 502 with
 *     the reason logged, no retry, and the upstream saw it at most once.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
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

const BUFFER = 16 * 1024;

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function put(path: string, body: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(`PUT ${path} HTTP/1.1\r\nHost: t\r\nContent-Length: ${body.length}\r\n\r\n`, 'latin1'),
    body,
  ]);
}

test('client_body_buffer_size: a body under it is replayed once on a fresh connection; one over it gets 502, never a retry or a duplicate', async () => {
  // Every connection serves one request; the next one on it is reset before it is read.
  const up = await rawUpstream((req, respond) => respond(okResponse(sha(req.body))), {
    resetBeforeRequest: (index) => index >= 1,
  });
  const lb = await startHttp(
    httpConfig(
      [httpServer({ clientBodyBufferSize: BUFFER })],
      [httpGroup('app', [server(up.port)], { keepalive: 4 })],
    ),
  );
  const client = await RawClient.open(lb.port);
  try {
    // A first request leaves a connection in the keep-alive cache.
    client.send('GET /warm HTTP/1.1\r\nHost: t\r\n\r\n');
    assert.equal((await client.response()).status, 200);
    assert.equal(up.accepted, 1);

    // Under the limit: the reused connection is reset, the PUT is repeated on a fresh one.
    const under = Buffer.alloc(BUFFER - 1024, 'u');
    client.send(put('/under', under));
    const r1 = await client.response();
    assert.equal(r1.status, 200);
    assert.equal(r1.body.toString(), sha(under), 'the whole body arrived');
    assert.equal(up.requests.filter((r) => r.url === '/under').length, 1, 'and arrived once');
    assert.equal(up.accepted, 2, 'on a fresh connection');
    const [retry] = lb.retries();
    assert.equal(retry?.kind, 'stale_connection');
    const [, underLog] = await lb.waitForRequests(2);
    assert.deepEqual([underLog!.status, underLog!.retries, underLog!.upstreamConnect], [200, 1, 'new']);

    // Over the limit: the body was streamed without a copy, so it cannot be repeated.
    const over = Buffer.alloc(BUFFER * 3, 'o');
    client.send(put('/over', over));
    const r2 = await client.response();
    assert.equal(r2.status, 502);
    const [, , overLog] = await lb.waitForRequests(3);
    assert.deepEqual([overLog!.status, overLog!.retries, overLog!.upstreamConnect], [502, 0, 'reused']);
    assert.match(overLog!.detail ?? '', /client_body_buffer_size \(16384 bytes\)/);
    assert.equal(lb.retries().length, 1, 'no retry for the body over the limit');
    assert.ok(up.requests.filter((r) => r.url === '/over').length <= 1, 'the upstream saw it at most once');
    assert.equal(up.accepted, 2, 'no fresh connection was opened to repeat it');
  } finally {
    client.close();
    await lb.close();
    await up.close();
  }
});

test('client_body_buffer_size set in the location overrides its server: a larger body stays retryable there', async () => {
  const up = await rawUpstream((req, respond) => respond(okResponse(sha(req.body))), {
    resetBeforeRequest: (index) => index >= 1,
  });
  const lb = await startHttp(
    httpConfig(
      [
        httpServer({
          clientBodyBufferSize: BUFFER,
          locations: [location({ proxyPass: passToGroup('app'), clientBodyBufferSize: 4 * BUFFER })],
        }),
      ],
      [httpGroup('app', [server(up.port)], { keepalive: 4 })],
    ),
  );
  const client = await RawClient.open(lb.port);
  try {
    client.send('GET /warm HTTP/1.1\r\nHost: t\r\n\r\n');
    assert.equal((await client.response()).status, 200);
    const body = Buffer.alloc(BUFFER * 3, 'l');
    client.send(put('/large', body));
    const res = await client.response();
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), sha(body));
    assert.equal(up.requests.filter((r) => r.url === '/large').length, 1);
    assert.equal(lb.retries().filter((r) => r.kind === 'stale_connection').length, 1);
  } finally {
    client.close();
    await lb.close();
    await up.close();
  }
});
