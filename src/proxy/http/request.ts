/**
 * The client leg's HTTP/1.x request parser: request heads and request bodies
 * (Content-Length or chunked, with trailers), fed incrementally.
 *
 * Hand-written so a request costs one string slice and a few regex tests,
 * and so the framing rules are keepwire's own and strict where requests can
 * be smuggled (RFC 9112 §6.1, §6.3, §11.2): a request with both
 * Content-Length and Transfer-Encoding, more than one Content-Length, a
 * Content-Length that is not plain digits, a Transfer-Encoding other than
 * `chunked`, obsolete line folding, whitespace before a colon, a bare CR or
 * LF, control characters, an invalid chunk size or a chunk not followed by
 * CRLF are all refused with 400 and the connection closed.
 */

/** Whole request head, request line included (Node's default max header size). */
export const MAX_REQUEST_HEAD = 16 * 1024;
/** A chunk-size line with its extensions. */
const MAX_CHUNK_LINE = 1024;
const MAX_TRAILERS = 8 * 1024;

export class RequestError extends Error {
  override name = 'RequestError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
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
  url = '';
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minorVersion = 1;
  /** The Host header, undefined without one. */
  host: string | undefined;
  /** Declared Content-Length, -1 without one. */
  contentLength = -1;
  chunked = false;
  /** The client allows the connection to stay open after the response. */
  keepAlive = true;
  /** `Expect: 100-continue` (HTTP/1.1). */
  expectContinue = false;
  /** Some other expectation, answered 417. */
  expectOther = false;
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
      out.push(text.slice(marks[i]!, marks[i + 1]!), text.slice(marks[i + 1]! + 1, marks[i + 2]!).trim());
    this.raw = out;
    return out;
  }
}

export interface BodySink {
  onBodyData(chunk: Buffer): void;
  /** The body ended; trailers as flat name, value pairs. */
  onBodyEnd(trailers: string[]): void;
}

const CRLF2 = Buffer.from('\r\n\r\n');
// Control characters other than HTAB, and a CR or LF that is not part of a CRLF.
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is its purpose
const BAD_HEAD_CHAR = /[\0-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n/;
/** Header name characters (RFC 9110 tchar), by character code. */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
  TCHAR[c.charCodeAt(0)] = 1;

/** Whether `text[from, to)` is all header-name characters (RFC 9110 tchar). */
export function isToken(text: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c > 127 || TCHAR[c] === 0) return false;
  }
  return true;
}
const METHOD = /^[A-Z][A-Z_-]*$/;
const DIGITS = /^\d{1,15}$/;
const CHUNK_SIZE = /^([0-9a-fA-F]{1,12})(?:[ \t]*;.*)?$/;

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
  const end = buf.indexOf(CRLF2, at);
  return end < 0 ? -1 : end + 4;
}

/** Throws for bytes that can never become a valid head (a bare LF, a head over the limit); `buf` starts the head, `from` is where unchecked bytes start. */
export function checkIncompleteHead(buf: Buffer, from: number): void {
  if (buf.length > MAX_REQUEST_HEAD)
    throw new RequestError(431, 'HEADER_OVERFLOW', 'request header too large');
  for (let i = buf.indexOf(10, from); i >= 0; i = buf.indexOf(10, i + 1))
    if (i === 0 || buf[i - 1] !== 13) throw new RequestError(400, 'BARE_LF', 'bare LF in the request head');
}

/** Parses a complete request head, `buf[at, end)` with `end` just past its CRLFCRLF. */
export function parseRequestHead(buf: Buffer, at: number, end: number): ClientRequest {
  // Empty lines before a request line are ignored (RFC 9112 §2.2).
  while (buf[at] === 13 && buf[at + 1] === 10) at += 2;
  if (end - at > MAX_REQUEST_HEAD) throw new RequestError(431, 'HEADER_OVERFLOW', 'request header too large');
  const text = buf.toString('latin1', at, end - 4);
  if (BAD_HEAD_CHAR.test(text)) throw new RequestError(400, 'INVALID_CHAR', 'invalid character in the head');
  let nl = text.indexOf('\r\n');
  const line = nl < 0 ? text : text.slice(0, nl);
  const sp1 = line.indexOf(' ');
  const sp2 = sp1 < 0 ? -1 : line.indexOf(' ', sp1 + 1);
  if (sp2 < 0 || line.indexOf(' ', sp2 + 1) >= 0)
    throw new RequestError(400, 'INVALID_REQUEST_LINE', 'invalid request line');
  const method = line.slice(0, sp1);
  const url = line.slice(sp1 + 1, sp2);
  const version = line.slice(sp2 + 1);
  if (!METHOD.test(method)) throw new RequestError(400, 'INVALID_METHOD', 'invalid method');
  if (url === '' || url.includes('\t')) throw new RequestError(400, 'INVALID_URL', 'invalid request target');
  let minorVersion: number;
  if (version === 'HTTP/1.1') minorVersion = 1;
  else if (version === 'HTTP/1.0') minorVersion = 0;
  else if (/^HTTP\/[2-9]\.\d$/.test(version))
    throw new RequestError(505, 'INVALID_VERSION', `unsupported version ${version}`);
  else throw new RequestError(400, 'INVALID_VERSION', 'invalid HTTP version');
  const marks: number[] = [];
  const req = new ClientRequest(text, marks);
  let host: string | undefined;
  let contentLength = -1;
  let te: string | undefined;
  let connClose = false;
  let connKeepAlive = false;
  let connUpgrade = false;
  let upgrade: string | undefined;
  let expect: string | undefined;
  let from = nl < 0 ? text.length : nl + 2;
  while (from < text.length) {
    nl = text.indexOf('\r\n', from);
    const stop = nl < 0 ? text.length : nl;
    const colon = text.indexOf(':', from);
    if (colon <= from || colon > stop) {
      const c = text.charCodeAt(from);
      throw new RequestError(
        400,
        c === 32 || c === 9 ? 'OBS_FOLD' : 'INVALID_HEADER',
        c === 32 || c === 9 ? 'obsolete line folding' : 'invalid header line',
      );
    }
    if (!isToken(text, from, colon))
      throw new RequestError(400, 'INVALID_HEADER_TOKEN', 'invalid header name');
    let kind = REQ_PLAIN;
    // Only names of these lengths matter here: no string is made for the others.
    switch (colon - from) {
      case 2:
        if (lower(text, from, colon) === 'te') kind = REQ_HOP;
        break;
      case 4:
        if (lower(text, from, colon) === 'host') {
          if (host !== undefined) throw new RequestError(400, 'DUPLICATE_HOST', 'more than one Host');
          host = value(text, colon, stop);
          kind = REQ_HOST;
        }
        break;
      case 6:
        if (lower(text, from, colon) === 'expect') {
          expect = value(text, colon, stop).toLowerCase();
          kind = REQ_REPLACED;
        }
        break;
      case 7: {
        const name = lower(text, from, colon);
        if (name === 'upgrade') {
          upgrade = value(text, colon, stop);
          kind = REQ_HOP;
        } else if (name === 'trailer') kind = REQ_HOP;
        break;
      }
      case 10: {
        const name = lower(text, from, colon);
        if (name === 'connection') {
          kind = REQ_HOP;
          for (const token of value(text, colon, stop).split(',')) {
            const t = token.trim().toLowerCase();
            if (t === 'close') connClose = true;
            else if (t === 'keep-alive') connKeepAlive = true;
            else if (t === 'upgrade') connUpgrade = true;
            else if (t !== '') req.connectionNames = true;
          }
        } else if (name === 'keep-alive') kind = REQ_HOP;
        break;
      }
      case 14:
        if (lower(text, from, colon) === 'content-length') {
          kind = REQ_REPLACED;
          if (contentLength >= 0)
            throw new RequestError(400, 'DUPLICATE_CONTENT_LENGTH', 'more than one Content-Length');
          const v = value(text, colon, stop);
          if (!DIGITS.test(v))
            throw new RequestError(400, 'INVALID_CONTENT_LENGTH', 'invalid Content-Length');
          contentLength = Number(v);
        }
        break;
      case 15:
        if (lower(text, from, colon) === 'x-forwarded-for') kind = REQ_XFF;
        break;
      case 16:
        if (lower(text, from, colon) === 'x-forwarded-host') kind = REQ_REPLACED;
        break;
      case 17: {
        const name = lower(text, from, colon);
        if (name === 'transfer-encoding') {
          kind = REQ_HOP;
          const v = value(text, colon, stop);
          te = te === undefined ? v : `${te}, ${v}`;
        } else if (name === 'x-forwarded-proto') kind = REQ_REPLACED;
        break;
      }
    }
    if (
      kind === REQ_PLAIN &&
      colon - from > 6 &&
      (text.charCodeAt(from) | 0x20) === 0x70 &&
      lower(text, from, from + 6) === 'proxy-'
    )
      kind = REQ_HOP;
    marks.push(from, colon, stop, kind);
    from = stop + 2;
  }
  let chunked = false;
  if (te !== undefined) {
    if (contentLength >= 0)
      throw new RequestError(400, 'UNEXPECTED_CONTENT_LENGTH', 'both Content-Length and Transfer-Encoding');
    if (te.toLowerCase() !== 'chunked')
      throw new RequestError(400, 'INVALID_TRANSFER_ENCODING', `unsupported Transfer-Encoding "${te}"`);
    chunked = true;
  }
  req.method = method;
  req.url = url;
  req.minorVersion = minorVersion;
  req.host = host;
  req.contentLength = contentLength;
  req.chunked = chunked;
  req.keepAlive = minorVersion === 1 ? !connClose : connKeepAlive && !connClose;
  req.expectContinue = expect === '100-continue' && minorVersion === 1;
  req.expectOther = expect !== undefined && expect !== '100-continue';
  req.upgrade = connUpgrade && upgrade !== undefined ? upgrade : undefined;
  return req;
}

function lower(text: string, from: number, to: number): string {
  return text.slice(from, to).toLowerCase();
}

/** A header line's value, without the whitespace around it. */
function value(text: string, colon: number, stop: number): string {
  return text.slice(colon + 1, stop).trim();
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
          if (m === null || BAD_HEAD_CHAR.test(line))
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
          this.trailers.push(name, line.slice(colon + 1).trim());
          break;
        }
      }
    }
    return at;
  }
}
