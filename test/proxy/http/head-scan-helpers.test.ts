/**
 * The head parsers' in-place helpers give what the builtins they replace
 * gave: indexOfCrlf2 is Buffer#indexOf('\r\n\r\n'), validHostIn is
 * validHost of the slice, and a request's method, Host and a response's
 * reason phrase read the same whatever string they are made from.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { test } from 'node:test';
import { type ResponseHead, ResponseParser } from '../../../src/proxy/http/parser.js';
import { indexOfCrlf2, parseRequestHead, RequestError } from '../../../src/proxy/http/request.js';
import { parseTarget, validHost, validHostIn } from '../../../src/proxy/http/uri.js';

/** A small deterministic generator (mulberry32). */
function random(seed: number): (k: number) => number {
  let s = seed;
  return (k) => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) % k;
  };
}

test('indexOfCrlf2 finds what Buffer#indexOf finds, from any offset', () => {
  const rnd = random(7);
  const crlf2 = Buffer.from('\r\n\r\n');
  const bytes = [13, 10, 97, 13, 10, 0];
  for (let i = 0; i < 20000; i++) {
    const b = Buffer.alloc(rnd(40));
    for (let j = 0; j < b.length; j++) b[j] = bytes[rnd(bytes.length)]!;
    const from = rnd(b.length + 6);
    assert.equal(indexOfCrlf2(b, from), b.indexOf(crlf2, from), JSON.stringify([b.toString('latin1'), from]));
  }
});

test('validHostIn reads a slice as validHost reads it made', () => {
  const hosts = [
    'a',
    'b.c:80',
    'a..b',
    '',
    '.',
    'a.',
    'a.:1',
    '[::1]:3',
    '[::1]',
    'x/y',
    'a\0b',
    ':80',
    '[',
    'a]b',
  ];
  for (const h of hosts) assert.equal(validHostIn(`<<${h}>>`, 2, 2 + h.length), validHost(h), h);
});

function request(head: string) {
  const buf = Buffer.from(head, 'latin1');
  return parseRequestHead(buf, 0, buf.length);
}

function code(head: string): string {
  try {
    request(head);
    return 'ok';
  } catch (error) {
    if (error instanceof RequestError) return error.code;
    throw error;
  }
}

test('request line: methods, versions and spaces are judged as before', () => {
  assert.equal(request('GET / HTTP/1.1\r\nHost: a\r\n\r\n').method, 'GET');
  assert.equal(request('PROPFIND /x HTTP/1.1\r\nHost: a\r\n\r\n').method, 'PROPFIND');
  assert.equal(request('GETS / HTTP/1.1\r\nHost: a\r\n\r\n').method, 'GETS');
  assert.equal(request('PAT / HTTP/1.1\r\nHost: a\r\n\r\n').method, 'PAT');
  assert.equal(code('G@T / HTTP/1.1\r\nHost: a\r\n\r\n'), 'INVALID_METHOD');
  assert.equal(code(' / HTTP/1.1\r\nHost: a\r\n\r\n'), 'INVALID_METHOD');
  assert.equal(code('G@T / HTTP/1.1 x\r\nHost: a\r\n\r\n'), 'INVALID_REQUEST_LINE');
  assert.equal(code('GET  / HTTP/1.1\r\nHost: a\r\n\r\n'), 'INVALID_REQUEST_LINE');
  assert.equal(code('GET / HTTP/1.1 \r\nHost: a\r\n\r\n'), 'INVALID_REQUEST_LINE');
  assert.equal(code('GET /\r\nHost: a\r\n\r\n'), 'INVALID_REQUEST_LINE');
  assert.equal(code('GET / HTTP/1.x\r\nHost: a\r\n\r\n'), 'INVALID_VERSION');
  assert.equal(code('GET / HTTP/2.0\r\nHost: a\r\n\r\n'), 'INVALID_VERSION');
  assert.equal(code('GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n'), 'INVALID_URL');
  assert.equal(code('GET / HTTP/1.1\r\nHo st: a\r\n\r\n'), 'INVALID_HEADER_TOKEN');
  assert.equal(code('GET / HTTP/1.1\r\nHost a\r\n\r\n'), 'INVALID_HEADER');
  assert.equal(code('GET / HTTP/1.1\r\nHo"st: a\r\n\r\n'), 'INVALID_HEADER_TOKEN');
  assert.equal(code('GET / HTTP/1.1\r\n folded\r\n\r\n'), 'OBS_FOLD');
});

test('the same Host twice, then another: each read and validated as sent', () => {
  assert.equal(request('GET / HTTP/1.1\r\nHost:  example.com:8080 \r\n\r\n').host, 'example.com:8080');
  assert.equal(request('GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n').host, 'example.com:8080');
  assert.equal(code('GET / HTTP/1.1\r\nHost: example..com:8080\r\n\r\n'), 'INVALID_HOST');
  assert.equal(request('GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n').host, 'example.com:8080');
  assert.equal(code('GET / HTTP/1.1\r\nHost: \r\n\r\n'), 'INVALID_HOST');
});

test('origin-form targets: the path up to the query, complex ones normalised', () => {
  assert.deepEqual(parseTarget('/a/b?c//d', true), { url: '/a/b?c//d', path: '/a/b', host: undefined });
  assert.equal(parseTarget('/a//b/./c/../d?x', true).path, '/a/b/d');
  assert.equal(parseTarget('/%61dmin', true).path, '/admin');
  // Longer than 16 characters: the regex path, the same answers.
  assert.equal(parseTarget('/a//b/./c/../d/%65?x=1&y=//2', true).path, '/a/b/d/e');
  assert.equal(parseTarget('/api/v1/users/12345?include=details', true).path, '/api/v1/users/12345');
  assert.throws(() => parseTarget('/api/v1/users/12345?a=\x01', true), /control character/);
  assert.equal(parseTarget('/a#b', true).path, '/a');
  assert.throws(() => parseTarget('/a?\x7f', true), /control character/);
});

function responseHead(text: string): ResponseHead {
  let got: ResponseHead | undefined;
  const p = new ResponseParser({
    onInformational() {},
    onHead(h) {
      got = h;
    },
    onBody() {},
    onComplete() {},
  });
  p.expect('GET');
  p.execute(Buffer.from(text, 'latin1'));
  assert.ok(got);
  return got;
}

test('reason phrases: the usual one, another one, none', () => {
  assert.equal(responseHead('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n').statusMessage, 'OK');
  assert.equal(responseHead('HTTP/1.1 200 Fine\r\nContent-Length: 0\r\n\r\n').statusMessage, 'Fine');
  assert.equal(responseHead('HTTP/1.1 404 OK\r\nContent-Length: 0\r\n\r\n').statusMessage, 'OK');
  assert.equal(
    responseHead('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n').statusMessage,
    'Not Found',
  );
  assert.equal(responseHead('HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n').statusMessage, '');
  assert.equal(responseHead('HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n').statusMessage, '');
});
