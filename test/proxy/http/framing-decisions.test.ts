/**
 * The request-path and framing decisions of docs/http-framing.md, row by
 * row, against real nginx: the same raw request bytes go to keepwire and to
 * nginx 1.22 (same locations: `/admin` answers 403 itself, the rest is
 * proxied), each in front of a backend that records what reaches it. Every
 * row asserts keepwire's statuses and what its backend received, and that
 * nginx answers the same, or, where keepwire decides otherwise on purpose,
 * what nginx does instead (the table's "nginx" column).
 */
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import type { HttpServer } from '../../../src/config/model.js';
import {
  closedPort,
  httpConfig,
  httpServer,
  listen,
  location,
  okResponse,
  passToPort,
  RawClient,
  type RawUpstream,
  type RunningHttp,
  rawUpstream,
  startHttp,
} from './fixtures.js';
import { type LocalNginx, requireNginx, startLocalNginx } from './nginx-peer.js';

interface Outcome {
  /** Statuses of the responses read, in order; 0: the connection closed without one. */
  status: number[];
  /** What reached the backend: `METHOD target`, the body, the headers the row names. */
  forwarded: string[];
}

interface Row extends Outcome {
  /** The docs table's "input" column. */
  input: string;
  raw: string;
  /** Forwarded header values that are part of the row (lower-case names; `-` when absent). */
  headers?: string[];
  /** nginx's answer when keepwire decides otherwise (why: docs/http-framing.md). */
  nginx?: Outcome;
}

const H = 'Host: a\r\n';

async function outcome(port: number, up: RawUpstream, row: Row, responses: number): Promise<Outcome> {
  up.requests.length = 0;
  const c = await RawClient.open(port);
  const status: number[] = [];
  try {
    c.send(Buffer.from(row.raw, 'latin1'));
    for (let i = 0; i < responses; i++) {
      try {
        const res = await c.response({ timeoutMs: 5_000 });
        status.push(res.status);
        if (res.headers.connection === 'close') {
          // Our FIN ends the server's lingering read at once; its close says nothing more will be forwarded.
          c.socket.end();
          await c.waitClosed(5_000).catch(() => {});
          break;
        }
      } catch {
        status.push(0);
        break;
      }
    }
  } finally {
    c.close();
  }
  const forwarded = up.requests.map((r) => {
    let line = `${r.method} ${r.url}`;
    if (r.body.length > 0) line += ` body=${r.body.toString('latin1')}`;
    for (const h of row.headers ?? []) line += ` ${h}=${r.headers[h] ?? '-'}`;
    return line;
  });
  return { status, forwarded };
}

interface Pair {
  keepwire: RunningHttp;
  nginx: LocalNginx;
  kwUp: RawUpstream;
  ngxUp: RawUpstream;
  close(): Promise<void>;
}

/**
 * keepwire with `servers(upstreamPort)` and nginx with `http(upstreamPort)`
 * (its http block inside, `PORT` for its own port), each with a recording backend.
 */
async function pair(servers: (up: number) => HttpServer[], http: (up: number) => string): Promise<Pair> {
  const respond = (_req: unknown, send: (raw: string) => void) => send(okResponse('ok'));
  const kwUp = await rawUpstream(respond);
  const ngxUp = await rawUpstream(respond);
  const keepwire = await startHttp(httpConfig(servers(kwUp.port)));
  let nginx: LocalNginx;
  try {
    nginx = await startLocalNginx(http(ngxUp.port));
  } catch (error) {
    await keepwire.close();
    await kwUp.close();
    await ngxUp.close();
    throw error;
  }
  return {
    keepwire,
    nginx,
    kwUp,
    ngxUp,
    async close() {
      nginx.stop();
      await keepwire.close();
      await kwUp.close();
      await ngxUp.close();
    },
  };
}

async function check(p: Pair, rows: Row[]): Promise<void> {
  for (const row of rows) {
    const theirs = row.nginx ?? row;
    const n = Math.max(row.status.length, theirs.status.length);
    const kw = await outcome(p.keepwire.port, p.kwUp, row, n);
    assert.deepEqual(kw, { status: row.status, forwarded: row.forwarded }, `keepwire: ${row.input}`);
    const ngx = await outcome(p.nginx.port, p.ngxUp, row, n);
    assert.deepEqual(
      ngx,
      { status: theirs.status, forwarded: theirs.forwarded },
      `nginx: ${row.input}${row.nginx ? ' (keepwire decides otherwise)' : ''}`,
    );
  }
}

const adminAndProxy = (up: number, extra: Partial<HttpServer> = {}): HttpServer[] => [
  httpServer({
    locations: [
      location({ prefix: '/admin', returnDirective: { code: 403 } }),
      location({ prefix: '/', proxyPass: passToPort(up) }),
    ],
    ...extra,
  }),
];

const nginxAdminAndProxy = (up: number, extra = '') => `server {
    listen 127.0.0.1:PORT;
    ${extra}
    location /admin { return 403; }
    location / { proxy_pass http://127.0.0.1:${up}; proxy_set_header Host $host; }
  }`;

async function withPair(
  t: TestContext,
  servers: (up: number) => HttpServer[],
  http: (up: number) => string,
  run: (p: Pair) => Promise<void>,
): Promise<void> {
  if (!requireNginx(t)) return;
  const p = await pair(servers, http);
  try {
    await run(p);
  } finally {
    await p.close();
  }
}

const get = (target: string, head = H) => `GET ${target} HTTP/1.1\r\n${head}\r\n`;
const post = (head: string, body: string) => `POST /p HTTP/1.1\r\n${H}${head}\r\n${body}`;
const chunked = (body: string) => post('Transfer-Encoding: chunked\r\n', body);
const none = { status: [400], forwarded: [] };

/** Defect 5: locations see the normalised path; the backend sees the client's target. */
const PATH_ROWS: Row[] = [
  { input: '`/%61dmin` (percent-encoded letter)', raw: get('/%61dmin'), status: [403], forwarded: [] },
  { input: '`//admin` (merge_slashes on)', raw: get('//admin'), status: [403], forwarded: [] },
  { input: '`/x/../admin` (dot-dot segment)', raw: get('/x/../admin'), status: [403], forwarded: [] },
  { input: '`/x/%2E%2E/admin` (encoded dot-dot)', raw: get('/x/%2E%2E/admin'), status: [403], forwarded: [] },
  { input: '`/./admin/.` (dot segments)', raw: get('/./admin/.'), status: [403], forwarded: [] },
  { input: '`/admin%3F` (an encoded `?` is path)', raw: get('/admin%3F'), status: [403], forwarded: [] },
  { input: '`/../admin` (above the root)', raw: get('/../admin'), ...none },
  { input: '`/x/%2e%2e/%2e%2e/y` (encoded, above the root)', raw: get('/x/%2e%2e/%2e%2e/y'), ...none },
  { input: '`/a%00b` (encoded NUL)', raw: get('/a%00b'), ...none },
  { input: '`/a%zz` (bad percent-encoding)', raw: get('/a%zz'), ...none },
  { input: '`/a%2` (truncated percent-encoding)', raw: get('/a%2'), ...none },
  {
    input: '`/a%2fb/%2e%2e/admin?x=/../admin` (normalised to `/a/admin`)',
    raw: get('/a%2fb/%2e%2e/admin?x=/../admin'),
    status: [200],
    forwarded: ['GET /a%2fb/%2e%2e/admin?x=/../admin'],
  },
  {
    input: '`/x//y/./z/..` (forwarded as sent)',
    raw: get('/x//y/./z/..'),
    status: [200],
    forwarded: ['GET /x//y/./z/..'],
  },
  { input: '`/a#frag` (a fragment)', raw: get('/a#frag'), status: [200], forwarded: ['GET /a#frag'] },
  { input: '`admin` (no leading slash)', raw: get('admin'), ...none },
  { input: '`CONNECT h:443` (authority-form)', raw: 'CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n', ...none },
  { input: '`*` (asterisk-form)', raw: 'OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n', ...none },
];

/** Defect 6: absolute-form targets (RFC 9112 §3.2.2). */
const ABSOLUTE_ROWS: Row[] = [
  {
    input: '`http://h/admin` (absolute-form, routed by its path)',
    raw: get('http://h/admin'),
    status: [403],
    forwarded: [],
  },
  {
    input: '`http://h/x?q=1` with `Host: a` (the target gives the Host)',
    raw: get('http://h/x?q=1'),
    status: [200],
    forwarded: ['GET /x?q=1 host=h'],
    headers: ['host'],
  },
  {
    input: '`HTTPS://h/x` (https, scheme in any case)',
    raw: get('HTTPS://h/x'),
    status: [200],
    forwarded: ['GET /x host=h'],
    headers: ['host'],
  },
  { input: '`http://h` (empty path)', raw: get('http://h'), status: [200], forwarded: ['GET /'] },
  {
    input: '`http://h?q` (empty path, a query)',
    raw: get('http://h?q'),
    status: [200],
    forwarded: ['GET /?q'],
  },
  {
    input: '`http://h/x` without a Host header (HTTP/1.1)',
    raw: 'GET http://h/x HTTP/1.1\r\n\r\n',
    ...none,
  },
  {
    input: '`http://h/x` without a Host header (HTTP/1.0)',
    raw: 'GET http://h/x HTTP/1.0\r\n\r\n',
    status: [200],
    forwarded: ['GET /x host=h'],
    headers: ['host'],
  },
  { input: '`http://u@h/x` (userinfo)', raw: get('http://u@h/x'), ...none },
  { input: '`http:///x` (empty host)', raw: get('http:///x'), ...none },
  {
    input: '`ftp://h/x` (another scheme)',
    raw: get('ftp://h/x'),
    ...none,
    nginx: { status: [200], forwarded: ['GET /x'] },
  },
];

const ok = (body = ''): Outcome => ({ status: [200], forwarded: [body ? `POST /p body=${body}` : 'GET /x'] });
const headerLines = (n: number) => Array.from({ length: n }, (_, i) => `X${i}: v\r\n`).join('');

/** Defect 7: the framing decisions. */
const FRAMING_ROWS: Row[] = [
  { input: 'bare LF line ends in the head', raw: 'GET /x HTTP/1.1\nHost: a\n\n', ...ok() },
  {
    input: 'bare LF head, then a pipelined `GET /admin`',
    raw: `GET /x HTTP/1.1\nHost: a\n\n${get('/admin')}`,
    status: [200, 403],
    forwarded: ['GET /x'],
  },
  { input: 'mixed CRLF and bare LF in the head', raw: 'GET /x HTTP/1.1\r\nHost: a\nX-A: 1\r\n\r\n', ...ok() },
  { input: 'two leading empty lines', raw: `\r\n\r\n${get('/x')}`, ...ok() },
  { input: 'a bare CR in a header value', raw: get('/x', `${H}X-A: 1\r2\r\n`), ...none },
  { input: '`HTTP/1.2`', raw: 'GET /x HTTP/1.2\r\nHost: a\r\n\r\n', ...ok() },
  {
    input: '`HTTP/1.10`',
    raw: 'GET /x HTTP/1.10\r\nHost: a\r\n\r\n',
    ...none,
    nginx: ok(),
  },
  { input: '`HTTP/2.0`', raw: 'GET /x HTTP/2.0\r\nHost: a\r\n\r\n', status: [505], forwarded: [] },
  {
    input: 'two spaces after the method',
    raw: 'GET  /x HTTP/1.1\r\nHost: a\r\n\r\n',
    ...none,
    nginx: ok(),
  },
  {
    input: 'a HTAB in the target',
    raw: 'GET /x\t HTTP/1.1\r\nHost: a\r\n\r\n',
    ...none,
  },
  {
    input: '16-digit Content-Length `0000000000000003`',
    raw: post('Content-Length: 0000000000000003\r\n', 'abc'),
    ...ok('abc'),
  },
  {
    input: 'Content-Length `1000000000000000` (over 1m)',
    raw: post('Content-Length: 1000000000000000\r\n', 'abc'),
    status: [413],
    forwarded: [],
  },
  {
    input: 'Content-Length `9007199254740993` (over 2^53)',
    raw: post('Content-Length: 9007199254740993\r\n', 'abc'),
    status: [413],
    forwarded: [],
  },
  { input: '20-digit Content-Length', raw: post('Content-Length: 99999999999999999999\r\n', 'abc'), ...none },
  { input: 'Content-Length with VT before it', raw: post('Content-Length:\x0b3\r\n', 'abc'), ...none },
  { input: 'Content-Length with NBSP before it', raw: post('Content-Length: \xa03\r\n', 'abc'), ...none },
  {
    input: 'two equal Content-Length',
    raw: post('Content-Length: 3\r\nContent-Length: 3\r\n', 'abc'),
    ...none,
  },
  {
    input: 'Content-Length and Transfer-Encoding',
    raw: post('Content-Length: 3\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n'),
    ...none,
  },
  {
    input: '`Transfer-Encoding: gzip, chunked`',
    raw: post('Transfer-Encoding: gzip, chunked\r\n', '0\r\n\r\n'),
    ...none,
    nginx: { status: [501], forwarded: [] },
  },
  {
    input: '`Transfer-Encoding: Chunked` (case)',
    raw: post('Transfer-Encoding: Chunked\r\n', '3\r\nabc\r\n0\r\n\r\n'),
    ...ok('abc'),
  },
  {
    input: 'chunked on HTTP/1.0',
    raw: 'POST /p HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
    ...none,
  },
  {
    input: '13-hex-digit chunk size `0000000000003`',
    raw: chunked('0000000000003\r\nabc\r\n0\r\n\r\n'),
    ...ok('abc'),
  },
  { input: '15-hex-digit chunk size', raw: chunked('fffffffffffffff\r\nabc\r\n0\r\n\r\n'), ...none },
  { input: 'whitespace after a chunk size', raw: chunked('3 \r\nabc\r\n0\t\r\n\r\n'), ...ok('abc') },
  {
    input: 'whitespace before a chunk extension',
    raw: chunked('3 ;ext=1\r\nabc\r\n0\r\n\r\n'),
    ...ok('abc'),
  },
  {
    input: 'bare LF in chunked framing',
    raw: chunked('3\nabc\n0\n\n'),
    ...none,
    nginx: ok('abc'),
  },
  {
    input: 'control characters in a header value',
    raw: get('/x', `${H}X-A: a\x01b\x1fc\r\n`),
    status: [200],
    forwarded: ['GET /x x-a=a\x01b\x1fc'],
    headers: ['x-a'],
  },
  { input: 'NUL in a header value', raw: get('/x', `${H}X-A: a\x00b\r\n`), ...none },
  {
    input: 'DEL in a header value',
    raw: get('/x', `${H}X-A: a\x7fb\r\n`),
    ...none,
    nginx: { status: [200], forwarded: ['GET /x x-a=a\x7fb'] },
    headers: ['x-a'],
  },
  {
    input: '`Expect: 200-ok`',
    raw: get('/x', `${H}Expect: 200-ok\r\n`),
    status: [200],
    forwarded: ['GET /x expect=-'],
    headers: ['expect'],
  },
  {
    input: '`Transfer_Encoding: chunked` with Content-Length (underscores_in_headers off)',
    raw: post('Transfer_Encoding: chunked\r\nContent-Length: 3\r\n', 'abc'),
    status: [200],
    forwarded: ['POST /p body=abc transfer_encoding=-'],
    headers: ['transfer_encoding'],
  },
  {
    input: '`X.A: 1` (ignore_invalid_headers on)',
    raw: get('/x', `${H}X.A: 1\r\n`),
    status: [200],
    forwarded: ['GET /x x.a=-'],
    headers: ['x.a'],
  },
  {
    input: 'a header line without a colon',
    raw: get('/x', `${H}BadHeader\r\n`),
    ...none,
    nginx: ok(),
  },
  {
    input: '`X@A: 1` (a name that is not a token)',
    raw: get('/x', `${H}X@A: 1\r\n`),
    ...none,
    nginx: { status: [200], forwarded: ['GET /x x@a=-'] },
    headers: ['x@a'],
  },
  { input: 'whitespace before the colon', raw: get('/x', `${H}X-A : 1\r\n`), ...none },
  { input: 'obsolete line folding', raw: get('/x', `${H}X-A: 1\r\n folded\r\n`), ...none },
  { input: '`Host: a/b`', raw: get('/x', 'Host: a/b\r\n'), ...none },
  { input: 'an empty Host', raw: get('/x', 'Host: \r\n'), ...none },
  { input: '999 header lines and Host (1,000)', raw: get('/x', `${H}${headerLines(999)}`), ...ok() },
  { input: '1,000 header lines and Host (1,001)', raw: get('/x', `${H}${headerLines(1000)}`), ...none },
  {
    input: 'a request line of 8,192 bytes with its CRLF',
    raw: get(`/${'a'.repeat(8176)}`),
    status: [200],
    forwarded: [`GET /${'a'.repeat(8176)}`],
  },
  { input: 'a request line of 8,193 bytes', raw: get(`/${'a'.repeat(8177)}`), status: [414], forwarded: [] },
  {
    input: 'a header line of 8,192 bytes with its CRLF',
    raw: get('/x', `${H}X: ${'b'.repeat(8187)}\r\n`),
    ...ok(),
  },
  { input: 'a header line of 8,193 bytes', raw: get('/x', `${H}X: ${'b'.repeat(8188)}\r\n`), ...none },
];

test('request paths: locations match the normalised path as nginx does, the backend gets the target as sent', async (t) => {
  await withPair(t, adminAndProxy, nginxAdminAndProxy, (p) => check(p, PATH_ROWS));
});

test('absolute-form targets: accepted for http and https, the Host comes from the target, origin-form upstream', async (t) => {
  await withPair(t, adminAndProxy, nginxAdminAndProxy, (p) => check(p, ABSOLUTE_ROWS));
});

test('framing decisions: every row of docs/http-framing.md, keepwire and nginx on the same bytes', async (t) => {
  await withPair(t, adminAndProxy, nginxAdminAndProxy, (p) => check(p, FRAMING_ROWS));
});

test('an absolute-form target is routed by its host, not by the Host header', async (t) => {
  const port = await closedPort();
  await withPair(
    t,
    (up) => [
      httpServer({
        listens: [listen(port)],
        serverNames: ['a'],
        locations: [location({ prefix: '/', proxyPass: passToPort(up) })],
      }),
      httpServer({
        listens: [listen(port)],
        serverNames: ['h'],
        locations: [location({ prefix: '/', returnDirective: { code: 204 } })],
      }),
    ],
    (
      up,
    ) => `server { listen 127.0.0.1:PORT; server_name a; location / { proxy_pass http://127.0.0.1:${up}; } }
  server { listen 127.0.0.1:PORT; server_name h; location / { return 204; } }`,
    (p) =>
      check(p, [
        { input: 'Host a', raw: get('/x'), status: [200], forwarded: ['GET /x'] },
        { input: 'http://h/x with Host a', raw: get('http://h/x'), status: [204], forwarded: [] },
        {
          input: 'http://a/x with Host h',
          raw: get('http://a/x', 'Host: h\r\n'),
          status: [200],
          forwarded: ['GET /x'],
        },
      ]),
  );
});

test('merge_slashes off: `//admin` is another path, dot segments still resolve', async (t) => {
  await withPair(
    t,
    (up) => adminAndProxy(up, { mergeSlashes: false }),
    (up) => nginxAdminAndProxy(up, 'merge_slashes off;'),
    (p) =>
      check(p, [
        { input: '//admin', raw: get('//admin'), status: [200], forwarded: ['GET //admin'] },
        { input: '/x/../admin', raw: get('/x/../admin'), status: [403], forwarded: [] },
      ]),
  );
});

test('underscores_in_headers on and ignore_invalid_headers off: the headers are forwarded, never read as framing', async (t) => {
  await withPair(
    t,
    (up) => adminAndProxy(up, { underscoresInHeaders: true, ignoreInvalidHeaders: false }),
    (up) => nginxAdminAndProxy(up, 'underscores_in_headers on; ignore_invalid_headers off;'),
    (p) =>
      check(p, [
        {
          input: 'Transfer_Encoding',
          raw: post('Transfer_Encoding: chunked\r\nContent-Length: 3\r\n', 'abc'),
          status: [200],
          forwarded: ['POST /p body=abc transfer_encoding=chunked'],
          headers: ['transfer_encoding'],
        },
        {
          input: 'X.A',
          raw: get('/x', `${H}X.A: 1\r\n`),
          status: [200],
          forwarded: ['GET /x x.a=1'],
          headers: ['x.a'],
        },
      ]),
  );
});

test('large_client_header_buffers, client_header_buffer_size and max_headers set the limits as in nginx', async (t) => {
  await withPair(
    t,
    (up) =>
      adminAndProxy(up, {
        clientHeaderBufferSize: 1024,
        largeClientHeaderBuffers: { number: 2, size: 2048 },
        maxHeaders: 10,
      }),
    (up) =>
      nginxAdminAndProxy(
        up,
        'client_header_buffer_size 1k; large_client_header_buffers 2 2k; max_headers 10;',
      ),
    (p) =>
      check(p, [
        {
          input: 'request line 2,048',
          raw: get(`/${'a'.repeat(2032)}`),
          status: [200],
          forwarded: [`GET /${'a'.repeat(2032)}`],
        },
        { input: 'request line 2,049', raw: get(`/${'a'.repeat(2033)}`), status: [414], forwarded: [] },
        { input: 'header line 2,048', raw: get('/x', `${H}X: ${'b'.repeat(2043)}\r\n`), ...ok() },
        { input: 'header line 2,049', raw: get('/x', `${H}X: ${'b'.repeat(2044)}\r\n`), ...none },
        { input: '10 header lines', raw: get('/x', `${H}${headerLines(9)}`), ...ok() },
        { input: '11 header lines', raw: get('/x', `${H}${headerLines(10)}`), ...none },
      ]),
  );
});
