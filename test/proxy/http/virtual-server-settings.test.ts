/**
 * Virtual servers sharing one address, configured from nginx text as a user
 * writes it: `listen ... default_server` picks the server for an unknown
 * Host, and every request-level setting nginx resolves per request
 * (client_max_body_size, client_body_timeout, keepalive_timeout,
 * keepalive_requests) comes from the server chosen by Host and the location
 * chosen by path, while client_header_timeout comes from the address's
 * default server (a header is read before its Host is known).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfigText } from '../../../src/config/index.js';
import { closedPort } from '../fixtures.js';
import { okResponse, RawClient, type RawUpstream, rawUpstream, startHttp } from './fixtures.js';

function vhosts(port: number, up: number, defaultServer = ' default_server'): string {
  return `http {
    upstream app { server 127.0.0.1:${up}; keepalive 4; }
    server {
        listen 127.0.0.1:${port};
        server_name small.test;
        client_header_timeout 20s;
        client_max_body_size 1k;
        keepalive_requests 2;
        keepalive_timeout 1s;
        location / { proxy_pass http://app; proxy_http_version 1.1; }
        location /upload/ { proxy_pass http://app; proxy_http_version 1.1; client_max_body_size 8k; keepalive_requests 1; }
        location /slow/ { proxy_pass http://app; proxy_http_version 1.1; client_body_timeout 1s; }
        location /who { return 200 "small\\n"; }
    }
    server {
        listen 127.0.0.1:${port}${defaultServer};
        server_name big.test;
        client_header_timeout 1s;
        client_max_body_size 64k;
        keepalive_requests 100;
        keepalive_timeout 3s 3s;
        location / { proxy_pass http://app; proxy_http_version 1.1; }
        location /who { return 200 "big\\n"; }
    }
}
`;
}

async function withVhosts(
  body: (ctx: { port: number; up: RawUpstream }) => Promise<void>,
  defaultServer?: string,
): Promise<void> {
  const up = await rawUpstream((req, respond) =>
    respond(okResponse(`${req.method} ${req.url} ${req.body.length}`)),
  );
  const port = await closedPort();
  const parsed = parseConfigText(vhosts(port, up.port, defaultServer), 'vhosts.conf');
  assert.deepEqual(parsed.diagnostics, []);
  const lb = await startHttp(parsed.config!);
  try {
    await body({ port: lb.port, up });
  } finally {
    await lb.close();
    await up.close();
  }
}

async function once(
  port: number,
  raw: string,
): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const c = await RawClient.open(port);
  try {
    c.send(raw);
    const res = await c.response({ timeoutMs: 5_000 });
    return { status: res.status, headers: res.headers, body: res.body.toString() };
  } finally {
    c.close();
  }
}

const post = (host: string, path: string, n: number, extra = '') =>
  `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${n}\r\n${extra}\r\n${'x'.repeat(n)}`;

test('listen default_server: an unknown Host goes to the server marked default, else to the first listed', async () => {
  await withVhosts(async ({ port }) => {
    assert.equal((await once(port, 'GET /who HTTP/1.1\r\nHost: other.test\r\n\r\n')).body, 'big\n');
    assert.equal((await once(port, 'GET /who HTTP/1.0\r\n\r\n')).body, 'big\n', 'no Host at all');
    assert.equal((await once(port, 'GET /who HTTP/1.1\r\nHost: small.test\r\n\r\n')).body, 'small\n');
    assert.equal((await once(port, 'GET /who HTTP/1.1\r\nHost: BIG.test:8080\r\n\r\n')).body, 'big\n');
  });
  await withVhosts(async ({ port }) => {
    assert.equal((await once(port, 'GET /who HTTP/1.1\r\nHost: other.test\r\n\r\n')).body, 'small\n');
  }, '');
});

test('client_max_body_size from the server chosen by Host and the location chosen by path: 413 on one, 200 on the other', async () => {
  await withVhosts(async ({ port, up }) => {
    const small = await once(port, post('small.test', '/', 4096));
    assert.equal(small.status, 413);
    assert.equal(small.headers.connection, 'close');
    const big = await once(port, post('big.test', '/', 4096));
    assert.equal(big.status, 200);
    assert.equal(big.body, 'POST / 4096');
    const upload = await once(port, post('small.test', '/upload/', 4096));
    assert.equal(upload.status, 200, 'the location raises its server limit');
    assert.equal(upload.body, 'POST /upload/ 4096');
    // An unknown Host is the default server's (64k), not the first listed (1k).
    assert.equal((await once(port, post('other.test', '/', 4096))).status, 200);
    // Expect: 100-continue is refused at once with the location's limit, before any body.
    const c = await RawClient.open(port);
    c.send('POST / HTTP/1.1\r\nHost: small.test\r\nContent-Length: 4096\r\nExpect: 100-continue\r\n\r\n');
    assert.equal((await c.response({ timeoutMs: 5_000 })).status, 413);
    c.close();
    // A chunked body growing over the limit of its server.
    const chunked = (host: string) =>
      `POST / HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n${'y'.repeat(2048)}\r\n0\r\n\r\n`;
    assert.equal((await once(port, chunked('small.test'))).status, 413);
    assert.equal((await once(port, chunked('big.test'))).status, 200);
    assert.deepEqual(
      up.requests.map((r) => `${r.headers.host} ${r.url} ${r.body.length}`),
      ['big.test / 4096', 'small.test /upload/ 4096', 'other.test / 4096', 'big.test / 2048'],
    );
  });
});

test('keepalive_requests and keepalive_timeout from the server (and location) of each request', async () => {
  await withVhosts(async ({ port }) => {
    // small.test: keepalive_requests 2, keepalive_timeout 1s, no Keep-Alive header.
    const s = await RawClient.open(port);
    s.send('GET /a HTTP/1.1\r\nHost: small.test\r\n\r\n');
    const s1 = await s.response();
    assert.deepEqual(
      [s1.status, s1.headers.connection, s1.headers['keep-alive']],
      [200, 'keep-alive', undefined],
    );
    s.send('GET /b HTTP/1.1\r\nHost: small.test\r\n\r\n');
    const s2 = await s.response();
    assert.equal(s2.headers.connection, 'close', 'second request of keepalive_requests 2');
    await s.waitClosed(3_000);

    // big.test: keepalive_requests 100, keepalive_timeout 3s 3s.
    const b = await RawClient.open(port);
    for (let i = 0; i < 3; i++) {
      b.send(`GET /${i} HTTP/1.1\r\nHost: big.test\r\n\r\n`);
      const r = await b.response();
      assert.deepEqual([r.headers.connection, r.headers['keep-alive']], ['keep-alive', 'timeout=3']);
    }

    // /upload/ on small.test: the location's keepalive_requests 1.
    const u = await RawClient.open(port);
    u.send('GET /upload/x HTTP/1.1\r\nHost: small.test\r\n\r\n');
    assert.equal((await u.response()).headers.connection, 'close');
    await u.waitClosed(3_000);

    // Idle: small.test's connection closes after ~1 s, big.test's is still open then.
    const si = await RawClient.open(port);
    si.send('GET / HTTP/1.1\r\nHost: small.test\r\n\r\n');
    await si.response();
    const t0 = Date.now();
    await si.waitClosed(5_000);
    const idle = Date.now() - t0;
    assert.ok(idle >= 700 && idle < 2_500, `small.test idle close after ${idle} ms (keepalive_timeout 1s)`);
    assert.equal(b.closed, false, 'big.test (keepalive_timeout 3s) still open');
    b.send('GET /again HTTP/1.1\r\nHost: big.test\r\n\r\n');
    assert.equal((await b.response()).status, 200);
    b.close();
  });
});

test("client_header_timeout comes from the address's default server; client_body_timeout from the location", async () => {
  await withVhosts(async ({ port }) => {
    // The head names small.test (20s) but is read before Host is known: the default server's 1s applies.
    const h = await RawClient.open(port);
    const t0 = Date.now();
    h.send('GET / HTTP/1.1\r\nHost: small.test\r\n');
    const res = await h.response({ timeoutMs: 5_000 });
    const waited = Date.now() - t0;
    assert.equal(res.status, 408);
    assert.ok(waited >= 700 && waited < 4_000, `408 after ${waited} ms`);
    h.close();

    // small.test /slow/ sets client_body_timeout 1s (its server keeps the 60s default).
    const b = await RawClient.open(port);
    const t1 = Date.now();
    b.send('POST /slow/ HTTP/1.1\r\nHost: small.test\r\nContent-Length: 10\r\n\r\nab');
    const slow = await b.response({ timeoutMs: 5_000 });
    const gap = Date.now() - t1;
    assert.equal(slow.status, 408);
    assert.ok(gap >= 700 && gap < 4_000, `408 after ${gap} ms`);
    b.close();
  });
});
