/**
 * Header names and the HTTP version are read by character codes on the
 * request path (no string per name, no match array per request): the
 * framing and hop-by-hop headers are found in any case, nothing else is
 * taken for them, and the version rules stay RFC 9112's.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ResponseHead, ResponseParser } from '../../../src/proxy/http/parser.js';
import { nameIs, parseRequestHead, RequestError } from '../../../src/proxy/http/request.js';

function request(text: string) {
  const buf = Buffer.from(text, 'latin1');
  return parseRequestHead(buf, 0, buf.length);
}

function refusal(text: string): number {
  try {
    request(text);
  } catch (error) {
    if (error instanceof RequestError) return error.status;
    throw error;
  }
  return 0;
}

test('nameIs: letters match in any case, `-` only itself, and CR is never a `-`', () => {
  assert.equal(nameIs('Content-Length', 0, 'content-length'), true);
  assert.equal(nameIs('xCONTENT-LENGTH', 1, 'content-length'), true);
  assert.equal(nameIs('cOnNeCtIoN', 0, 'connection'), true);
  assert.equal(nameIs('Content\rLength', 0, 'content-length'), false);
  assert.equal(nameIs('Content_Length', 0, 'content-length'), false);
  assert.equal(nameIs('Content-Lengtj', 0, 'content-length'), false);
  // Folding bit 0x20 on a non-letter gives no letter: '@' (0x40) is not '`', '[' not '{'.
  assert.equal(nameIs('@e', 0, 'te'), false);
  assert.equal(nameIs('TE', 0, 'te'), true);
});

test('request heads: framing, Host and Connection headers found in any case', () => {
  const req = request(
    'POST /x HTTP/1.1\r\nhOsT: a.example\r\nCONTENT-length: 5\r\ncOnNeCtIoN: close\r\nX-Forwarded-FOR: 10.0.0.1\r\n\r\n',
  );
  assert.equal(req.host, 'a.example');
  assert.equal(req.contentLength, 5);
  assert.equal(req.keepAlive, false);
  const te = request('POST /x HTTP/1.1\r\nHost: a\r\ntRANSFER-eNCODING: chunked\r\n\r\n');
  assert.equal(te.chunked, true);
  assert.equal(refusal('GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n'), 400);
  assert.equal(refusal('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\ncontent-LENGTH: 2\r\n\r\n'), 400);
});

test('request line versions: 1.0 and 1.1 served, a higher 1.x as 1.1, 2.x 505, others 400', () => {
  assert.equal(request('GET / HTTP/1.0\r\n\r\n').minorVersion, 0);
  assert.equal(request('GET / HTTP/1.1\r\nHost: a\r\n\r\n').minorVersion, 1);
  assert.equal(request('GET / HTTP/1.2\r\nHost: a\r\n\r\n').minorVersion, 1);
  assert.equal(request('GET / HTTP/1.9\r\nHost: a\r\n\r\n').minorVersion, 1);
  assert.equal(refusal('GET / HTTP/2.0\r\nHost: a\r\n\r\n'), 505);
  assert.equal(refusal('GET / HTTP/9.9\r\nHost: a\r\n\r\n'), 505);
  for (const bad of [
    'HTTP/0.9',
    'HTTP/1.10',
    'HTTP/1.x',
    'HTTP/1',
    'http/1.1',
    'HTTP/1,1',
    'HTTP-1.1',
    'HTTP/a.1',
  ])
    assert.equal(refusal(`GET / ${bad}\r\nHost: a\r\n\r\n`), 400, bad);
});

/** A response parser whose heads go to `onHead`. */
function parserTo(onHead: (head: ResponseHead) => void): ResponseParser {
  return new ResponseParser({ onInformational() {}, onHead, onBody() {}, onComplete() {} });
}

test('response heads: hop-by-hop and framing headers found in any case, kept marks per response', () => {
  let head: ResponseHead | undefined;
  let raw: string[] = [];
  const parser = parserTo((h) => {
    head = h;
    // The head's bytes are the read's: its lines are read while it is handed on.
    raw = h.rawHeaders;
  });
  parser.expect('GET');
  parser.execute(
    Buffer.from(
      'HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\ncontent-LENGTH: 2\r\nCONNECTION: close\r\nkeep-ALIVE: timeout=7\r\n\r\nhi',
    ),
  );
  assert.equal(head?.framing, 'length');
  assert.equal(head?.contentLength, 2);
  assert.equal(head?.close, true);
  assert.equal(head?.keepAliveHintMs, 7000);
  assert.equal(head?.marks.length, 8 * 4);
  // A shorter head on the same connection leaves no lines of the one before.
  parser.expect('GET');
  parser.execute(Buffer.from('HTTP/1.1 200 OK\r\ntRaNsFeR-EnCoDiNg: chunked\r\n\r\n0\r\n\r\n'));
  assert.equal(head?.framing, 'chunked');
  assert.deepEqual(raw, ['tRaNsFeR-EnCoDiNg', 'chunked']);
});

test('response Content-Length and Connection values read in place: the same values accepted and refused', () => {
  const parse = (head: string): ResponseHead | Error => {
    let got: ResponseHead | undefined;
    const parser = parserTo((h) => {
      got = h;
    });
    parser.expect('GET');
    try {
      parser.execute(Buffer.from(`HTTP/1.1 200 OK\r\n${head}\r\n\r\n`, 'latin1'));
    } catch (error) {
      return error as Error;
    }
    return got!;
  };
  const length = (value: string) => {
    const h = parse(`Content-Length:${value}`);
    return h instanceof Error ? -1 : h.contentLength;
  };
  assert.equal(length(' 12'), 12);
  assert.equal(length('  007 \t'), 7);
  assert.equal(length('\xa05\xa0'), 5, 'what String.trim takes (NBSP) is taken, as before');
  assert.equal(length(' 999999999999999'), 999999999999999);
  for (const bad of [' ', '', ' 1 2', ' 1a', ' -1', ' +1', ' 1000000000000000', ' 0x10'])
    assert.equal(length(bad), -1, JSON.stringify(bad));
  const conn = (value: string) => parse(`Content-Length: 0\r\nConnection:${value}`) as ResponseHead;
  assert.equal(conn(' Keep-Alive ').close, false);
  assert.equal(conn(' CLOSE').close, true);
  assert.equal(conn(' close, X-Foo').close, true);
  assert.equal(conn(' close, X-Foo').connectionNames, true);
  assert.equal(conn(' keep-alive').connectionNames, false);
  assert.equal(conn(' Upgrade').upgrade, true);
});
