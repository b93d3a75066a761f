/**
 * The upstream response parser's status line and framing headers, fed the
 * bytes an upstream would send.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clientResponseHeaders, clientResponseText } from '../../../src/proxy/http/headers.js';
import {
  ParseError,
  type ParserSink,
  type ResponseHead,
  ResponseParser,
} from '../../../src/proxy/http/parser.js';

function parse(text: string, method = 'GET'): { head?: ResponseHead; body: string; done: boolean } {
  const got: { head?: ResponseHead; body: string; done: boolean } = { body: '', done: false };
  const sink: ParserSink = {
    onInformational() {},
    onHead(h) {
      got.head = h;
    },
    onBody(c) {
      got.body += c.toString('latin1');
    },
    onComplete() {
      got.done = true;
    },
  };
  const p = new ResponseParser(sink);
  p.expect(method);
  p.execute(Buffer.from(text, 'latin1'));
  return got;
}

test('status lines: version, code and reason', () => {
  const cases: [string, number, number, string][] = [
    ['HTTP/1.1 200 OK', 1, 200, 'OK'],
    ['HTTP/1.0 404 Not Found', 0, 404, 'Not Found'],
    ['HTTP/1.1 204', 1, 204, ''],
    ['HTTP/1.1 503 ', 1, 503, ''],
    ['HTTP/1.1 299 Odd but fine: here', 1, 299, 'Odd but fine: here'],
  ];
  for (const [line, minor, code, reason] of cases) {
    const r = parse(`${line}\r\nContent-Length: 0\r\n\r\n`);
    assert.equal(r.head?.minorVersion, minor, line);
    assert.equal(r.head?.statusCode, code, line);
    assert.equal(r.head?.statusMessage, reason, line);
    assert.equal(r.done, true, line);
  }
});

test('malformed status lines are a ParseError', () => {
  for (const line of [
    'HTTP/1.2 200 OK',
    'HTTP/2 200 OK',
    'HTTP/1.1 20 OK',
    'HTTP/1.1 2000 OK',
    'HTTP/1.1 2x0 OK',
    'HTTP/1.1  200 OK',
    'http/1.1 200 OK',
    'HTTP/1.1\t200 OK',
    'ICY 200 OK',
  ])
    assert.throws(() => parse(`${line}\r\n\r\n`), ParseError, line);
});

test('Connection and framing: keep-alive, close, lists, HTTP/1.0 default', () => {
  assert.equal(
    parse('HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok').head?.close,
    false,
  );
  assert.equal(
    parse('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok').head?.close,
    true,
  );
  assert.equal(
    parse('HTTP/1.1 200 OK\r\nConnection: Upgrade, Close\r\nContent-Length: 0\r\n\r\n').head?.close,
    true,
  );
  assert.equal(parse('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n').head?.close, true);
  assert.equal(
    parse('HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n').head?.close,
    false,
  );
  const hint = parse('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 0\r\n\r\n');
  assert.equal(hint.head?.keepAliveHintMs, 5000);
  const chunked = parse('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n');
  assert.equal(chunked.head?.framing, 'chunked');
  assert.equal(chunked.body, 'ok');
  assert.equal(chunked.done, true);
  assert.equal(parse('HTTP/1.1 200 OK\r\n\r\nuntil close').head?.framing, 'close');
  assert.equal(parse('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n', 'HEAD').head?.framing, 'none');
});

test('header lines for the client: runs cut from the head equal the header-by-header rewrite', () => {
  const heads = [
    'HTTP/1.1 200 OK\r\nServer: up\r\nDate: now\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok',
    'HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nX-A: 1\r\nKeep-Alive: timeout=5\r\nX-B:2\r\nTE: x\r\nTrailer: y\r\nUpgrade: z\r\nProxy-Foo: w\r\nproxy-bar: v\r\nX-Proxyish: kept\r\nContent-Length: 0\r\n\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\nX-Last: yes\r\n\r\n0\r\n\r\n',
    'HTTP/1.1 204 No Content\r\n\r\n',
    'HTTP/1.1 200 OK\r\nConnection: X-Named\r\nX-Named: hop\r\nX-Other: kept\r\nContent-Length: 0\r\n\r\n',
  ];
  for (const text of heads) {
    const head = parse(text).head!;
    for (const dropLength of [false, true]) {
      const lines = clientResponseText(head, dropLength);
      const parsed = lines
        .split('\r\n')
        .filter((l) => l !== '')
        .flatMap((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]);
      assert.deepEqual(parsed, clientResponseHeaders(head.rawHeaders, dropLength), `${text} ${dropLength}`);
      assert.ok(lines === '' || lines.endsWith('\r\n'));
      assert.doesNotMatch(
        lines,
        /^(connection|keep-alive|te|trailer|upgrade|proxy-|transfer-encoding|x-named)/im,
      );
    }
  }
});
