/**
 * The client leg's own HTTP/1.1 parsing and framing: requests that could be
 * smuggled past an upstream are refused with 400 and the connection closed
 * (the upstream never sees them), pipelined requests are answered in order,
 * bodiless responses (HEAD, 204, 304) carry no body, and a response without
 * a length is chunked to HTTP/1.1 clients and close-delimited to HTTP/1.0.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  fetchRaw,
  get,
  httpConfig,
  httpGroup,
  httpServer,
  okResponse,
  RawClient,
  rawUpstream,
  server,
  sleep,
  startHttp,
} from './fixtures.js';

async function setup(handler: Parameters<typeof rawUpstream>[0]) {
  const up = await rawUpstream(handler);
  const lb = await startHttp(httpConfig([httpServer()], [httpGroup('app', [server(up.port)])]));
  return {
    up,
    lb,
    close: async () => {
      await lb.close();
      await up.close();
    },
  };
}

const echo: Parameters<typeof rawUpstream>[0] = (req, respond) =>
  respond(okResponse(`${req.method} ${req.url} ${req.body.toString()}`));

test('request smuggling defences: ambiguous framing, folding, bare CR, NUL, DEL and duplicate Host get 400 and close; the upstream sees nothing', async () => {
  const s = await setup(echo);
  try {
    const cases: [string, string][] = [
      ['Content-Length and Transfer-Encoding', 'Content-Length: 3\r\nTransfer-Encoding: chunked\r\n'],
      ['two equal Content-Length', 'Content-Length: 3\r\nContent-Length: 3\r\n'],
      ['two different Content-Length', 'Content-Length: 3\r\nContent-Length: 4\r\n'],
      ['a Content-Length list', 'Content-Length: 3, 3\r\n'],
      ['a signed Content-Length', 'Content-Length: +3\r\n'],
      ['Transfer-Encoding other than chunked', 'Transfer-Encoding: gzip, chunked\r\n'],
      ['Transfer-Encoding twice', 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n'],
      ['obsolete line folding', 'X-A: 1\r\n folded\r\n'],
      ['whitespace before the colon', 'Content-Length : 3\r\n'],
      ['a bare CR inside the head', 'X-A: 1\rContent-Length: 3\r\n'],
      ['a NUL in a value', 'X-A: a\u0000b\r\n'],
      ['a DEL in a value', 'X-A: a\u007fb\r\n'],
      ['a second Host', 'Host: other\r\n'],
    ];
    for (const [what, extra] of cases) {
      const res = await fetchRaw(s.lb.port, `POST / HTTP/1.1\r\nHost: t\r\n${extra}\r\nabc`);
      assert.equal(res.status, 400, what);
      assert.equal(res.headers.connection, 'close', what);
    }
    const http10 = await fetchRaw(
      s.lb.port,
      'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    );
    assert.equal(http10.status, 400, 'Transfer-Encoding on HTTP/1.0');
    const http2 = await fetchRaw(s.lb.port, 'GET / HTTP/2.0\r\nHost: t\r\n\r\n');
    assert.equal(http2.status, 505, 'HTTP/2.0 on an HTTP/1 connection');
    assert.equal(s.up.requests.length, 0);
    const logged = s.lb.requests();
    assert.equal(logged.length, cases.length + 2);
    assert.ok(logged.every((r) => r.reason === 'bad_request' && r.upstream === null));
  } finally {
    await s.close();
  }
});

test('invalid chunked request bodies get 400 and close; the upstream never gets a complete request', async () => {
  const s = await setup(echo);
  try {
    const bodies: [string, string][] = [
      ['a chunk size that is not hex', 'zz\r\nabc\r\n0\r\n\r\n'],
      ['a negative chunk size', '-3\r\nabc\r\n0\r\n\r\n'],
      ['a 0x prefix', '0x3\r\nabc\r\n0\r\n\r\n'],
      ['a chunk size over 12 hex digits', 'fffffffffffffffff\r\nabc\r\n0\r\n\r\n'],
      ['a bare LF after the chunk data', '3\r\nabc\n0\r\n\r\n'],
      ['a control character after the size', '3\u000b\r\nabc\r\n0\r\n\r\n'],
      ['a bare LF after the size', '3\nabc\r\n0\r\n\r\n'],
      ['chunk data longer than its size', '3\r\nabcX\r\n0\r\n\r\n'],
    ];
    for (const [what, body] of bodies) {
      const c = await RawClient.open(s.lb.port);
      c.send(`POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n${body}`);
      const res = await c.response({ timeoutMs: 5_000 });
      assert.equal(res.status, 400, what);
      assert.equal(res.headers.connection, 'close', what);
      await c.waitClosed(3_000);
    }
    // A valid chunked body with an extension and a trailer still goes through.
    const ok = await fetchRaw(
      s.lb.port,
      'POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n',
    );
    assert.equal(ok.status, 200);
    assert.equal(ok.body.toString(), 'POST / abc');
    assert.equal(s.up.requests.length, 1);
  } finally {
    await s.close();
  }
});

test('pipelined requests are answered in order, each once, even when the first is the slowest', async () => {
  const s = await setup((req, respond) => {
    const delay = req.url === '/1' ? 150 : 0;
    setTimeout(() => respond(okResponse(`${req.method} ${req.url} ${req.body.toString()}`)), delay);
  });
  try {
    const c = await RawClient.open(s.lb.port);
    c.send(
      `${get('/1')}POST /2 HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi${get('/3')}` +
        'POST /4 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nyo\r\n0\r\n\r\n',
    );
    const bodies: string[] = [];
    for (let i = 0; i < 4; i++) bodies.push((await c.response()).body.toString());
    assert.deepEqual(bodies, ['GET /1 ', 'POST /2 hi', 'GET /3 ', 'POST /4 yo']);
    await sleep(100);
    assert.equal(s.up.requests.length, 4, 'no request forwarded twice');
    c.close();
  } finally {
    await s.close();
  }
});

test('HEAD, 204 and 304 responses carry no body and the connection stays usable', async () => {
  const s = await setup((req, respond) => {
    if (req.method === 'HEAD') respond('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n');
    else if (req.url === '/204') respond('HTTP/1.1 204 No Content\r\n\r\n');
    else if (req.url === '/304') respond('HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n');
    else respond(okResponse('after'));
  });
  try {
    const c = await RawClient.open(s.lb.port);
    c.send('HEAD / HTTP/1.1\r\nHost: t\r\n\r\n');
    const head = await c.response({ head: true });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], '5', 'HEAD keeps the length of the GET');
    assert.equal(head.headers['transfer-encoding'], undefined);
    c.send(get('/204'));
    const r204 = await c.response();
    assert.equal(r204.status, 204);
    assert.equal(r204.headers['transfer-encoding'], undefined);
    c.send(get('/304'));
    const r304 = await c.response();
    assert.equal(r304.status, 304);
    assert.equal(r304.headers['transfer-encoding'], undefined);
    c.send(get('/next'));
    const next = await c.response();
    assert.equal(next.body.toString(), 'after', 'no stray body bytes were left on the connection');
    c.close();
  } finally {
    await s.close();
  }
});

test('a response without a length is chunked to an HTTP/1.1 client and close-delimited to HTTP/1.0', async () => {
  const s = await setup((req, respond) => {
    respond('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-close');
    req.socket.end();
  });
  try {
    const c = await RawClient.open(s.lb.port);
    c.send(get('/'));
    const res = await c.response();
    assert.equal(res.headers['transfer-encoding'], 'chunked');
    assert.equal(res.headers.connection, 'keep-alive');
    assert.equal(res.body.toString(), 'until-close');
    c.close();
    const old = await fetchRaw(s.lb.port, 'GET / HTTP/1.0\r\nHost: t\r\nConnection: keep-alive\r\n\r\n');
    assert.equal(old.headers['transfer-encoding'], undefined);
    assert.equal(old.headers.connection, 'close');
    assert.equal(old.body.toString(), 'until-close');
  } finally {
    await s.close();
  }
});

test('a request head arriving a byte at a time is parsed, its CRLFCRLF split across reads', async () => {
  const s = await setup(echo);
  try {
    const c = await RawClient.open(s.lb.port);
    c.socket.setNoDelay(true);
    const head = `POST /slow HTTP/1.1\r\nHost: t\r\nX-Pad: ${'p'.repeat(40)}\r\nContent-Length: 2\r\n\r\nok`;
    for (const ch of head) {
      c.send(ch);
      await sleep(2);
    }
    const res = await c.response({ timeoutMs: 5_000 });
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), 'POST /slow ok');
    c.send(get('/after'));
    assert.equal(
      (await c.response()).body.toString(),
      'GET /after ',
      'the next request on the same connection',
    );
    c.close();
  } finally {
    await s.close();
  }
});
