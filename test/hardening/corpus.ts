/**
 * The framing-differential corpus (issue #22): raw requests sent through
 * keepwire and through nginx 1.22 with the same server block
 * (support.ts `serverBlock`: `location /` proxies to a recording backend
 * that refuses upgrades with 400, `location /admin { return 403; }`,
 * `location /healthz { return 200 "ok\n"; }`).
 *
 * For each case: what nginx 1.22.1 does (observed, and asserted so a
 * changed peer shows up), and what keepwire does once the #22 defects are
 * fixed. `forwarded` lists what reached the backend, one entry per request
 * it framed: `METHOD target`, ` +N` for an N-byte body, ` [_]` when a
 * header name with an underscore reached it. The keepwire column is the
 * behaviour decided in #22 (the Upgrade fixes of wt-upgrade and the framing
 * decisions of wt-reqpath, docs/http-framing.md); it was checked against a
 * merge of both. Whatever the column says, the differential invariant holds
 * on its own: nothing nginx did not forward (unless `lenient` says why it
 * is safe), nothing past /admin.
 */

export interface Outcome {
  /** Status of every response, in order. */
  statuses: number[];
  /** What the backend framed, in order. */
  forwarded: string[];
}

export interface FramingCase {
  name: string;
  raw: string | Buffer;
  nginx: Outcome;
  /** keepwire after the #22 fixes (a list when more than one answer is acceptable). */
  keepwire: Outcome | Outcome[];
  /** Why keepwire may differ from nginx (it may only ever be stricter). */
  differs?: string;
  /** The #22 defect (and the helper) whose fix this case depends on. */
  fixedBy?: string;
  /**
   * Why keepwire may forward what nginx refuses (RFC-correct and reframed by
   * keepwire, so the backend cannot frame it differently). Without it, any
   * such request fails the differential.
   */
  lenient?: string;
  /** The proxy must close the connection after the client's FIN (bounded), not hold it. */
  mustClose?: boolean;
}

const H = 'Host: x\r\n';
const UPGRADE = 'Connection: Upgrade\r\nUpgrade: websocket\r\n';
const ADMIN = `GET /admin HTTP/1.1\r\n${H}\r\n`;

function get(target: string, extra = '', version = 'HTTP/1.1'): string {
  return `GET ${target} ${version}\r\n${H}${extra}\r\n`;
}

function post(headers: string, body: string, target = '/'): string {
  return `POST ${target} HTTP/1.1\r\n${H}${headers}\r\n${body}`;
}

/** A chunked body carrying `payload` in one chunk. */
function chunked(payload: string): string {
  return `${payload.length.toString(16)}\r\n${payload}\r\n0\r\n\r\n`;
}

const refused = (status = 400): Outcome => ({ statuses: [status], forwarded: [] });
const ok = (...forwarded: string[]): Outcome => ({ statuses: forwarded.map(() => 200), forwarded });
/** keepwire answers 400 itself and forwards nothing, where nginx accepts. */
const STRICTER = refused(400);

function manyHeaders(n: number, width = 0): string {
  let out = '';
  for (let i = 0; i < n; i++) out += `X-H${i}: ${'v'.repeat(Math.max(1, width))}\r\n`;
  return out;
}

export const CASES: FramingCase[] = [
  // ---- baseline ------------------------------------------------------------------
  { name: 'plain GET', raw: get('/'), nginx: ok('GET /'), keepwire: ok('GET /') },
  {
    name: 'POST with Content-Length',
    raw: post('Content-Length: 5\r\n', 'hello'),
    nginx: ok('POST / +5'),
    keepwire: ok('POST / +5'),
  },
  {
    name: 'POST chunked',
    raw: post('Transfer-Encoding: chunked\r\n', chunked('hello')),
    nginx: ok('POST / +5'),
    keepwire: ok('POST / +5'),
  },
  { name: 'GET /admin is refused', raw: get('/admin'), nginx: refused(403), keepwire: refused(403) },

  // ---- CL.TE / TE.CL ---------------------------------------------------------------
  {
    name: 'CL.TE: Content-Length then Transfer-Encoding chunked, body smuggles GET /admin',
    raw: post('Content-Length: 6\r\nTransfer-Encoding: chunked\r\n', `0\r\n\r\n${ADMIN}`),
    nginx: refused(400),
    keepwire: refused(400),
  },
  {
    name: 'TE.CL: Transfer-Encoding chunked then Content-Length',
    raw: post(
      'Transfer-Encoding: chunked\r\nContent-Length: 4\r\n',
      `${ADMIN.length.toString(16)}\r\n${ADMIN}\r\n0\r\n\r\n`,
    ),
    nginx: refused(400),
    keepwire: refused(400),
  },

  // ---- Transfer-Encoding obfuscations -------------------------------------------------
  {
    name: 'Transfer-Encoding: xchunked with Content-Length',
    raw: post('Transfer-Encoding: xchunked\r\nContent-Length: 5\r\n', 'hello'),
    nginx: refused(501),
    keepwire: refused(400),
    differs:
      'status only: keepwire refuses both headers together with 400 (RFC 9112 §6.1), nginx answers the unknown coding with 501; neither forwards',
  },
  {
    name: 'Transfer-Encoding: xchunked alone',
    raw: post('Transfer-Encoding: xchunked\r\n', chunked('hello')),
    nginx: refused(501),
    keepwire: refused(400),
    differs:
      'status only: keepwire answers a coding it does not implement with 400, nginx with 501; neither forwards',
  },
  {
    name: 'Transfer-Encoding: " chunked" (space before the value)',
    raw: post('Transfer-Encoding:  chunked\r\n', chunked('hello')),
    nginx: ok('POST / +5'),
    keepwire: ok('POST / +5'),
  },
  {
    name: 'Transfer-Encoding header line starting with a space (obs-fold of TE)',
    raw: post('X-A: a\r\n Transfer-Encoding: chunked\r\n', chunked('hello')),
    nginx: refused(400),
    keepwire: refused(400),
  },
  {
    name: 'Transfer-Encoding: chunked, identity',
    raw: post('Transfer-Encoding: chunked, identity\r\n', chunked('hello')),
    nginx: refused(501),
    keepwire: refused(400),
    differs: 'status only: 400 for a coding list other than `chunked` (nginx 501); neither forwards',
  },
  {
    name: 'Transfer-Encoding: identity, chunked',
    raw: post('Transfer-Encoding: identity, chunked\r\n', chunked('hello')),
    nginx: refused(501),
    keepwire: refused(400),
    differs: 'status only: 400 (nginx 501); neither forwards',
  },
  {
    name: 'Transfer-Encoding with a tab before the value',
    raw: post('Transfer-Encoding:\tchunked\r\n', chunked('hello')),
    nginx: refused(501),
    keepwire: ok('POST / +5'),
    lenient:
      'HTAB is optional whitespace around a field value (RFC 9110 §5.5); nginx 1.22 skips only spaces and sees the coding "\\tchunked". keepwire decodes the chunked body and frames what it sends itself, so the backend cannot read it differently',
  },
  {
    name: 'Transfer-Encoding: chunked followed by a vertical tab',
    raw: post('Transfer-Encoding: chunked\x0b\r\n', chunked('hello')),
    nginx: refused(501),
    keepwire: refused(400),
    differs: 'status only: the coding `chunked\\x0b` is not chunked: 400 (nginx 501); neither forwards',
  },
  {
    name: 'Transfer-Encoding: CHUNKED (case)',
    raw: post('Transfer-Encoding: CHUNKED\r\n', chunked('hello')),
    nginx: ok('POST / +5'),
    keepwire: ok('POST / +5'),
  },
  {
    name: 'duplicate Transfer-Encoding: chunked',
    raw: post('Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n', chunked('hello')),
    nginx: refused(400),
    keepwire: refused(400),
  },
  {
    name: 'Transfer-Encoding with a space before the colon',
    raw: post('Transfer-Encoding : chunked\r\n', chunked('hello')),
    nginx: refused(400),
    keepwire: refused(400),
  },
  {
    name: 'Transfer_Encoding (underscore) with Content-Length',
    raw: post('Transfer_Encoding: chunked\r\nContent-Length: 5\r\n', 'hello'),
    nginx: ok('POST / +5'),
    keepwire: ok('POST / +5'),
    fixedBy: '#22 defect 7 (reqpath): underscores_in_headers off',
  },
  {
    name: 'chunked on an HTTP/1.0 request',
    raw: `POST / HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\n\r\n${chunked('hello')}`,
    nginx: refused(400),
    keepwire: refused(400),
    fixedBy: '#22 defect 7 (reqpath)',
  },

  // ---- Content-Length -------------------------------------------------------------------
  {
    name: 'duplicate Content-Length, same value',
    raw: post('Content-Length: 5\r\nContent-Length: 5\r\n', 'hello'),
    nginx: refused(400),
    keepwire: refused(400),
  },
  {
    name: 'conflicting Content-Length',
    raw: post('Content-Length: 5\r\nContent-Length: 40\r\n', `hello${ADMIN}`),
    nginx: refused(400),
    keepwire: refused(400),
  },
  {
    name: 'Content-Length: 5, 5 (list)',
    raw: post('Content-Length: 5, 5\r\n', 'hello'),
    nginx: refused(400),
    keepwire: refused(400),
  },
  {
    name: 'Content-Length: +5',
    raw: post('Content-Length: +5\r\n', 'hello'),
    nginx: refused(400),
    keepwire: refused(400),
  },
  {
    name: 'Content-Length: -1',
    raw: post('Content-Length: -1\r\n', ''),
    nginx: refused(400),
    keepwire: refused(400),
  },
  {
    name: 'Content-Length of 16 digits (0000000000000005)',
    raw: post('Content-Length: 0000000000000005\r\n', 'hello'),
    nginx: ok('POST / +5'),
    keepwire: ok('POST / +5'),
    fixedBy: '#22 defect 7 (reqpath)',
  },
  {
    name: 'Content-Length over client_max_body_size',
    raw: post('Content-Length: 99999999\r\n', 'hello'),
    nginx: refused(413),
    keepwire: refused(413),
  },
  {
    name: 'body carrying GET /admin by Content-Length stays a body',
    raw: post(`Content-Length: ${ADMIN.length}\r\n`, ADMIN),
    nginx: ok(`POST / +${ADMIN.length}`),
    keepwire: ok(`POST / +${ADMIN.length}`),
  },

  // ---- chunked framing ---------------------------------------------------------------------
  {
    name: 'chunk size with an extension',
    raw: post('Transfer-Encoding: chunked\r\n', '5;x=y\r\nhello\r\n0\r\n\r\n'),
    nginx: ok('POST / +5'),
    keepwire: ok('POST / +5'),
  },
  {
    name: 'chunk size of 13 hex digits',
    raw: post('Transfer-Encoding: chunked\r\n', '0000000000005\r\nhello\r\n0\r\n\r\n'),
    nginx: ok('POST / +5'),
    keepwire: ok('POST / +5'),
    fixedBy: '#22 defect 7 (reqpath)',
  },
  {
    name: 'whitespace after a chunk size',
    raw: post('Transfer-Encoding: chunked\r\n', '5 \r\nhello\r\n0\r\n\r\n'),
    nginx: ok('POST / +5'),
    keepwire: ok('POST / +5'),
    fixedBy: '#22 defect 7 (reqpath)',
  },
  {
    name: 'chunk data not followed by CRLF',
    raw: post('Transfer-Encoding: chunked\r\n', '5\r\nhelloXX0\r\n\r\n'),
    nginx: refused(400),
    keepwire: refused(400),
  },
  {
    name: 'bare LF in chunked framing',
    raw: post('Transfer-Encoding: chunked\r\n', '5\nhello\n0\n\n'),
    nginx: ok('POST / +5'),
    keepwire: STRICTER,
    differs:
      'keepwire stricter: a chunk line must end in CRLF (RFC 9112 §7.1); the bare-LF leniency of §2.2 is for the head only, and chunk framing is where two parsers disagreeing smuggles a request',
    fixedBy: '#22 defect 7 (reqpath)',
  },
  {
    name: 'chunk size overflowing 64 bits',
    raw: post('Transfer-Encoding: chunked\r\n', 'ffffffffffffffff1\r\nhello\r\n0\r\n\r\n'),
    nginx: refused(400),
    keepwire: refused(400),
  },

  // ---- line endings, folding, control characters ----------------------------------------------
  {
    name: 'bare LF line endings in the head',
    raw: `GET / HTTP/1.1\n${H.replace('\r\n', '\n')}\n`,
    nginx: ok('GET /'),
    keepwire: ok('GET /'),
    fixedBy: '#22 defect 7 (reqpath)',
  },
  {
    name: 'bare CR inside a header value',
    raw: get('/', 'X-A: a\rb\r\n'),
    nginx: refused(400),
    keepwire: refused(400),
  },
  {
    name: 'two leading blank lines',
    raw: `\r\n\r\n${get('/')}`,
    nginx: ok('GET /'),
    keepwire: ok('GET /'),
    fixedBy: '#22 defect 7 (reqpath)',
  },
  {
    name: 'obs-fold continuation line',
    raw: get('/', 'X-A: a\r\n b\r\n'),
    nginx: refused(400),
    keepwire: refused(400),
  },
  {
    name: 'NUL in a header value',
    raw: get('/', 'X-A: a\0b\r\n'),
    nginx: refused(400),
    keepwire: refused(400),
  },
  {
    name: 'control character (0x01) in a header value',
    raw: get('/', 'X-A: a\x01b\r\n'),
    nginx: ok('GET /'),
    keepwire: ok('GET /'),
    fixedBy: '#22 defect 7 (reqpath)',
  },
  {
    name: 'DEL in a header value',
    raw: get('/', 'X-A: a\x7fb\r\n'),
    nginx: ok('GET /'),
    keepwire: STRICTER,
    differs: 'keepwire stricter: DEL is neither VCHAR nor obs-text (RFC 9110 §5.5), nginx 1.22 passes it',
  },
  {
    name: 'NUL in the request line',
    raw: `GET /\0 HTTP/1.1\r\n${H}\r\n`,
    nginx: refused(400),
    keepwire: refused(400),
  },

  // ---- request line ---------------------------------------------------------------------------
  {
    name: 'HTTP/1.2',
    raw: get('/', '', 'HTTP/1.2'),
    nginx: ok('GET /'),
    keepwire: ok('GET /'),
    fixedBy: '#22 defect 7 (reqpath)',
  },
  {
    name: 'HTTP/1.1 without Host',
    raw: 'GET / HTTP/1.1\r\n\r\n',
    nginx: refused(400),
    keepwire: refused(400),
  },
  {
    name: 'two Host headers',
    raw: get('/', 'Host: y\r\n'),
    nginx: refused(400),
    keepwire: refused(400),
  },
  {
    name: 'Expect: 200-ok',
    raw: get('/', 'Expect: 200-ok\r\n'),
    nginx: ok('GET /'),
    keepwire: ok('GET /'),
    fixedBy: '#22 defect 7 (reqpath)',
  },

  // ---- absolute-form ---------------------------------------------------------------------------
  {
    name: 'absolute-form target',
    raw: `GET http://x/path HTTP/1.1\r\n${H}\r\n`,
    nginx: ok('GET /path'),
    keepwire: ok('GET /path'),
    fixedBy: '#22 defect 6 (reqpath)',
  },
  {
    name: 'absolute-form target to /admin',
    raw: `GET http://x/admin HTTP/1.1\r\n${H}\r\n`,
    nginx: refused(403),
    keepwire: refused(403),
    fixedBy: '#22 defect 6 (reqpath)',
  },

  // ---- pipelining -------------------------------------------------------------------------------
  {
    name: 'two pipelined GETs',
    raw: get('/a') + get('/b'),
    nginx: ok('GET /a', 'GET /b'),
    keepwire: ok('GET /a', 'GET /b'),
  },
  {
    name: 'POST then GET /admin pipelined',
    raw: post('Content-Length: 5\r\n', 'hello') + ADMIN,
    nginx: { statuses: [200, 403], forwarded: ['POST / +5'] },
    keepwire: { statuses: [200, 403], forwarded: ['POST / +5'] },
  },

  {
    name: 'GET with Content-Length: 0, then GET /admin pipelined',
    raw: get('/', 'Content-Length: 0\r\n') + ADMIN,
    nginx: { statuses: [200, 403], forwarded: ['GET /'] },
    keepwire: { statuses: [200, 403], forwarded: ['GET /'] },
  },
  {
    name: 'chunked body whose trailer names Transfer-Encoding, then GET /admin',
    raw:
      post('Transfer-Encoding: chunked\r\n', '5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n') + ADMIN,
    nginx: { statuses: [200, 403], forwarded: ['POST / +5'] },
    keepwire: { statuses: [200, 403], forwarded: ['POST / +5'] },
  },
  {
    name: 'space inside the request target',
    raw: `GET /a b HTTP/1.1\r\n${H}\r\n`,
    nginx: refused(400),
    keepwire: refused(400),
  },
  {
    name: 'lower-case method',
    raw: `get / HTTP/1.1\r\n${H}\r\n`,
    nginx: refused(400),
    keepwire: refused(400),
  },
  {
    name: 'Content-Length with a tab after the value',
    raw: post('Content-Length: 5\t\r\n', 'hello'),
    nginx: refused(400),
    keepwire: ok('POST / +5'),
    lenient:
      'HTAB is optional whitespace after a field value (RFC 9110 §5.5); nginx 1.22 reads "5\\t" as an invalid length. keepwire sends its own Content-Length upstream, so the backend cannot read the body differently',
  },

  // ---- Upgrade ---------------------------------------------------------------------------------
  {
    name: 'Upgrade refused by the upstream',
    raw: get('/', UPGRADE),
    nginx: { statuses: [400], forwarded: ['GET /'] },
    keepwire: { statuses: [400], forwarded: ['GET /'] },
    mustClose: true,
    fixedBy: '#22 defect 1 (upgrade): a refused upgrade frees its connection',
  },
  {
    name: 'Upgrade with a Content-Length body carrying GET /admin',
    raw: get('/', `${UPGRADE}Content-Length: ${ADMIN.length}\r\n`) + ADMIN,
    nginx: { statuses: [400], forwarded: [`GET / +${ADMIN.length}`] },
    keepwire: { statuses: [400], forwarded: [`GET / +${ADMIN.length}`] },
    mustClose: true,
    fixedBy: '#22 defect 2 (upgrade)',
  },
  {
    name: 'Upgrade with a chunked body carrying GET /admin',
    raw: get('/', `${UPGRADE}Transfer-Encoding: chunked\r\n`) + chunked(ADMIN),
    nginx: { statuses: [400], forwarded: [`GET / +${ADMIN.length}`] },
    keepwire: { statuses: [400], forwarded: [`GET / +${ADMIN.length}`] },
    mustClose: true,
    fixedBy: '#22 defect 2 (upgrade)',
  },
  {
    name: 'GET /admin pipelined after an Upgrade request',
    raw: get('/', UPGRADE) + ADMIN,
    nginx: { statuses: [400, 403], forwarded: ['GET /'] },
    keepwire: { statuses: [400, 403], forwarded: ['GET /'] },
    mustClose: true,
    fixedBy: '#22 defect 2 (upgrade)',
  },
  {
    name: 'Upgrade with a body over client_max_body_size',
    raw: `${get('/', `${UPGRADE}Content-Length: 99999999\r\n`)}hello`,
    nginx: refused(413),
    keepwire: refused(413),
    fixedBy: '#22 defect 2 (upgrade)',
  },
  {
    name: 'Upgrade to a return location (/healthz)',
    raw: get('/healthz', UPGRADE),
    nginx: { statuses: [200], forwarded: [] },
    keepwire: { statuses: [200], forwarded: [] },
    mustClose: true,
    fixedBy: '#22 defect 1 (upgrade)',
  },
  {
    name: 'Upgrade to /admin, then GET / pipelined',
    raw: get('/admin', UPGRADE) + get('/'),
    nginx: { statuses: [403, 200], forwarded: ['GET /'] },
    keepwire: { statuses: [403, 200], forwarded: ['GET /'] },
    mustClose: true,
    fixedBy: '#22 defect 1 (upgrade)',
  },

  {
    name: 'h2c upgrade refused, GET /admin pipelined behind it',
    raw:
      get(
        '/',
        'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n',
      ) + ADMIN,
    nginx: { statuses: [400, 403], forwarded: ['GET /'] },
    keepwire: { statuses: [400, 403], forwarded: ['GET /'] },
    mustClose: true,
    fixedBy: '#22 defect 2 (upgrade)',
  },

  // ---- request path against location /admin ------------------------------------------------------
  { name: 'path /admin/', raw: get('/admin/'), nginx: refused(403), keepwire: refused(403) },
  { name: 'path /admin?x=1', raw: get('/admin?x=1'), nginx: refused(403), keepwire: refused(403) },
  {
    name: 'path /ADMIN (prefixes are case-sensitive)',
    raw: get('/ADMIN'),
    nginx: ok('GET /ADMIN'),
    keepwire: ok('GET /ADMIN'),
  },
  {
    name: 'path /%61dmin',
    raw: get('/%61dmin'),
    nginx: refused(403),
    keepwire: refused(403),
    fixedBy: '#22 defect 5 (reqpath)',
  },
  {
    name: 'path /ad%6Din',
    raw: get('/ad%6Din'),
    nginx: refused(403),
    keepwire: refused(403),
    fixedBy: '#22 defect 5 (reqpath)',
  },
  {
    name: 'path //admin',
    raw: get('//admin'),
    nginx: refused(403),
    keepwire: refused(403),
    fixedBy: '#22 defect 5 (reqpath)',
  },
  {
    name: 'path /x/../admin',
    raw: get('/x/../admin'),
    nginx: refused(403),
    keepwire: refused(403),
    fixedBy: '#22 defect 5 (reqpath)',
  },
  {
    name: 'path /./admin',
    raw: get('/./admin'),
    nginx: refused(403),
    keepwire: refused(403),
    fixedBy: '#22 defect 5 (reqpath)',
  },
  {
    name: 'path /x/%2e%2e/admin',
    raw: get('/x/%2e%2e/admin'),
    nginx: refused(403),
    keepwire: refused(403),
    fixedBy: '#22 defect 5 (reqpath)',
  },
  {
    name: 'path /%2fadmin',
    raw: get('/%2fadmin'),
    nginx: refused(403),
    keepwire: refused(403),
    fixedBy: '#22 defect 5 (reqpath)',
  },
  {
    name: 'path /../admin (above the root)',
    raw: get('/../admin'),
    nginx: refused(400),
    keepwire: refused(400),
    fixedBy: '#22 defect 5 (reqpath)',
  },
  {
    name: 'path /%2e%2e/admin (encoded, above the root)',
    raw: get('/%2e%2e/admin'),
    nginx: refused(400),
    keepwire: refused(400),
    fixedBy: '#22 defect 5 (reqpath)',
  },
  {
    name: 'path /admin%00 (encoded NUL)',
    raw: get('/admin%00'),
    nginx: refused(400),
    keepwire: refused(400),
    fixedBy: '#22 defect 5 (reqpath)',
  },
  {
    name: 'path /%00admin (encoded NUL)',
    raw: get('/%00admin'),
    nginx: refused(400),
    keepwire: refused(400),
    fixedBy: '#22 defect 5 (reqpath)',
  },
  {
    name: 'path /x/..%2fadmin',
    raw: get('/x/..%2fadmin'),
    nginx: refused(403),
    keepwire: refused(403),
    fixedBy: '#22 defect 5 (reqpath)',
  },

  // ---- header counts, sizes, names ------------------------------------------------------------------
  {
    name: '100 request headers',
    raw: get('/', manyHeaders(100)),
    nginx: ok('GET /'),
    keepwire: ok('GET /'),
  },
  {
    name: '1000 request headers',
    raw: get('/', manyHeaders(1000)),
    nginx: refused(400),
    keepwire: refused(400),
    fixedBy: '#22 defect 7 (reqpath)',
  },
  {
    name: '3000 request headers (over nginx 4x8k)',
    raw: get('/', manyHeaders(3000)),
    nginx: refused(400),
    keepwire: refused(400),
  },
  {
    name: 'one 9 KB header (over nginx 8k)',
    raw: get('/', `X-Big: ${'a'.repeat(9 * 1024)}\r\n`),
    nginx: refused(400),
    keepwire: refused(400),
    fixedBy: '#22 defect 7 (reqpath): nginx-like header size limits',
  },
  {
    name: 'underscore in a header name',
    raw: get('/', 'X_Admin: 1\r\n'),
    nginx: ok('GET /'),
    keepwire: ok('GET /'),
    fixedBy: '#22 defect 7 (reqpath): underscores_in_headers off',
  },
];
