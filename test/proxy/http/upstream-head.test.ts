/**
 * The request head sent upstream, built from a client head parsed as
 * received: forwarded lines are cut from it in runs, the rest rewritten.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type RequestContext, upstreamRequestHead } from '../../../src/proxy/http/headers.js';
import { parseRequestHead } from '../../../src/proxy/http/request.js';

function build(head: string, setHeaders: { name: string; value: string }[] = []): [string, string][] {
  const buf = Buffer.from(`${head}\r\n\r\n`, 'latin1');
  const req = parseRequestHead(buf, 0, buf.length);
  const ctx: RequestContext = {
    method: req.method,
    url: req.url,
    head: req,
    remoteAddr: '192.0.2.7',
    remotePort: 40000,
    serverPort: 8080,
    scheme: 'http',
    host: req.host ?? '',
    proxyHost: 'app',
  };
  const text = upstreamRequestHead(ctx, {
    version: '1.1',
    reuse: true,
    setHeaders,
    bodyLength: req.contentLength >= 0 ? req.contentLength : 'none',
  });
  assert.ok(text.endsWith('\r\n\r\n'));
  const lines = text.slice(0, -4).split('\r\n');
  assert.equal(lines[0], `${req.method} ${req.url} HTTP/1.1`);
  return lines.slice(1).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]);
}

test('hop-by-hop and replaced headers are dropped, the rest kept in order, X-Forwarded-* added', () => {
  const got = build(
    [
      'POST /p?q HTTP/1.1',
      'Host: example.test',
      'Connection: keep-alive',
      'Accept: */*',
      'Keep-Alive: timeout=5',
      'X-Forwarded-For: 10.0.0.1',
      'te: trailers',
      'TRAILER: x',
      'Upgrade: h2c',
      'Proxy-Authorization: Basic eA==',
      'proxy-connection: keep-alive',
      'X-Proxyish: kept',
      'Expect: 100-continue',
      'Content-Length: 3',
      'X-Forwarded-Proto: https',
      'X-Forwarded-Host: spoofed',
      'x-forwarded-for: 10.0.0.2',
      'X-Last:  spaced  ',
    ].join('\r\n'),
  );
  assert.deepEqual(got, [
    ['Host', 'example.test'],
    ['Accept', '*/*'],
    ['X-Proxyish', 'kept'],
    ['X-Last', 'spaced'],
    ['X-Forwarded-For', '10.0.0.1, 10.0.0.2, 192.0.2.7'],
    ['X-Forwarded-Proto', 'http'],
    ['X-Forwarded-Host', 'example.test'],
    ['Content-Length', '3'],
  ]);
});

test('a Connection header naming other headers drops them too', () => {
  const got = build('GET / HTTP/1.1\r\nHost: h\r\nConnection: X-Secret, close\r\nX-Secret: 1\r\nX-Public: 2');
  assert.deepEqual(got, [
    ['Host', 'h'],
    ['X-Public', '2'],
    ['X-Forwarded-For', '192.0.2.7'],
    ['X-Forwarded-Proto', 'http'],
    ['X-Forwarded-Host', 'h'],
  ]);
});

test('proxy_set_header replaces the client header of the same name; Host comes from the upstream name when missing', () => {
  const got = build('GET / HTTP/1.0\r\nUser-Agent: ua\r\nX-Real-IP: spoofed\r\nAccept: a', [
    { name: 'X-Real-IP', value: '$remote_addr' },
    { name: 'User-Agent', value: '' },
  ]);
  assert.deepEqual(got, [
    ['Accept', 'a'],
    ['X-Forwarded-For', '192.0.2.7'],
    ['X-Forwarded-Proto', 'http'],
    ['Host', 'app'],
    ['X-Real-IP', '192.0.2.7'],
  ]);
});

/** The whole head sent upstream for `head` from `remoteAddr`, as a string. */
function headText(
  head: string,
  opts: { remoteAddr?: string; version?: '1.0' | '1.1'; reuse?: boolean } = {},
): string {
  const buf = Buffer.from(`${head}\r\n\r\n`, 'latin1');
  const req = parseRequestHead(buf, 0, buf.length);
  return upstreamRequestHead(
    {
      method: req.method,
      url: req.url,
      head: req,
      remoteAddr: opts.remoteAddr ?? '192.0.2.7',
      remotePort: 40000,
      serverPort: 8080,
      scheme: 'http',
      host: req.host ?? '',
      proxyHost: 'app',
    },
    {
      version: opts.version ?? '1.1',
      reuse: opts.reuse ?? true,
      setHeaders: [],
      bodyLength: req.contentLength >= 0 ? req.contentLength : 'none',
    },
  );
}

test('the request line goes upstream as received only when it is the one to send', () => {
  // Kept whole, with the header lines after it.
  assert.equal(
    headText('GET /a?b HTTP/1.1\r\nHost: h.test\r\nAccept: */*'),
    'GET /a?b HTTP/1.1\r\nHost: h.test\r\nAccept: */*\r\nX-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: h.test\r\n\r\n',
  );
  // A dropped first header ends the request line's run.
  assert.equal(
    headText('GET / HTTP/1.1\r\nConnection: keep-alive\r\nHost: h.test'),
    'GET / HTTP/1.1\r\nHost: h.test\r\nX-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: h.test\r\n\r\n',
  );
  // Another version, an absolute-form target, a target that only starts alike: rebuilt.
  assert.match(headText('GET / HTTP/1.0\r\nHost: h.test'), /^GET \/ HTTP\/1\.1\r\nHost: h\.test\r\n/);
  assert.match(
    headText('GET http://h.test/x HTTP/1.1\r\nHost: h.test'),
    // (the target's authority is the Host: the client's line is replaced, RFC 9112 §3.2.2)
    /^GET \/x HTTP\/1\.1\r\n.*\r\nHost: h\.test\r\n\r\n$/s,
  );
  assert.match(
    headText('GET / HTTP/1.1\r\nHost: h.test', { version: '1.0', reuse: false }),
    /^GET \/ HTTP\/1\.0\r\nHost: h\.test\r\n.*Connection: close\r\n\r\n$/s,
  );
  // No header lines at all: the line, then what keepwire adds (Host from the upstream's name).
  assert.equal(
    headText('GET / HTTP/1.0'),
    'GET / HTTP/1.1\r\nX-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\nHost: app\r\n\r\n',
  );
});

test('the added lines follow every input that changes between consecutive requests', () => {
  const base = 'GET / HTTP/1.1\r\nHost: one.test';
  const first = headText(base);
  assert.match(first, /X-Forwarded-For: 192\.0\.2\.7\r\n.*X-Forwarded-Host: one\.test\r\n\r\n$/s);
  // Each case right after the base request, so only its one input differs from the head before it.
  const cases: [string, string, Parameters<typeof headText>[1], RegExp][] = [
    ['client address', base, { remoteAddr: '198.51.100.9' }, /X-Forwarded-For: 198\.51\.100\.9\r\n/],
    ['Host', 'GET / HTTP/1.1\r\nHost: two.test', {}, /X-Forwarded-Host: two\.test\r\n/],
    [
      'prior X-Forwarded-For',
      `${base}\r\nX-Forwarded-For: 10.0.0.1`,
      {},
      /X-Forwarded-For: 10\.0\.0\.1, 192\.0\.2\.7\r\n/,
    ],
    ['body', 'POST / HTTP/1.1\r\nHost: one.test\r\nContent-Length: 2', {}, /Content-Length: 2\r\n\r\n$/],
    ['version', base, { version: '1.0' }, /Connection: close\r\n\r\n$/],
    ['no reuse', base, { reuse: false }, /Connection: close\r\n\r\n$/],
    ['no Host', 'GET / HTTP/1.1', {}, /Host: app\r\n\r\n$/],
  ];
  for (const [what, head, opts, expected] of cases) {
    assert.equal(headText(base), first, `before ${what}`);
    assert.match(headText(head, opts), expected, what);
  }
  assert.equal(headText(base), first);
});
