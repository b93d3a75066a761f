/**
 * The client leg's HTTP/1.x request parser: request heads and request bodies
 * (Content-Length or chunked, with trailers), fed incrementally.
 *
 * Hand-written so a request costs one string slice and a few regex tests,
 * and so the framing rules are keepwire's own and strict where requests can
 * be smuggled (RFC 9112 §6.1, §6.3, §11.2): a request with both
 * Content-Length and Transfer-Encoding, more than one Content-Length, a
 * Content-Length that is not plain digits, a Transfer-Encoding other than
 * `chunked` or on HTTP/1.0, obsolete line folding, whitespace before a
 * colon, a bare CR, NUL or DEL in the head, an invalid chunk size, a chunk
 * line not ended by CRLF are all refused with 400 and the connection closed.
 * Where RFC 9112 lets a recipient be lenient and nginx and HAProxy are, so
 * is keepwire, as long as what it forwards is framed the same (it re-frames
 * every request): a bare LF ends a head line (§2.2), empty lines before the
 * request line are skipped (§2.2), `HTTP/1.2` is served as 1.1 (RFC 9110
 * §2.5), control characters other than NUL, CR, LF and DEL pass in header
 * values (RFC 9110 §5.5). Every decision, with the peers' answers, is in
 * docs/http-framing.md.
 */
import type { Buffer } from 'node:buffer';
import { latin1Slice } from '../../kernel/node-internals.js';
import { parseTarget, validHost, validHostIn } from './uri.js';

/** How a request head is read: nginx's per-server header settings (of the address's default server). */
export interface HeadRules {
  /** The longest request line or header line, its CRLF included (large_client_header_buffers size, or client_header_buffer_size if larger): 414 / 400. */
  readonly lineMax: number;
  /** The whole head (large_client_header_buffers number × size): 400. */
  readonly headMax: number;
  /** max_headers: more header lines is 400. */
  readonly maxHeaders: number;
  readonly mergeSlashes: boolean;
  /** underscores_in_headers: `_` is a valid header name character. */
  readonly underscores: boolean;
  /** ignore_invalid_headers: header lines whose names nginx calls invalid are dropped (not forwarded). */
  readonly ignoreInvalid: boolean;
}

/** nginx's defaults: large_client_header_buffers 4 8k, max_headers 1000, merge_slashes on, underscores_in_headers off, ignore_invalid_headers on. */
export const DEFAULT_HEAD_RULES: HeadRules = {
  lineMax: 8 * 1024,
  headMax: 32 * 1024,
  maxHeaders: 1000,
  mergeSlashes: true,
  underscores: false,
  ignoreInvalid: true,
};

/** The head limit under nginx's default large_client_header_buffers (4 8k). */
export const MAX_REQUEST_HEAD = DEFAULT_HEAD_RULES.headMax;
/** A chunk-size line with its extensions. */
const MAX_CHUNK_LINE = 1024;
const MAX_TRAILERS = 8 * 1024;

export class RequestError extends Error {
  override name = 'RequestError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The answer's body text when it is not the status text (nginx's "Request Header Or Cookie Too Large"). */
    readonly text?: string,
  ) {
    super(message);
  }
}

function headerTooLarge(message: string): RequestError {
  return new RequestError(400, 'HEADER_TOO_LARGE', message, 'Request Header Or Cookie Too Large');
}

/** How a request header travels upstream (`ClientRequest.marks`). */
export const REQ_PLAIN = 0;
/** Hop-by-hop (RFC 9110 §7.6.1): Connection, Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade, Proxy-*. */
export const REQ_HOP = 1;
/** Replaced by keepwire: Content-Length (framing is redone), Expect, X-Forwarded-Proto, X-Forwarded-Host. */
export const REQ_REPLACED = 2;
/** X-Forwarded-For: merged into the one keepwire sends. */
export const REQ_XFF = 3;
export const REQ_HOST = 4;

/** A request head's header lines, as received. */
export interface HeaderLines {
  /** The head without its final CRLF CRLF. */
  readonly text: string;
  /** Four numbers per header line: start, colon, end (before CRLF), REQ_* kind. */
  readonly marks: readonly number[];
  /** A Connection header names further headers (hop-by-hop as well). */
  readonly connectionNames: boolean;
  /** Flat name, value, name, value... as received (values trimmed). */
  readonly rawHeaders: readonly string[];
}

export class ClientRequest implements HeaderLines {
  method = '';
  /** The target in origin-form as received (an absolute-form target without its scheme and authority): forwarded upstream. */
  url = '';
  /** The normalised path (decoded, slashes merged, dot segments resolved): what locations match. */
  path = '';
  /** Bytes of the head in the buffer it was parsed from, leading empty lines included. */
  headBytes = 0;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minorVersion = 1;
  /** The Host: an absolute-form target's authority, else the Host header; undefined without either. */
  host: string | undefined;
  /** Declared Content-Length, -1 without one. */
  contentLength = -1;
  chunked = false;
  /** The client allows the connection to stay open after the response. */
  keepAlive = true;
  /** `Expect: 100-continue` (HTTP/1.1). */
  expectContinue = false;
  /** The Upgrade value when `Connection: upgrade` asks for one. */
  upgrade: string | undefined;
  connectionNames = false;

  constructor(
    readonly text: string,
    readonly marks: number[],
  ) {}

  private raw: string[] | undefined;

  get rawHeaders(): string[] {
    if (this.raw !== undefined) return this.raw;
    const out: string[] = [];
    const { text, marks } = this;
    for (let i = 0; i < marks.length; i += 4)
      out.push(text.slice(marks[i]!, marks[i + 1]!), value(text, marks[i + 1]!, marks[i + 2]!));
    this.raw = out;
    return out;
  }
}

export interface BodySink {
  onBodyData(chunk: Buffer): void;
  /** The body ended; trailers as flat name, value pairs. */
  onBodyEnd(trailers: string[]): void;
}

// In a whole head (line ends made CRLF): NUL, DEL, a CR that is not part of
// a CRLF. Other control characters are refused where they matter: in the
// request line (uri.ts, the method and version grammar) and in header names
// (tchar); in header values they pass (RFC 9110 §5.5), as nginx and HAProxy let them.
const BAD_HEAD_CHAR = /[\0\x7f]|\r(?!\n)/;
// A chunk line: control characters other than HTAB, a bare CR or LF.
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is its purpose
const BAD_LINE_CHAR = /[\0-\x08\x0a-\x1f\x7f]/;
/** A LF without a CR before it. */
const BARE_LF = /(?<!\r)\n/;
/** Either of the two above: almost every head has neither, and is scanned once. */
const HEAD_ODDITY = /[\0\x7f]|\r(?!\n)|(?<!\r)\n/;
/**
 * Header name characters by code: 1 for what nginx calls valid (letters,
 * digits, `-`), 2 for `_` (valid only with underscores_in_headers), 3 for
 * the other RFC 9110 tchar (valid tokens nginx calls invalid), 0 for the rest.
 */
const NAME_CHAR = new Uint8Array(128);
for (const c of "!#$%&'*+.^`|~") NAME_CHAR[c.charCodeAt(0)] = 3;
NAME_CHAR[0x5f] = 2;
for (const c of '-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz')
  NAME_CHAR[c.charCodeAt(0)] = 1;

/**
 * Whether `text` at `from` spells `lower` (lower-case letters and `-`)
 * in any case: the header name checks of every message make no string.
 */
export function nameIs(text: string, from: number, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    const l = lower.charCodeAt(i);
    const c = text.charCodeAt(from + i);
    // Only letters fold: `c | 0x20` would also turn CR into '-'.
    if (c !== l && (l < 0x61 || l > 0x7a || (c | 0x20) !== l)) return false;
  }
  return true;
}

/** Whether `text[from, to)` is all header-name characters (RFC 9110 tchar). */
export function isToken(text: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c > 127 || NAME_CHAR[c] === 0) return false;
  }
  return true;
}

/** 0: not a token (400); 1: a name nginx accepts; 2: a token nginx calls invalid (ignore_invalid_headers). */
function nameClass(text: string, from: number, to: number, underscores: boolean): 0 | 1 | 2 {
  let out: 0 | 1 | 2 = 1;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    const k = c > 127 ? 0 : NAME_CHAR[c]!;
    if (k === 0) return 0;
    if (k === 3 || (k === 2 && !underscores)) out = 2;
  }
  return out;
}
const METHOD = /^[A-Z_-]+$/;

/** A character METHOD accepts: `A`-`Z`, `_`, `-`. */
function isMethodChar(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || c === 0x5f || c === 0x2d;
}

/** Whether `text` at `from` is `word`, exactly. */
function spells(text: string, from: number, word: string): boolean {
  for (let i = 0; i < word.length; i++) if (text.charCodeAt(from + i) !== word.charCodeAt(i)) return false;
  return true;
}

/**
 * The method `text[0, end)`: the usual ones as the same constant strings
 * each time (compared by identity downstream, no string made per request).
 */
function methodOf(text: string, end: number): string {
  let known: string | undefined;
  switch (text.charCodeAt(0)) {
    case 0x47:
      known = 'GET';
      break;
    case 0x48:
      known = 'HEAD';
      break;
    case 0x50:
      known = end === 4 ? 'POST' : end === 3 ? 'PUT' : 'PATCH';
      break;
    case 0x44:
      known = 'DELETE';
      break;
    case 0x4f:
      known = 'OPTIONS';
      break;
  }
  return known !== undefined && known.length === end && spells(text, 0, known) ? known : text.slice(0, end);
}

/**
 * The last Host value that passed validHost in a head read without a
 * refusal: consecutive requests mostly carry the same Host, then it is this
 * string again (no substring, no second validation, no search for NUL, DEL,
 * CR or LF in it: a read head had none there, and compared by identity
 * downstream).
 */
let lastHost = '';

/** `text.indexOf(c, from)` within `[from, end)`, else -1. */
function lineIndexOf(text: string, c: string, from: number, end: number): number {
  const i = text.indexOf(c, from);
  return i < end ? i : -1;
}
const DIGITS = /^\d+$/;
// BWS before an extension or the line end is allowed (RFC 9112 §7.1.1); leading zeros are not digits of the size.
const CHUNK_SIZE = /^0*([0-9a-fA-F]{1,13})[ \t]*(?:;.*)?$/;

enum Body {
  None,
  Length,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
}

/** Finds the end of a request head in `buf` from `at`: the offset after CRLFCRLF, or -1. */
export function findHeadEnd(buf: Buffer, at: number): number {
  const end = indexOfCrlf2(buf, at);
  return end < 0 ? -1 : end + 4;
}

/**
 * `buf.indexOf(CRLFCRLF, from)` (`from` >= 0) in JavaScript: a head is a
 * few hundred bytes, and Buffer#indexOf's way into C++ and back costs more
 * than reading them. Horspool over the four bytes: the byte that ends a
 * window says how far the next window may start (4 past any byte other
 * than CR and LF).
 */
export function indexOfCrlf2(buf: Uint8Array, from: number): number {
  const n = buf.length;
  let i = from + 3;
  while (i < n) {
    const c = buf[i]!;
    if (c === 10) {
      if (buf[i - 1] === 13 && buf[i - 2] === 10 && buf[i - 3] === 13) return i - 3;
      i += 2;
    } else if (c === 13) i += 1;
    else i += 4;
  }
  return -1;
}

/**
 * Empty lines before a request line (RFC 9112 §2.2: a server SHOULD ignore
 * at least one; nginx skips any CR and LF there): how many bytes of them
 * `buf` starts with.
 */
export function leadingEmptyLines(buf: Buffer): number {
  let i = 0;
  while (i < buf.length && (buf[i] === 13 || buf[i] === 10)) i++;
  return i;
}

/**
 * For a head with no CRLFCRLF yet, `buf` starting at its request line and
 * `from` where unchecked bytes start: the end of a head whose empty line
 * ends in a bare LF (RFC 9112 §2.2), else -1. Throws for what can never
 * become a valid head: a line or the head over the limits.
 */
export function checkIncompleteHead(
  buf: Buffer,
  from: number,
  rules: HeadRules = DEFAULT_HEAD_RULES,
): number {
  let lineStart = from === 0 ? 0 : buf.lastIndexOf(10, from - 1) + 1;
  for (let i = buf.indexOf(10, from); i >= 0; i = buf.indexOf(10, i + 1)) {
    if (i > 0 && (buf[i - 1] === 10 || (buf[i - 1] === 13 && i > 1 && buf[i - 2] === 10))) return i + 1;
    checkLine(i + 1 - lineStart, lineStart === 0, rules);
    lineStart = i + 1;
  }
  checkLine(buf.length - lineStart, lineStart === 0, rules);
  if (buf.length > rules.headMax) throw headerTooLarge('request head too large');
  return -1;
}

/** nginx: a request line over the buffer is 414, a header line 400 "Request Header Or Cookie Too Large". */
function checkLine(bytes: number, requestLine: boolean, rules: HeadRules): void {
  if (bytes <= rules.lineMax) return;
  if (requestLine) throw new RequestError(414, 'URI_TOO_LONG', 'request line too long');
  throw headerTooLarge('header line too long');
}

/**
 * The head `buf[at, end)` with bare-LF line ends made CRLF, up to its first
 * empty line (which may come before `end`: a CRLFCRLF found later belongs
 * to a pipelined request); `bytes` is how much of `buf` it took.
 */
function lenientHead(buf: Buffer, at: number, end: number): { text: string; bytes: number } {
  const raw = buf.toString('latin1', at, end);
  const lines: string[] = [];
  let pos = 0;
  for (;;) {
    const lf = raw.indexOf('\n', pos);
    if (lf < 0) throw new RequestError(400, 'INVALID_HEADER', 'unterminated request head');
    const line = raw.charCodeAt(lf - 1) === 13 && lf > pos ? raw.slice(pos, lf - 1) : raw.slice(pos, lf);
    pos = lf + 1;
    if (line === '') return { text: lines.join('\r\n'), bytes: pos };
    lines.push(line);
  }
}

/**
 * Parses a complete request head, `buf[at, end)` with `end` just past the
 * empty line ending it (CRLFCRLF, or one ended by a bare LF).
 * `req.headBytes` says how much of `buf` from `at` the head took: less than
 * `end - at` when a bare-LF empty line ends it first.
 */
export function parseRequestHead(
  buf: Buffer,
  at: number,
  end: number,
  rules: HeadRules = DEFAULT_HEAD_RULES,
): ClientRequest {
  const start = at;
  while (at < end && (buf[at] === 13 || buf[at] === 10)) at++;
  const skipped = at - start;
  let headBytes = end - at;
  // The usual end, CRLFCRLF: the head is read without it (one flat string,
  // no slice of it). HEAD_ODDITY and BARE_LF find the same in it as in the
  // head with its CRLFCRLF: those four characters are never odd themselves,
  // and a CR before them is as bare at the end of the text as before a CR.
  const crlf2 =
    end - at >= 4 && buf[end - 1] === 10 && buf[end - 2] === 13 && buf[end - 3] === 10 && buf[end - 4] === 13;
  let text = latin1Slice(buf, at, crlf2 ? end - 4 : end);
  // The usual head has no NUL, DEL, bare CR or bare LF: readHead shows it
  // as it reads the lines, for less than HEAD_ODDITY's scan of the whole
  // head (valgrind: a test of a regex like it costs about 1.2k instructions
  // over the bench's 39 characters).
  // Whatever that read refuses is read again below as before, so an odd
  // head's answer (its lenient read, its error) is the same.
  if (crlf2 && text.length + 4 <= rules.headMax) {
    try {
      const req = readHead(text, rules, true);
      if (req !== undefined) {
        req.headBytes = skipped + headBytes;
        return req;
      }
    } catch {
      // Read again below: another refusal may come first.
    }
  }
  const odd = HEAD_ODDITY.test(text);
  if (odd && BARE_LF.test(text)) {
    const head = lenientHead(buf, at, end);
    text = head.text;
    headBytes = head.bytes;
  } else if (!crlf2) text = text.slice(0, -4);
  if (text.length + 4 > rules.headMax) throw headerTooLarge('request head too large');
  if (odd && BAD_HEAD_CHAR.test(text))
    throw new RequestError(400, 'INVALID_CHAR', 'invalid character in the head');
  const req = readHead(text, rules, false)!;
  req.headBytes = skipped + headBytes;
  return req;
}

/**
 * The request in `text` (a head without its final empty line, no bare CR
 * in it). `usual`: the head was not checked for NUL, DEL, a bare CR or LF,
 * and is read only if it has none (else undefined); a refusal thrown then
 * may not be the head's first one (the caller reads it again, checked).
 * Most lines need no search for them: a request line read without a
 * refusal has none (its three parts' grammars refuse them), nor has a
 * header name (tchar), nor a Host value that is `lastHost` (read from a
 * checked head): their ends are seen to be followed by a LF. Any other
 * line is searched for its first LF, which must be its end's (no LF in it
 * is then bare, nor is its CR): one search per line, as many as a search
 * LF by LF after the lines, without a look at the character by each. Only
 * when such a line was read is the whole head searched for NUL and DEL.
 */
function readHead(text: string, rules: HeadRules, usual: boolean): ClientRequest | undefined {
  // From here `text` has no bare CR (HEAD_ODDITY or BAD_HEAD_CHAR would have
  // refused it, or `usual` reads find it): every CR starts a line end, found
  // by a one-character search.
  let nl = text.indexOf('\r');
  if (usual && nl >= 0 && text.charCodeAt(nl + 1) !== 10) return undefined;
  const lineEnd = nl < 0 ? text.length : nl;
  checkLine(lineEnd + 2, true, rules);
  // The method's characters are scanned up to the first SP: the usual line
  // needs no regex and no search for it.
  let sp1 = 0;
  while (sp1 < lineEnd && isMethodChar(text.charCodeAt(sp1))) sp1++;
  const methodOk = sp1 > 0 && sp1 < lineEnd && text.charCodeAt(sp1) === 32;
  if (!methodOk) {
    sp1 = text.indexOf(' ');
    if (sp1 >= lineEnd) sp1 = -1;
  }
  // A `usual` read takes the SP before a version's place as the second: a
  // SP in the target would be the second, and parseTarget refuses it (the
  // caller then reads the line again).
  let sp2 =
    usual && methodOk && lineEnd - 9 > sp1 && text.charCodeAt(lineEnd - 9) === 32
      ? lineEnd - 9
      : sp1 < 0
        ? -1
        : text.indexOf(' ', sp1 + 1);
  if (sp2 >= lineEnd) sp2 = -1;
  // `HTTP/d.d` after the second SP, checked by character codes (no string made).
  const v = sp2 + 1;
  const major = text.charCodeAt(v + 5) - 48;
  const minor = text.charCodeAt(v + 7) - 48;
  const versionOk =
    sp2 >= 0 &&
    lineEnd - v === 8 &&
    text.startsWith('HTTP/', v) &&
    text.charCodeAt(v + 6) === 46 &&
    major >= 0 &&
    major <= 9 &&
    minor >= 0 &&
    minor <= 9;
  // One SP between the three parts (RFC 9112 §3); nginx also takes runs of
  // them. A valid version has no SP, so only an invalid one is searched.
  if (sp2 < 0 || (!versionOk && lineIndexOf(text, ' ', sp2 + 1, lineEnd) >= 0))
    throw new RequestError(400, 'INVALID_REQUEST_LINE', 'invalid request line');
  if (!methodOk && !METHOD.test(text.slice(0, sp1)))
    throw new RequestError(400, 'INVALID_METHOD', 'invalid method');
  const method = methodOf(text, sp1);
  if (sp2 === sp1 + 1) throw new RequestError(400, 'INVALID_URL', 'invalid request target');
  const rawTarget = text.slice(sp1 + 1, sp2);
  if (!versionOk) throw new RequestError(400, 'INVALID_VERSION', 'invalid HTTP version');
  if (major !== 1) {
    if (major === 0) throw new RequestError(400, 'INVALID_VERSION', 'invalid HTTP version');
    throw new RequestError(505, 'INVALID_VERSION', `unsupported version ${text.slice(v, lineEnd)}`);
  }
  // RFC 9110 §2.5: a higher minor version is served as the highest one implemented.
  const minorVersion = minor === 0 ? 0 : 1;
  const target = parseTarget(rawTarget, rules.mergeSlashes);
  // Made at the first header line, as a literal of its four numbers (a
  // request with one header line grows no array).
  let marks: number[] | undefined;
  let connectionNames = false;
  let host: string | undefined;
  // A Host value that is not `lastHost`: it becomes `lastHost` once the head is read.
  let newHost: string | undefined;
  // Lines dropped as invalid (ignore_invalid_headers).
  let ignored = 0;
  let hostMark = -1;
  let contentLength = -1;
  let te: string | undefined;
  let connClose = false;
  let connKeepAlive = false;
  let connUpgrade = false;
  let upgrade: string | undefined;
  let expect: string | undefined;
  let count = 0;
  let from = nl < 0 ? text.length : nl + 2;
  const n = text.length;
  const underscores = rules.underscores;
  while (from < n) {
    // The name's characters are classed up to the colon: the usual line needs
    // no search for its colon (nor a second pass over its name).
    let colon = from;
    let nameKind: 0 | 1 | 2 = 1;
    while (colon < n) {
      const c = text.charCodeAt(colon);
      const k = c > 127 ? 0 : NAME_CHAR[c]!;
      if (k === 0) break;
      if (k === 3 || (k === 2 && !underscores)) nameKind = 2;
      colon++;
    }
    const named = colon > from && colon < n && text.charCodeAt(colon) === 0x3a;
    // A name scanned up to its colon has no CR before it: the line ends at the first CR after the colon.
    nl = text.indexOf('\r', named ? colon + 1 : from);
    const stop = nl < 0 ? n : nl;
    checkLine(stop - from + 2, false, rules);
    if (!named) {
      // Anything else is refused, as the line's own checks say.
      colon = text.indexOf(':', from);
      if (colon <= from || colon > stop) {
        const c = text.charCodeAt(from);
        throw new RequestError(
          400,
          c === 32 || c === 9 ? 'OBS_FOLD' : 'INVALID_HEADER',
          c === 32 || c === 9 ? 'obsolete line folding' : 'invalid header line',
        );
      }
      nameKind = nameClass(text, from, colon, underscores);
      if (nameKind === 0) throw new RequestError(400, 'INVALID_HEADER_TOKEN', 'invalid header name');
    }
    if (nameKind === 2 && rules.ignoreInvalid) {
      ignored++;
      if (usual && text.indexOf('\n', from) !== (nl < 0 ? -1 : nl + 1)) return undefined;
      // nginx (ignore_invalid_headers on): the line is dropped, never forwarded;
      // `Transfer_Encoding` never reaches a backend that would read it as Transfer-Encoding.
      from = stop + 2;
      continue;
    }
    if (++count > rules.maxHeaders) throw headerTooLarge('more header lines than max_headers');
    let kind = REQ_PLAIN;
    // Only names of these lengths matter here: no string is made for the others.
    switch (colon - from) {
      case 2:
        if (nameIs(text, from, 'te')) kind = REQ_HOP;
        break;
      case 4:
        if (nameIs(text, from, 'host')) {
          if (host !== undefined) throw new RequestError(400, 'DUPLICATE_HOST', 'more than one Host');
          const a = owsStart(text, colon + 1, stop);
          const b = owsEnd(text, a, stop);
          // One slice compared whole: cheaper than a character loop (valgrind: 546 against 740 instructions for a 15-character Host).
          if (b - a === lastHost.length && b > a && text.slice(a, b) === lastHost) host = lastHost;
          else {
            host = text.slice(a, b);
            // nginx's ngx_http_validate_host: no "/", no NUL, no empty label, not empty (read in place).
            if (!validHostIn(text, a, b)) throw new RequestError(400, 'INVALID_HOST', 'invalid Host header');
            newHost = host;
          }
          kind = REQ_HOST;
          hostMark = marks === undefined ? 0 : marks.length;
        }
        break;
      case 6:
        if (nameIs(text, from, 'expect')) {
          expect = value(text, colon, stop).toLowerCase();
          kind = REQ_REPLACED;
        }
        break;
      case 7:
        if (nameIs(text, from, 'upgrade')) {
          upgrade = value(text, colon, stop);
          kind = REQ_HOP;
        } else if (nameIs(text, from, 'trailer')) kind = REQ_HOP;
        break;
      case 10: {
        if (nameIs(text, from, 'connection')) {
          kind = REQ_HOP;
          for (const token of value(text, colon, stop).split(',')) {
            const t = trimOws(token).toLowerCase();
            if (t === 'close') connClose = true;
            else if (t === 'keep-alive') connKeepAlive = true;
            else if (t === 'upgrade') connUpgrade = true;
            else if (t !== '') connectionNames = true;
          }
        } else if (nameIs(text, from, 'keep-alive')) kind = REQ_HOP;
        break;
      }
      case 14:
        if (nameIs(text, from, 'content-length')) {
          kind = REQ_REPLACED;
          if (contentLength >= 0)
            throw new RequestError(400, 'DUPLICATE_CONTENT_LENGTH', 'more than one Content-Length');
          contentLength = parseContentLength(value(text, colon, stop));
        }
        break;
      case 15:
        if (nameIs(text, from, 'x-forwarded-for')) kind = REQ_XFF;
        break;
      case 16:
        if (nameIs(text, from, 'x-forwarded-host')) kind = REQ_REPLACED;
        break;
      case 17: {
        if (nameIs(text, from, 'transfer-encoding')) {
          kind = REQ_HOP;
          const v = value(text, colon, stop);
          te = te === undefined ? v : `${te}, ${v}`;
        } else if (nameIs(text, from, 'x-forwarded-proto')) kind = REQ_REPLACED;
        break;
      }
    }
    if (
      kind === REQ_PLAIN &&
      colon - from > 6 &&
      (text.charCodeAt(from) | 0x20) === 0x70 &&
      nameIs(text, from, 'proxy-')
    )
      kind = REQ_HOP;
    if (marks === undefined) marks = [from, colon, stop, kind];
    else marks.push(from, colon, stop, kind);
    // A `usual` read: the line's first LF is its end's (no LF in it is
    // bare, nor is its CR); a Host value that is `lastHost` has none, and
    // only the line's end is looked at.
    if (
      usual &&
      (kind === REQ_HOST && newHost === undefined
        ? nl >= 0 && text.charCodeAt(nl + 1) !== 10
        : text.indexOf('\n', from) !== (nl < 0 ? -1 : nl + 1))
    )
      return undefined;
    from = stop + 2;
  }
  // A `usual` read: a line other than a Host that is `lastHost` may hold a NUL or DEL.
  if (
    usual &&
    (newHost !== undefined || ignored > 0 || count > (hostMark < 0 ? 0 : 1)) &&
    (text.indexOf('\0') >= 0 || text.indexOf('\x7f') >= 0)
  )
    return undefined;
  let chunked = false;
  if (te !== undefined) {
    // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means faulty framing.
    if (minorVersion === 0)
      throw new RequestError(400, 'TRANSFER_ENCODING_HTTP10', 'Transfer-Encoding in an HTTP/1.0 request');
    if (contentLength >= 0)
      throw new RequestError(400, 'UNEXPECTED_CONTENT_LENGTH', 'both Content-Length and Transfer-Encoding');
    if (te.toLowerCase() !== 'chunked')
      throw new RequestError(400, 'INVALID_TRANSFER_ENCODING', `unsupported Transfer-Encoding "${te}"`);
    chunked = true;
  }
  if (target.host !== undefined) {
    // RFC 9112 §3.2: an HTTP/1.1 request without a Host header is 400, absolute-form or not (nginx too).
    if (host === undefined && minorVersion === 1)
      throw new RequestError(400, 'MISSING_HOST', 'HTTP/1.1 request without Host');
    // RFC 9112 §3.2.2: the target's authority is the Host; a proxy sends a Host made from it.
    if (!validHost(target.host))
      throw new RequestError(400, 'INVALID_HOST', 'invalid host in request target');
    host = target.host;
    // The Host line is not forwarded (nor read as $http_host): the Host sent upstream is made from the target.
    if (hostMark >= 0) marks!.splice(hostMark, 4);
  }
  if (newHost !== undefined) lastHost = newHost;
  const req = new ClientRequest(text, marks ?? []);
  req.connectionNames = connectionNames;
  req.method = method;
  req.url = target.url;
  req.path = target.path;
  req.minorVersion = minorVersion;
  req.host = host;
  req.contentLength = contentLength;
  req.chunked = chunked;
  req.keepAlive = minorVersion === 1 ? !connClose : connKeepAlive && !connClose;
  // Other expectations are ignored, as nginx and HAProxy do (RFC 9110 §10.1.1 lets a server answer 417, or not).
  req.expectContinue = expect === '100-continue' && minorVersion === 1;
  req.upgrade = connUpgrade && upgrade !== undefined ? upgrade : undefined;
  return req;
}

/**
 * Content-Length digits (RFC 9110 §8.6), leading zeros allowed: past 2^53 − 1
 * keepwire could not count the body exactly, so 413 (nginx: 413 under any
 * client_max_body_size up to 2^63, 400 beyond).
 */
function parseContentLength(v: string): number {
  if (!DIGITS.test(v)) throw new RequestError(400, 'INVALID_CONTENT_LENGTH', 'invalid Content-Length');
  let i = 0;
  while (i < v.length - 1 && v.charCodeAt(i) === 0x30) i++;
  const digits = v.length - i;
  if (digits > 19) throw new RequestError(400, 'INVALID_CONTENT_LENGTH', 'Content-Length out of range');
  const n = Number(v.slice(i));
  if (!Number.isSafeInteger(n))
    throw new RequestError(413, 'CONTENT_LENGTH_TOO_LARGE', 'Content-Length too large');
  return n;
}

/** `s` without the SP and HTAB around it (RFC 9110 §5.6.3 OWS); String.trim would also take VT, FF and NBSP. */
function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 32 || s.charCodeAt(a) === 9)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 32 || s.charCodeAt(b - 1) === 9)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/** A header line's value, without the whitespace around it. */
function value(text: string, colon: number, stop: number): string {
  const a = owsStart(text, colon + 1, stop);
  return text.slice(a, owsEnd(text, a, stop));
}

/** The first index in `text[from, to)` that is not SP or HTAB (`to` when none). */
function owsStart(text: string, from: number, to: number): number {
  while (from < to && (text.charCodeAt(from) === 32 || text.charCodeAt(from) === 9)) from++;
  return from;
}

/** One past the last index in `text[from, to)` that is not SP or HTAB. */
function owsEnd(text: string, from: number, to: number): number {
  while (to > from && (text.charCodeAt(to - 1) === 32 || text.charCodeAt(to - 1) === 9)) to--;
  return to;
}

/**
 * Reads one request body, fed in pieces by the connection; `execute`
 * returns how far it read (a pipelined request may follow the body).
 */
export class BodyReader {
  private state = Body.None;
  private remaining = 0;
  private trailers: string[] = [];
  sink: BodySink | undefined;

  /** Starts a body; false when the request has none. */
  start(req: ClientRequest): boolean {
    this.trailers = [];
    if (req.chunked) this.state = Body.ChunkSize;
    else if (req.contentLength > 0) {
      this.state = Body.Length;
      this.remaining = req.contentLength;
    } else this.state = Body.None;
    return this.state !== Body.None;
  }

  get done(): boolean {
    return this.state === Body.None;
  }

  /**
   * Consumes body bytes from `buf[at..]`; returns the offset reached. When
   * it stops before the end of `buf` without finishing the body, the rest is
   * an incomplete line the caller keeps and passes again with more data.
   */
  execute(buf: Buffer, at: number): number {
    while (at < buf.length) {
      switch (this.state) {
        case Body.None:
          return at;
        case Body.Length: {
          const n = Math.min(this.remaining, buf.length - at);
          this.remaining -= n;
          const chunk = at === 0 && n === buf.length ? buf : buf.subarray(at, at + n);
          at += n;
          if (this.remaining === 0) this.state = Body.None;
          this.sink?.onBodyData(chunk);
          if (this.state === Body.None) this.sink?.onBodyEnd(this.trailers);
          break;
        }
        case Body.ChunkSize: {
          const nl = buf.indexOf(10, at);
          if (nl < 0) {
            if (buf.length - at > MAX_CHUNK_LINE)
              throw new RequestError(400, 'INVALID_CHUNK_SIZE', 'chunk size line too long');
            return at;
          }
          if (nl === at || buf[nl - 1] !== 13)
            throw new RequestError(400, 'INVALID_CHUNK_SIZE', 'chunk size line without CRLF');
          const line = buf.toString('latin1', at, nl - 1);
          const m = CHUNK_SIZE.exec(line);
          if (m === null || BAD_LINE_CHAR.test(line))
            throw new RequestError(400, 'INVALID_CHUNK_SIZE', `invalid chunk size "${line.slice(0, 40)}"`);
          at = nl + 1;
          const size = Number.parseInt(m[1]!, 16);
          if (size === 0) {
            this.state = Body.Trailers;
            this.remaining = 0;
          } else {
            this.state = Body.ChunkData;
            this.remaining = size;
          }
          break;
        }
        case Body.ChunkData: {
          const n = Math.min(this.remaining, buf.length - at);
          this.remaining -= n;
          const chunk = buf.subarray(at, at + n);
          at += n;
          if (this.remaining === 0) {
            this.state = Body.ChunkDataEnd;
            this.remaining = 2;
          }
          this.sink?.onBodyData(chunk);
          break;
        }
        case Body.ChunkDataEnd: {
          if (buf[at] !== (this.remaining === 2 ? 13 : 10))
            throw new RequestError(400, 'INVALID_CHUNK', 'chunk data not followed by CRLF');
          at++;
          if (--this.remaining === 0) this.state = Body.ChunkSize;
          break;
        }
        case Body.Trailers: {
          const nl = buf.indexOf(10, at);
          if (nl < 0) {
            if (buf.length - at > MAX_CHUNK_LINE * 8)
              throw new RequestError(431, 'HEADER_OVERFLOW', 'trailers too large');
            return at;
          }
          if (nl === at || buf[nl - 1] !== 13)
            throw new RequestError(400, 'INVALID_TRAILER', 'trailer line without CRLF');
          const line = buf.toString('latin1', at, nl - 1);
          at = nl + 1;
          if (line === '') {
            this.state = Body.None;
            this.sink?.onBodyEnd(this.trailers);
            return at;
          }
          const colon = line.indexOf(':');
          const name = colon > 0 ? line.slice(0, colon) : '';
          if (colon <= 0 || !isToken(line, 0, colon) || BAD_HEAD_CHAR.test(line))
            throw new RequestError(400, 'INVALID_TRAILER', 'invalid trailer line');
          this.remaining += line.length;
          if (this.remaining > MAX_TRAILERS)
            throw new RequestError(431, 'HEADER_OVERFLOW', 'trailers too large');
          this.trailers.push(name, trimOws(line.slice(colon + 1)));
          break;
        }
      }
    }
    return at;
  }
}
