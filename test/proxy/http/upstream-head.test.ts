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
