/**
 * The upstream response parser's status line and framing headers, fed the
 * bytes an upstream would send.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clientResponseHead, clientResponseHeaders } from '../../../src/proxy/http/headers.js';
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

/** The head a client gets, header by header: the status line, then `clientResponseHeaders`' pairs. */
function byName(head: ResponseHead, dropLength: boolean, message: string): string {
  const pairs = clientResponseHeaders(head.rawHeaders, dropLength);
  let out = `HTTP/1.1 ${head.statusCode} ${message}\r\n`;
  for (let i = 0; i < pairs.length; i += 2) out += `${pairs[i]}: ${pairs[i + 1]}\r\n`;
  return out;
}

test('the head for the client: cut from the bytes received, the same as the header-by-header rewrite', () => {
  const heads = [
    'HTTP/1.1 200 OK\r\nServer: up\r\nDate: now\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok',
    'HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nX-A: 1\r\nKeep-Alive: timeout=5\r\nX-B: 2\r\nTE: x\r\nTrailer: y\r\nUpgrade: z\r\nProxy-Foo: w\r\nproxy-bar: v\r\nX-Proxyish: kept\r\nContent-Length: 0\r\n\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\nX-Last: yes\r\n\r\n0\r\n\r\n',
    'HTTP/1.1 204 No Content\r\n\r\n',
    'HTTP/1.1 200 OK\r\nConnection: X-Named\r\nX-Named: hop\r\nX-Other: kept\r\nContent-Length: 0\r\n\r\n',
    // Proxy-* names as long as a framing or Connection name: hop-by-hop on both paths.
    'HTTP/1.1 200 OK\r\nConnection: X-Named\r\nProxy-Info: hop\r\nProxy-Status-X: hop\r\nX-Other: kept\r\nContent-Length: 0\r\n\r\n',
    'HTTP/1.1 200 OK\r\nProxy-Info: hop\r\nX-Other: kept\r\nContent-Length: 0\r\n\r\n',
    // Node's http: Content-Length after Connection and Keep-Alive (two runs).
    'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: now\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok',
    // A status line that is not sent as received: HTTP/1.0, no reason phrase.
    'HTTP/1.0 200 OK\r\nServer: old\r\nContent-Length: 0\r\n\r\n',
    'HTTP/1.1 200\r\nServer: terse\r\nContent-Length: 0\r\n\r\n',
    'HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n',
    'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n',
  ];
  for (const text of heads)
    for (const dropLength of [false, true]) {
      let got: [string, string] | undefined;
      // The head's bytes are the read's: read while it is handed on, as the exchange does.
      const p = new ResponseParser({
        onInformational() {},
        onHead(head) {
          const message = head.statusMessage === '' ? 'Fine' : head.statusMessage;
          got = [
            clientResponseHead(head, dropLength, message).toString('latin1'),
            byName(head, dropLength, message),
          ];
        },
        onBody() {},
        onComplete() {},
      });
      p.expect('GET');
      p.execute(Buffer.from(text, 'latin1'));
      assert.ok(got, text);
      assert.equal(got[0], got[1], `${text} ${dropLength}`);
      assert.doesNotMatch(
        got[0],
        /^(connection|keep-alive|te|trailer|upgrade|proxy-.*|transfer-encoding|x-named):/im,
      );
    }
});

test('a head whose status line and kept lines are one run is a view of the read, not a copy', () => {
  const read = Buffer.from(
    'HTTP/1.1 200 OK\r\nServer: up\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok',
    'latin1',
  );
  let bytes: Buffer | undefined;
  const p = new ResponseParser({
    onInformational() {},
    onHead(h) {
      bytes = clientResponseHead(h, false, h.statusMessage);
    },
    onBody() {},
    onComplete() {},
  });
  p.expect('GET');
  p.execute(read);
  assert.equal(bytes?.toString('latin1'), 'HTTP/1.1 200 OK\r\nServer: up\r\nContent-Length: 2\r\n');
  assert.equal(bytes?.buffer, read.buffer);
  assert.equal(bytes?.byteOffset, read.byteOffset);
});

/** A head with each header line's value trimmed and after `: `, as `byName` writes it (the bytes keep the upstream's spacing). */
function spaced(head: string): string {
  const lines = head.split('\r\n');
  for (let i = 1; i < lines.length - 1; i++) {
    const colon = lines[i]!.indexOf(':');
    lines[i] = `${lines[i]!.slice(0, colon)}: ${lines[i]!.slice(colon + 1).trim()}`;
  }
  return lines.join('\r\n');
}

test('random heads (seeded): every accepted one reaches the client as the header-by-header rewrite; a lone CR, LF or NUL is always the refusal', () => {
  // A small deterministic generator (xorshift32): the same 20,000 heads every run.
  let seed = 0x2f6b1d3;
  const next = (n: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const pick = <T>(list: readonly T[]): T => list[next(list.length)]!;
  const names = [
    'Content-Length',
    'content-length',
    'Connection',
    'Keep-Alive',
    'Transfer-Encoding',
    'TE',
    'Trailer',
    'Upgrade',
    'Proxy-Foo',
    'Server',
    'X-Named',
    'Date',
  ];
  const values = [
    '5',
    ' 7 ',
    '12x',
    '0',
    'keep-alive',
    'close',
    'Upgrade, close',
    'X-Named',
    'timeout=5',
    'chunked',
    'gzip, chunked',
    'nginx',
    ' a b ',
    '\xa0x\xa0',
    '\xff',
  ];
  const noise = ['\r', '\n', '\0', ':', ' ', '\t', '\r\n', 'x'];
  let accepted = 0;
  for (let k = 0; k < 20_000; k++) {
    let text = `HTTP/1.${next(2)} ${pick(['200', '204', '404', '304', '2x0'])}${pick([' OK', '', ' ', ' Not Found', ' Fine'])}`;
    const lines = next(8);
    for (let i = 0; i < lines; i++)
      text += `\r\n${pick(names)}${pick([': ', ':', ' : ', ':\t'])}${pick(values)}`;
    if (next(3) === 0) {
      const at = next(text.length + 1);
      text = text.slice(0, at) + pick(noise) + text.slice(at);
    }
    const bare = /\0|\r(?!\n)|(?<!\r)\n/.test(text);
    let got: [string, string] | undefined;
    const p = new ResponseParser({
      onInformational() {},
      onHead(head) {
        const drop = head.framing === 'chunked' || head.framing === 'close';
        const message = head.statusMessage === '' ? 'Fine' : head.statusMessage;
        got = [
          spaced(clientResponseHead(head, drop, message).toString('latin1')),
          byName(head, drop, message),
        ];
      },
      onBody() {},
      onComplete() {},
    });
    p.expect('GET');
    let error: unknown;
    try {
      p.execute(Buffer.from(`${text}\r\n\r\n`, 'latin1'));
    } catch (e) {
      error = e;
    }
    if (bare) {
      assert.ok(error instanceof ParseError, JSON.stringify(text));
      assert.equal(error.message, 'bare CR, LF or NUL in the response head', JSON.stringify(text));
    } else if (error === undefined) {
      accepted++;
      assert.ok(got, JSON.stringify(text));
      assert.equal(got[0], got[1], JSON.stringify(text));
    } else assert.ok(error instanceof ParseError, JSON.stringify(text));
  }
  // The generator must reach both sides: heads accepted and passed on, not only refusals.
  assert.ok(accepted > 3_000, `${accepted} accepted`);
});
