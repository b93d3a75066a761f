/**
 * Requests keepwire refuses itself, closing the connection as nginx does:
 * 413 for a body over client_max_body_size (declared or streamed), 414 and
 * 400 for a request line or header over large_client_header_buffers, 400 for a malformed request, 408 when the header
 * is not complete within client_header_timeout. And routing: server_name
 * picks the virtual server, the longest prefix picks the location, `return`
 * answers without an upstream.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  fetchRaw,
  get,
  httpConfig,
  httpGroup,
  httpServer,
  listen,
  location,
  okResponse,
  passToGroup,
  RawClient,
  rawUpstream,
  server,
  startHttp,
} from './fixtures.js';

async function setup(opts: Parameters<typeof httpServer>[0] = {}) {
  const up = await rawUpstream((req, respond) =>
    respond(okResponse(`${req.method} ${req.url} ${req.body.length}`)),
  );
  const lb = await startHttp(httpConfig([httpServer(opts)], [httpGroup('app', [server(up.port)])]));
  return {
    up,
    lb,
    close: async () => {
      await lb.close();
      await up.close();
    },
  };
}

test('client_max_body_size: a declared body over it gets 413 and the upstream sees nothing', async () => {
  const s = await setup({ clientMaxBodySize: 1000 });
  try {
    const res = await fetchRaw(
      s.lb.port,
      `POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2000\r\n\r\n${'x'.repeat(2000)}`,
    );
    assert.equal(res.status, 413);
    assert.equal(res.headers.connection, 'close');
    assert.equal(s.up.requests.length, 0);
  } finally {
    await s.close();
  }
});

test('client_max_body_size: a chunked body that grows over it gets 413', async () => {
  const s = await setup({ clientMaxBodySize: 1000 });
  try {
    const c = await RawClient.open(s.lb.port);
    c.send('POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n');
    c.send(`320\r\n${'x'.repeat(800)}\r\n`);
    c.send(`320\r\n${'x'.repeat(800)}\r\n0\r\n\r\n`);
    const res = await c.response();
    assert.equal(res.status, 413);
    c.close();
    const [log] = await s.lb.waitForRequests(1);
    assert.equal(log?.reason, 'body_too_large');
  } finally {
    await s.close();
  }
});

test('large_client_header_buffers: a header line over the buffer gets 400 "Request Header Or Cookie Too Large", a request line 414, and close; malformed request: 400 and close', async () => {
  const s = await setup();
  try {
    const big = await fetchRaw(s.lb.port, get('/', `X-Big: ${'a'.repeat(20_000)}\r\n`));
    assert.equal(big.status, 400);
    assert.equal(big.body.toString(), '400 Request Header Or Cookie Too Large\n');
    assert.equal(big.headers.connection, 'close');
    const long = await fetchRaw(s.lb.port, get(`/${'a'.repeat(20_000)}`));
    assert.equal(long.status, 414);
    assert.equal(long.headers.connection, 'close');
    const bad = await fetchRaw(s.lb.port, 'GET / HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n');
    assert.equal(bad.status, 400);
    const noHost = await fetchRaw(s.lb.port, 'GET / HTTP/1.1\r\n\r\n');
    assert.equal(noHost.status, 400, 'HTTP/1.1 without Host, as nginx');
    assert.equal(s.up.requests.length, 0);
    const reasons = s.lb.requests().map((r) => [r.status, r.reason]);
    assert.deepEqual(reasons, [
      [400, 'bad_request'],
      [414, 'bad_request'],
      [400, 'bad_request'],
      [400, 'bad_request'],
    ]);
  } finally {
    await s.close();
  }
});

test('client_header_timeout: an incomplete header gets 408 and the connection closes', async () => {
  const s = await setup({ clientHeaderTimeoutMs: 300 });
  try {
    const c = await RawClient.open(s.lb.port);
    c.send('GET / HTTP/1.1\r\nHost: t\r\n');
    const res = await c.response({ timeoutMs: 5_000 });
    assert.equal(res.status, 408);
    await c.waitClosed(3_000);
  } finally {
    await s.close();
  }
});

test('client_body_timeout: a body that stops arriving gets 408', async () => {
  const s = await setup({ clientBodyTimeoutMs: 300 });
  try {
    const c = await RawClient.open(s.lb.port);
    c.send('POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc');
    const res = await c.response({ timeoutMs: 5_000 });
    assert.equal(res.status, 408);
    c.close();
    const [log] = await s.lb.waitForRequests(1);
    assert.equal(log?.reason, 'client_body_timeout');
  } finally {
    await s.close();
  }
});

test('server_name and longest-prefix location routing; return', async () => {
  const a = await rawUpstream((req, respond) => respond(okResponse(`a ${req.url}`)));
  const b = await rawUpstream((req, respond) => respond(okResponse(`b ${req.url}`)));
  const shared = listen(0);
  const lb = await startHttp(
    httpConfig(
      [
        httpServer({
          listens: [shared],
          serverNames: ['default.test'],
          locations: [location({ prefix: '/', proxyPass: passToGroup('a') })],
        }),
        httpServer({
          listens: [shared],
          serverNames: ['api.test', '*.api.test'],
          locations: [
            location({ prefix: '/', proxyPass: passToGroup('a') }),
            location({ prefix: '/v2/', proxyPass: passToGroup('b') }),
            location({ prefix: '/v2/health', returnDirective: { code: 200, text: 'healthy' } }),
          ],
        }),
      ],
      [httpGroup('a', [server(a.port)]), httpGroup('b', [server(b.port)])],
    ),
  );
  try {
    const ask = async (host: string, path: string) => {
      const r = await fetchRaw(lb.port, get(path, '', host));
      return `${r.status} ${r.body.toString()}`;
    };
    assert.equal(await ask('api.test', '/v2/users'), '200 b /v2/users');
    assert.equal(await ask('API.test:8080', '/v1/users'), '200 a /v1/users');
    assert.equal(await ask('eu.api.test', '/v2/x'), '200 b /v2/x');
    assert.equal(await ask('api.test', '/v2/health'), '200 healthy');
    assert.equal(
      await ask('other.test', '/v2/health'),
      '200 a /v2/health',
      'unknown Host: the default server',
    );
  } finally {
    await lb.close();
    await a.close();
    await b.close();
  }
});

test('client_body_timeout also bounds a body still arriving after its response: the connection closes', async () => {
  const lb = await startHttp(
    httpConfig([
      httpServer({
        clientBodyTimeoutMs: 300,
        locations: [location({ prefix: '/', returnDirective: { code: 200, text: 'early' } })],
      }),
    ]),
  );
  try {
    const c = await RawClient.open(lb.port);
    c.send('POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc');
    const res = await c.response({ timeoutMs: 5_000 });
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), 'early');
    const t0 = Date.now();
    await c.waitClosed(3_000);
    assert.ok(Date.now() - t0 >= 200, 'not before client_body_timeout');
  } finally {
    await lb.close();
  }
});
