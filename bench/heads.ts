/**
 * The HTTP proxy's head functions between two builds (#20 item 1: the heads
 * are about half of keepwire's user-space instructions per keep-alive
 * request, 2026-12-01): the request head's parse, the upstream head built
 * from it, the response head's parse and the client's header text.
 *
 *   node dist/bench/heads.js diff --before /other/tree/dist [--count 300000]
 *       a differential fuzz: generated request heads (random pieces, near-valid
 *       and valid, five head rule sets, three proxy_set_header sets), response
 *       heads and request targets through this build and the other; prints the
 *       first differences and exits 1 if there is any. A change that means to
 *       keep behaviour must print none.
 *   node dist/bench/heads.js count [--before /other/tree/dist]
 *       user-space instructions per request of the four functions alone, on
 *       the bench's heads (wrk's GET, nginx's 98-byte answer), counted by
 *       valgrind as the difference of two runs (10,000 and 30,000 requests
 *       after 30,000 of warm-up), with V8's hash and random seeds fixed: then
 *       a count repeats, where the whole proxy's count (bench/instructions.ts)
 *       moves by a thousand or more.
 *
 * Builds are loaded by path (`dist/src/proxy/http/*.js`). Not a test.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SELF = fileURLToPath(import.meta.url);
/** This build's dist directory (this file is dist/bench/heads.js). */
const DIST = fileURLToPath(new URL('..', import.meta.url));

// Loaded by path from either build: typed loosely on purpose (two builds may differ in their types).
// biome-ignore lint/suspicious/noExplicitAny: modules of another build
type Module = any;
interface Build {
  request: Module;
  parser: Module;
  headers: Module;
  uri: Module;
}

async function load(dist: string): Promise<Build> {
  const at = (m: string) => import(`${dist.replace(/\/$/, '')}/src/proxy/http/${m}.js`);
  return {
    request: await at('request'),
    parser: await at('parser'),
    headers: await at('headers'),
    uri: await at('uri'),
  };
}

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

// ---- diff ------------------------------------------------------------------

let seed = 12345;
/** A number in [0, k): mulberry32, the same sequence every run. */
function rnd(k: number): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) % k;
}
const pick = <T>(list: readonly T[]): T => list[rnd(list.length)]!;

const PIECES = [
  'GET',
  'POST',
  'HEAD',
  'PUT',
  'G@T',
  'get',
  'PATCH',
  'OPTIONS',
  'DELETE',
  ' ',
  '  ',
  '/',
  '/a',
  '/a/../b',
  '//x',
  '/%41',
  '/?q=1',
  '/a?b#c',
  '#',
  '?',
  'http://h/x',
  'HTTP/1.1',
  'HTTP/1.0',
  'HTTP/2.0',
  'HTTP/0.9',
  'HTTP/1.12',
  'HTTP/1.',
  '\r\n',
  '\n',
  '\r',
  '\0',
  '\x7f',
  '\t',
  'Host: a',
  'Host:  b.c:80 ',
  'host:a..b',
  'Host: ',
  'Content-Length: 5',
  'content-length: 05',
  'Transfer-Encoding: chunked',
  'Connection: close, x-foo',
  'Connection: keep-alive',
  'X-Forwarded-For: 1.2.3.4',
  'Expect: 100-continue',
  'Upgrade: websocket',
  'Connection: upgrade',
  'Proxy-Foo: y',
  'X_Y: z',
  'A B: c',
  ':x',
  'a:',
  'Foo : bar',
  ' folded',
  'TE: x',
  'X-Forwarded-Host: q',
  'Keep-Alive: timeout=5',
  'x-forwarded-proto: https',
  'é',
  ':',
  'ab',
  'Trailer: x',
  '[::1]',
  '.',
];
const HEADER_PIECES = PIECES.slice(33, 60);
/** The header lines of `valid()`: `structured()`'s, and ones a parser must tell apart from them. */
const VALID_HEADERS = [
  ...HEADER_PIECES,
  'HOST: x.y',
  'Content-Length: 5x',
  'transfer-encoding: gzip',
  'connection: Upgrade',
  'x-forwarded-for:5.6.7.8',
  'X.Y: z',
  'Accept: */*',
  'User-Agent: curl/8',
  'Cookie: a=b; c=d',
  'X: \t v \t',
  'Y:\x01',
  'é: 1',
  'Z: é',
];

function gen(): string {
  let s = '';
  for (let i = 1 + rnd(12); i > 0; i--) s += pick(PIECES);
  return s;
}

function structured(): string {
  const method = pick([
    'GET',
    'GET',
    'POST',
    'HEAD',
    'PUT',
    'G_T',
    'A-B',
    'get',
    '',
    'DELETE',
    'OPTIONS',
    'PATCH',
    'GETX',
    'POS',
  ]);
  const target =
    rnd(4) === 0
      ? pick([
          '/',
          '/a/b?c',
          '//a',
          '/a/./b',
          '/%2e%2e/x',
          'http://Host:8/p?q',
          'https://[::1]/',
          '*',
          '/a b',
          '/a\tb',
          '',
        ])
      : `/${gen().replace(/[\r\n ]/g, '')}`;
  const version = pick([
    'HTTP/1.1',
    'HTTP/1.1',
    'HTTP/1.1',
    'HTTP/1.0',
    'HTTP/1.9',
    'HTTP/2.0',
    'HTTP/1.1 ',
    'HTTP/1',
    'http/1.1',
    'HTTP/1.x',
  ]);
  let s = `${method}${pick([' ', ' ', ' ', ' ', '  '])}${target}${pick([' ', ' ', ' ', '  '])}${version}\r\n`;
  if (rnd(3)) s += `Host: ${pick(['a', 'b.c:80', 'a..b', '', '127.0.0.1:8080', '[::1]:3'])}\r\n`;
  for (let i = rnd(6); i > 0; i--)
    s += (rnd(6) === 0 ? gen() : pick(HEADER_PIECES)) + (rnd(8) === 0 ? '\n' : '\r\n');
  return s;
}

function valid(): string {
  const method = pick([
    'GET',
    'POST',
    'HEAD',
    'PUT',
    'DELETE',
    'OPTIONS',
    'PATCH',
    'PROPFIND',
    'M-SEARCH',
    'GE',
    'GETS',
    'PUTS',
    'HEADS',
    'PAT',
  ]);
  const target = pick([
    '/',
    '/a/b?c',
    '//a',
    '/a/./b',
    '/%2e%2e/x',
    '/%2',
    'http://Host:8/p?q',
    'HTTPS://[::1]/',
    'http://a',
    'http://a?x',
    '/x?a//b',
    '/a#b',
    '/.',
    '/..',
    '/a/..',
    '/a%3fb?c',
  ]);
  let s = `${method} ${target} HTTP/1.${rnd(3)}\r\n`;
  for (let i = rnd(8); i > 0; i--) s += pick(VALID_HEADERS) + (rnd(20) === 0 ? '\n' : '\r\n');
  return s;
}

const SET_HEADERS = [
  [],
  [{ name: 'Host', value: '$host' }],
  [
    { name: 'X-Forwarded-For', value: '' },
    { name: 'Foo', value: '$http_host' },
  ],
];

/** One request head through `b`: the request's fields, its raw headers and two upstream heads, or the error. */
function request(b: Build, buf: Buffer, end: number, i: number): string {
  const d = b.request.DEFAULT_HEAD_RULES;
  const rules = [
    d,
    { ...d, underscores: true },
    { ...d, ignoreInvalid: false },
    { ...d, lineMax: 24 },
    { ...d, headMax: 60, maxHeaders: 2 },
  ];
  try {
    const r = b.request.parseRequestHead(buf, 0, end, rules[i % 5]);
    const ctx = {
      method: r.method,
      url: r.url,
      head: r,
      remoteAddr: '1.2.3.4',
      remotePort: 1,
      serverPort: 80,
      scheme: 'http',
      host: r.host ?? '',
      proxyHost: 'up',
    };
    const up =
      b.headers.upstreamRequestHead(ctx, {
        version: ['1.1', '1.0'][i % 2],
        reuse: i % 5 !== 0,
        setHeaders: SET_HEADERS[i % 3],
        bodyLength: ['none', 0, 'chunked', 7][i % 4],
      }) +
      '|' +
      b.headers.upstreamRequestHead(ctx, { version: '1.1', reuse: true, setHeaders: [], bodyLength: 'none' });
    const { text: _text, ...rest } = r;
    return JSON.stringify({ rest, raw: r.rawHeaders, up });
  } catch (e) {
    const err = e as { status?: number; code?: string; message: string };
    return `E ${err.status} ${err.code} ${err.message}`;
  }
}

/**
 * The head a client gets up to its framing lines, in either build: the status
 * line and the kept lines as bytes (`clientResponseHead`, since 7d2e41f),
 * or the status line joined to the kept lines' text (`clientResponseText`).
 */
function clientHead(b: Build, h: Module, dropLength: boolean): string {
  const message = h.statusMessage === '' ? 'Fine' : h.statusMessage;
  if (typeof b.headers.clientResponseHead === 'function')
    return b.headers.clientResponseHead(h, dropLength, message).toString('latin1');
  return `HTTP/1.1 ${h.statusCode} ${message}\r\n${b.headers.clientResponseText(h, dropLength)}`;
}

/** A head's marks from its status line's start (a bytes head marks positions in its read, a text head in its text). */
function marksOf(h: Module): number[] {
  const from: number = typeof h.lineStart === 'number' ? h.lineStart : 0;
  return h.marks.map((m: number, k: number) => (k % 4 === 3 ? m : m - from));
}

/** One response through `b`'s parser: every event with what its users read, or the error. */
function response(b: Build, text: string, i: number): string {
  const out: unknown[] = [];
  const p = new b.parser.ResponseParser({
    onInformational(h: Module) {
      out.push(['i', h.statusCode, h.statusMessage]);
    },
    onHead(h: Module) {
      out.push([
        'h',
        h.statusCode,
        h.statusMessage,
        h.minorVersion,
        h.framing,
        h.contentLength,
        h.close,
        h.keepAliveHintMs,
        h.upgrade,
        h.connectionNames,
        h.rawHeaders,
        marksOf(h),
        clientHead(b, h, i % 2 === 0),
      ]);
    },
    onBody(c: Buffer) {
      out.push(['b', c.length]);
    },
    onComplete(t: unknown, rest: Buffer | undefined) {
      out.push(['c', t, rest?.length]);
    },
  });
  p.expect(i % 7 === 0 ? 'HEAD' : 'GET');
  try {
    p.execute(Buffer.from(text, 'latin1'));
  } catch (e) {
    out.push(`E ${(e as Error).message}`);
  }
  return JSON.stringify(out);
}

const STATUS_LINES = [
  'HTTP/1.1 200 OK',
  'HTTP/1.1 200 Ok',
  'HTTP/1.0 404 Not Found',
  'HTTP/1.1 204 No Content',
  'HTTP/1.1 200',
  'HTTP/1.1 200 ',
  'HTTP/1.1 301 Moved Permanently',
  'HTTP/1.2 200 OK',
  'HTTP/1.1 20 OK',
  'HTTP/1.1 100 Continue',
  'HTTP/1.1 101 Switching',
  'HTTP/1.1 200 OK\r',
  'HTTP/1.1 200 O\nK',
  'HTTP/1.1 500 Internal Server Error',
  'HTTP/1.1 503 Service Unavailable!',
  'xHTTP/1.1 200 OK',
];
const RESPONSE_HEADERS = [
  'Server: nginx',
  'Date: x',
  'Content-Length: 3',
  'content-length: 3',
  'Content-Length: 4',
  'Connection: keep-alive',
  'Connection: close',
  'Connection: x-a, close',
  'X-A: 1',
  'Transfer-Encoding: chunked',
  'Keep-Alive: timeout=7',
  'Proxy-X: 1',
  'TE: t',
  'Foo : bar',
  ' fold',
  'noc',
  'A: b\r',
  'A: \0',
  'Upgrade: h2c',
  'Trailer: q',
  'A:\rb',
  'A:\nb',
  ':x',
];
const TARGET_PIECES = [
  '/',
  'a',
  '%',
  '%2',
  '%41',
  '?',
  '#',
  '.',
  '..',
  '/',
  '//',
  ' ',
  '\t',
  '\x7f',
  '\x01',
  'é',
  'http://',
  'https://',
  'h',
  ':8',
  '[::1]',
  'x',
];

async function diff(before: string): Promise<void> {
  const now = await load(DIST);
  const old = await load(before);
  const count = Number(option('count') ?? 300_000);
  const differences = { request: 0, response: 0, target: 0 };
  const show = (kind: keyof typeof differences, input: string, a: string, b: string) => {
    if (differences[kind]++ < 10)
      console.log(`${kind} differs: ${JSON.stringify(input)}\n  this build:  ${a}\n  the other:   ${b}`);
  };
  for (let i = 0; i < count; i++) {
    let s = rnd(4) === 0 ? `${gen()}\r\n` : rnd(2) ? structured() : valid();
    s += rnd(5) === 0 ? '\n' : '\r\n';
    if (rnd(10) === 0) s = `\r\n${s}`;
    const buf = Buffer.from(s + (rnd(4) === 0 ? 'GET / HTTP/1.1\r\n\r\n' : ''), 'latin1');
    const found = buf.indexOf('\r\n\r\n');
    const end = found < 0 ? buf.length : found + 4;
    const a = request(now, buf, end, i);
    const b = request(old, buf, end, i);
    if (a !== b) show('request', s, a, b);
  }
  for (let i = 0; i < (count * 2) / 3; i++) {
    let s = `${pick(STATUS_LINES)}\r\n`;
    for (let k = rnd(7); k > 0; k--) s += `${rnd(6) === 0 ? gen() : pick(RESPONSE_HEADERS)}\r\n`;
    s += `\r\n${pick(['abc', 'abcdef', '3\r\nabc\r\n0\r\n\r\n', ''])}`;
    const a = response(now, s, i);
    const b = response(old, s, i);
    if (a !== b) show('response', s, a, b);
  }
  for (let i = 0; i < (count * 2) / 3; i++) {
    let s = rnd(3) ? '/' : '';
    for (let k = rnd(10); k > 0; k--) s += pick(TARGET_PIECES);
    const f = (b: Build) => {
      try {
        return JSON.stringify(b.uri.parseTarget(s, i % 2 === 0));
      } catch (e) {
        return `E ${(e as Error).message}`;
      }
    };
    const a = f(now);
    const b = f(old);
    if (a !== b) show('target', s, a, b);
  }
  console.log(
    `${count} request heads, ${Math.floor((count * 2) / 3)} responses and targets; differences: ${JSON.stringify(differences)}`,
  );
  if (differences.request + differences.response + differences.target > 0) process.exitCode = 1;
}

// ---- count -----------------------------------------------------------------

/** Child mode: `n` bench-shaped requests through the four functions of `dist` (after 30,000 of warm-up). */
async function countChild(dist: string, n: number): Promise<void> {
  const b = await load(dist);
  const requests: Buffer[] = [];
  const responses: Buffer[] = [];
  for (let c = 0; c < 16; c++) {
    requests.push(Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1:41234\r\n\r\n', 'latin1'));
    responses.push(
      Buffer.from(
        `HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Tue, 01 Dec 2026 01:10:06 GMT\r\nContent-Type: text/plain\r\nContent-Length: 98\r\nConnection: keep-alive\r\n\r\n${'x'.repeat(97)}\n`,
        'latin1',
      ),
    );
  }
  let sink = 0;
  const parsers = responses.map(
    () =>
      new b.parser.ResponseParser({
        onInformational() {},
        onHead(h: Module) {
          sink += clientHead(b, h, false).length;
        },
        onBody(c: Buffer) {
          sink += c.length;
        },
        onComplete() {},
      }),
  );
  const out = Buffer.allocUnsafe(4096);
  const one = (i: number) => {
    const c = i & 15;
    const buf = requests[c]!;
    const req = b.request.parseRequestHead(buf, 0, b.request.findHeadEnd(buf, 0));
    const ctx = {
      method: req.method,
      url: req.url,
      head: req,
      remoteAddr: '127.0.0.1',
      remotePort: 5000 + c,
      serverPort: 8080,
      scheme: 'http',
      host: req.host ?? '',
      proxyHost: 'app',
    };
    // Written as the proxy writes it (a latin1 write flattens the string).
    sink += out.write(
      b.headers.upstreamRequestHead(ctx, { version: '1.1', reuse: true, setHeaders: [], bodyLength: 'none' }),
      0,
      'latin1',
    );
    parsers[c].expect(req.method);
    parsers[c].execute(responses[c]);
  };
  for (let i = 0; i < 30_000; i++) one(i);
  for (let i = 0; i < n; i++) one(i);
  if (sink === 0) throw new Error('bench/heads: nothing was parsed');
}

function instructions(dist: string, n: number): number {
  const r = spawnSync(
    'valgrind',
    [
      '--tool=cachegrind',
      '--cache-sim=no',
      '--cachegrind-out-file=/dev/null',
      process.execPath,
      '--single-threaded',
      // Fixed seeds: V8's hash and random seeds otherwise move a count by up to ±900 between runs; with them it repeats.
      '--hash-seed=1',
      '--random-seed=1',
      SELF,
      'count-child',
      dist,
      String(n),
    ],
    { encoding: 'utf8' },
  );
  const m = /I\s+refs:\s+([\d,]+)/.exec(r.stderr);
  if (!m) throw new Error(`bench/heads: no count from valgrind for ${dist}:\n${r.stderr.slice(-800)}`);
  return Number(m[1]!.replace(/,/g, ''));
}

function count(): void {
  const builds = [DIST, option('before')].filter((d): d is string => d !== undefined);
  for (const dist of builds) {
    const per = (instructions(dist, 30_000) - instructions(dist, 10_000)) / 20_000;
    console.log(`${dist}: ${Math.round(per)} instructions per request in the four head functions`);
  }
}

const mode = process.argv[2];
if (mode === 'count-child') await countChild(process.argv[3]!, Number(process.argv[4]));
else if (mode === 'count') count();
else if (mode === 'diff') {
  const before = option('before');
  if (before === undefined) {
    process.stderr.write('bench/heads: diff needs --before /other/tree/dist\n');
    process.exit(2);
  }
  await diff(before);
} else {
  process.stderr.write(
    'usage: node dist/bench/heads.js diff --before DIST [--count N] | count [--before DIST]\n',
  );
  process.exit(2);
}
