/**
 * An incremental HTTP/1.x response parser for upstream connections.
 *
 * Hand-written rather than Node's http client so the transport sees every
 * byte of the connection: whether a response arrived at all on a reused
 * connection (the stale-pool race), where a response ends (so the socket can
 * go back to the pool), the upstream's keep-alive hints, trailers, and the
 * bytes that follow a 101 Switching Protocols.
 *
 * Framing follows RFC 9112 §6.3: no body for HEAD, 1xx, 204 and 304;
 * Transfer-Encoding with chunked last wins over Content-Length; a
 * Transfer-Encoding without chunked, or neither header, reads until close.
 */

import { Buffer } from 'node:buffer';
import { latin1Slice } from '../../kernel/node-internals.js';
import { bodyView, owned } from '../reads.js';
import { indexOfCrlf2 } from './request.js';

/** The most a response head may take; larger is an invalid_header failure, as nginx's proxy_buffer_size overflow. */
export const MAX_RESPONSE_HEAD = 64 * 1024;

/** How a response header travels to the client (`ResponseHead.marks`). */
export const HEADER_PLAIN = 0;
/** Hop-by-hop (RFC 9110 §7.6.1): Connection, Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade, Proxy-*. */
export const HEADER_HOP = 1;
/** Content-Length: kept only while the client's framing is the upstream's. */
export const HEADER_LENGTH = 2;

/** A head's bytes once its response has been handed on: nothing of the read is kept. */
const NO_BYTES = Buffer.alloc(0);

export class ResponseHead {
  statusCode = 0;
  statusMessage = '';
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minorVersion = 1;
  /** How the body is framed. */
  framing: 'none' | 'length' | 'chunked' | 'close' = 'close';
  contentLength = 0;
  /** `Connection: close`, HTTP/1.0 without keep-alive, or read-until-close framing. */
  close = false;
  /** `Keep-Alive: timeout=N` in ms, when the upstream sent one. */
  keepAliveHintMs: number | undefined;
  upgrade = false;
  /** A Connection header names further headers (hop-by-hop as well). */
  connectionNames = false;

  /**
   * The read the head arrived in (a view of the shared read buffer, or the
   * joined reads of a split head), valid while the head is handed on
   * (onHead, onInformational, a 101's onComplete) and dropped after.
   * `marks` holds four numbers per header line, positions in `bytes`: where
   * the line starts, its colon, where it ends (before CRLF) and its
   * HEADER_* kind. The head is checked and passed on as bytes: no string is
   * made of it on the way through (headers.ts `clientResponseLines`).
   */
  bytes: Buffer = NO_BYTES;
  /** Where the status line starts in `bytes`, and where it ends (before its CRLF). */
  lineStart = 0;
  lineEnd = 0;
  readonly marks: number[] = [];

  /**
   * Made ready for the next response of the same connection. `marks` keeps
   * its storage: parseHead overwrites it in place and sets its length once
   * at the end (emptying it would make V8 drop the backing store and grow
   * it again, header by header, for every response).
   */
  reset(bytes: Buffer): void {
    this.bytes = bytes;
    this.keepAliveHintMs = undefined;
    this.upgrade = false;
    this.connectionNames = false;
  }

  /** The head was handed on: the read it came in is not kept. */
  release(): void {
    this.bytes = NO_BYTES;
  }

  /** Flat name, value, name, value... as received (values trimmed). */
  get rawHeaders(): string[] {
    const out: string[] = [];
    const { bytes, marks } = this;
    for (let i = 0; i < marks.length; i += 4)
      out.push(
        latin1Slice(bytes, marks[i]!, marks[i + 1]!),
        latin1Slice(bytes, marks[i + 1]! + 1, marks[i + 2]!).trim(),
      );
    return out;
  }
}

export interface ParserSink {
  /** An interim (1xx other than 101) response. */
  onInformational(head: ResponseHead): void;
  onHead(head: ResponseHead): void;
  onBody(chunk: Buffer): void;
  /** The response ended where its framing says. `rest` is whatever followed it. */
  onComplete(trailers: readonly string[], rest: Buffer | undefined): void;
}

export class ParseError extends Error {
  override name = 'ParseError';
}

enum State {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  Close,
  Done,
}

/** The trailers of a message that has none (almost all): one list shared, none made per message. */
export const NO_TRAILERS: readonly string[] = [];
const BAD_LINE_BREAK = /\0|\r(?!\n)|(?<!\r)\n/;
const BARE = 'bare CR, LF or NUL in the response head';
const LF = 10;
const SP = 32;
const HT = 9;

/**
 * What a head line scan stops at, by byte (a table read per byte rather
 * than three or four comparisons): CR ends the line; LF and NUL alone are
 * refused (they would split the line again on the client's side); in
 * NAME_STOP, the first colon ends the name.
 */
const LINE_STOP = new Uint8Array(256);
const STOP_CR = 1;
const STOP_BARE = 2;
const STOP_COLON = 3;
LINE_STOP[13] = STOP_CR;
LINE_STOP[LF] = STOP_BARE;
LINE_STOP[0] = STOP_BARE;
const NAME_STOP = LINE_STOP.slice();
NAME_STOP[0x3a] = STOP_COLON;

/**
 * A refusal of the head `data[from, end)`: the bare line break one when it
 * has any, as it is checked first; parseHead finds those line by line as it
 * goes, so a refusal found earlier looks for one in the rest of the head here.
 */
function refusal(data: Buffer, from: number, end: number, message: string): ParseError {
  return new ParseError(BAD_LINE_BREAK.test(latin1Slice(data, from, end)) ? BARE : message);
}

/** What String.prototype.trim takes away, within latin1: TAB, LF, VT, FF, CR, SP and NBSP. */
function trimmed(c: number): boolean {
  return (c >= 9 && c <= 13) || c === 32 || c === 0xa0;
}

/** The first index in `data[from, to)` that `trim` would keep (`to` when none). */
function trimStart(data: Buffer, from: number, to: number): number {
  while (from < to && trimmed(data[from]!)) from++;
  return from;
}

/** One past the last index in `data[from, to)` that `trim` would keep. */
function trimEnd(data: Buffer, from: number, to: number): number {
  while (to > from && trimmed(data[to - 1]!)) to--;
  return to;
}

/** `data[from, from + lower.length)` equals `lower` (lower case) ignoring the case of letters. */
export function bytesNameIs(data: Uint8Array, from: number, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    const l = lower.charCodeAt(i);
    const c = data[from + i]!;
    // Only letters fold: `c | 0x20` would also turn CR into '-'.
    if (c !== l && (l < 0x61 || l > 0x7a || (c | 0x20) !== l)) return false;
  }
  return true;
}

/**
 * A Content-Length value `data[from, to)`: 1 to 15 digits with whitespace
 * around them (what `/^\d{1,15}$/` accepted on the trimmed value), read in
 * place; -1 when it is anything else.
 */
function lengthValue(data: Buffer, from: number, to: number): number {
  const a = trimStart(data, from, to);
  const b = trimEnd(data, a, to);
  if (b === a || b - a > 15) return -1;
  let n = 0;
  for (let i = a; i < b; i++) {
    const d = data[i]! - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/**
 * The minor version of a status line `HTTP/1.x NNN[ reason]` (0 or 1),
 * `data[from, end)`, or -1 when it is not one.
 */
function statusLineVersion(data: Buffer, from: number, end: number): number {
  if (end - from < 12) return -1;
  if (
    data[from] !== 0x48 ||
    data[from + 1] !== 0x54 ||
    data[from + 2] !== 0x54 ||
    data[from + 3] !== 0x50 ||
    data[from + 4] !== 0x2f ||
    data[from + 5] !== 0x31 ||
    data[from + 6] !== 0x2e ||
    data[from + 8] !== SP
  )
    return -1;
  const minor = data[from + 7]! - 48;
  if (minor !== 0 && minor !== 1) return -1;
  for (let i = from + 9; i < from + 12; i++) {
    const c = data[i]!;
    if (c < 48 || c > 57) return -1;
  }
  if (end - from > 12 && data[from + 12] !== SP) return -1;
  return minor;
}

/** The usual reason phrases by status code: the same constant string each time one is received. */
const REASONS: (string | undefined)[] = [];
for (const [code, reason] of [
  [200, 'OK'],
  [201, 'Created'],
  [204, 'No Content'],
  [206, 'Partial Content'],
  [301, 'Moved Permanently'],
  [302, 'Found'],
  [304, 'Not Modified'],
  [400, 'Bad Request'],
  [401, 'Unauthorized'],
  [403, 'Forbidden'],
  [404, 'Not Found'],
  [500, 'Internal Server Error'],
  [502, 'Bad Gateway'],
  [503, 'Service Unavailable'],
  [504, 'Gateway Timeout'],
] as const)
  REASONS[code] = reason;

/**
 * The reason phrase `data[from, to)`: a usual one as a constant string (later
 * compared by identity, no string made), else a string of its bytes.
 */
function reasonPhrase(data: Buffer, from: number, to: number, code: number): string {
  const known = REASONS[code];
  if (known !== undefined && known.length === to - from) {
    let i = 0;
    while (i < known.length && data[from + i] === known.charCodeAt(i)) i++;
    if (i === known.length) return known;
  }
  return latin1Slice(data, from, to);
}

export class ResponseParser {
  private state = State.Done;
  private buffered: Buffer | undefined;
  private remaining = 0;
  private headRequest = false;
  /** Made at the first trailer line. */
  private trailers: string[] | undefined;
  private readonly head = new ResponseHead();

  constructor(private readonly sink: ParserSink) {}

  /** Expects a new response (to a request with this method). */
  expect(method: string): void {
    this.state = State.Head;
    this.headRequest = method === 'HEAD';
    this.buffered = undefined;
    this.trailers = undefined;
  }

  get idle(): boolean {
    return this.state === State.Done;
  }

  /** True while nothing of the expected response has arrived. */
  get untouched(): boolean {
    return this.state === State.Head && this.buffered === undefined;
  }

  /** The peer closed: completes a read-until-close body; anything else is a truncated response. */
  finish(): boolean {
    if (this.state === State.Close) {
      this.state = State.Done;
      this.sink.onComplete(NO_TRAILERS, undefined);
      return true;
    }
    return false;
  }

  /** Consumes one chunk from the socket. Throws ParseError on a malformed response. */
  execute(input: Buffer): void {
    let data = input;
    if (this.buffered !== undefined) {
      data = Buffer.concat([this.buffered, input]);
      this.buffered = undefined;
    }
    let at = 0;
    while (at < data.length) {
      switch (this.state) {
        case State.Head: {
          const end = indexOfCrlf2(data, at);
          if (end < 0) {
            if (data.length - at > MAX_RESPONSE_HEAD) throw new ParseError('response header too large');
            this.buffered = owned(data.subarray(at));
            return;
          }
          const head = this.parseHead(data, at, end);
          at = end + 4;
          if (head.statusCode < 200 && head.statusCode !== 101) {
            this.sink.onInformational(head);
            head.release();
            continue;
          }
          if (head.statusCode === 101) {
            this.state = State.Done;
            this.sink.onHead(head);
            this.sink.onComplete(NO_TRAILERS, at < data.length ? data.subarray(at) : undefined);
            head.release();
            return;
          }
          this.sink.onHead(head);
          head.release();
          if (head.framing === 'none') {
            this.complete(data, at);
            return;
          }
          if (head.framing === 'length') {
            this.remaining = head.contentLength;
            this.state = State.Length;
            if (this.remaining === 0) {
              this.complete(data, at);
              return;
            }
          } else if (head.framing === 'chunked') this.state = State.ChunkSize;
          else this.state = State.Close;
          break;
        }
        case State.Length: {
          const n = Math.min(this.remaining, data.length - at);
          this.remaining -= n;
          this.sink.onBody(bodyView(data, at, at + n));
          at += n;
          if (this.remaining === 0) {
            this.complete(data, at);
            return;
          }
          break;
        }
        case State.Close:
          this.sink.onBody(at === 0 ? data : data.subarray(at));
          return;
        case State.ChunkSize: {
          const nl = data.indexOf(10, at);
          if (nl < 0) {
            if (data.length - at > 1024) throw new ParseError('chunk size line too long');
            this.buffered = owned(data.subarray(at));
            return;
          }
          const line = data.toString('latin1', at, nl);
          at = nl + 1;
          const semi = line.indexOf(';');
          const hex = (semi < 0 ? line : line.slice(0, semi)).trim();
          if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) throw new ParseError(`invalid chunk size "${hex}"`);
          const size = Number.parseInt(hex, 16);
          if (size === 0) this.state = State.Trailers;
          else {
            this.remaining = size;
            this.state = State.ChunkData;
          }
          break;
        }
        case State.ChunkData: {
          const n = Math.min(this.remaining, data.length - at);
          this.remaining -= n;
          this.sink.onBody(bodyView(data, at, at + n));
          at += n;
          if (this.remaining === 0) {
            this.state = State.ChunkDataEnd;
            this.remaining = 2;
          }
          break;
        }
        case State.ChunkDataEnd: {
          // The CRLF after chunk data, possibly split across reads.
          const byte = data[at]!;
          const expected = this.remaining === 2 ? 13 : 10;
          if (byte !== expected) {
            // Tolerate a bare LF, as nginx does.
            if (!(this.remaining === 2 && byte === 10)) throw new ParseError('missing CRLF after chunk data');
            this.remaining = 1;
          }
          at++;
          if (--this.remaining === 0) this.state = State.ChunkSize;
          break;
        }
        case State.Trailers: {
          const nl = data.indexOf(10, at);
          if (nl < 0) {
            if (data.length - at > MAX_RESPONSE_HEAD) throw new ParseError('trailers too large');
            this.buffered = owned(data.subarray(at));
            return;
          }
          const line = data.toString('latin1', at, nl > at && data[nl - 1] === 13 ? nl - 1 : nl);
          at = nl + 1;
          if (line === '') {
            this.complete(data, at);
            return;
          }
          const colon = line.indexOf(':');
          if (colon <= 0) throw new ParseError('invalid trailer line');
          this.trailers ??= [];
          const trailers = this.trailers;
          trailers.push(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
          if (trailers.length > 200) throw new ParseError('too many trailers');
          break;
        }
        case State.Done:
          throw new ParseError('data after the response');
      }
    }
  }

  private complete(data: Buffer, at: number): void {
    this.state = State.Done;
    this.sink.onComplete(this.trailers ?? NO_TRAILERS, at < data.length ? data.subarray(at) : undefined);
  }

  /**
   * The head `data[from, end)` (without its final CRLF CRLF), checked and
   * read as bytes in one pass per line: a lone CR or LF (or a NUL) inside a
   * line would split it again on the client's side, so each line must end
   * in CR LF and hold neither before.
   */
  private parseHead(data: Buffer, from: number, end: number): ResponseHead {
    // Every line scan stops at the CR at `end` (the head's CRLF CRLF) at the latest.
    let at = from;
    let stop = LINE_STOP[data[at]!]!;
    while (stop === 0) stop = LINE_STOP[data[++at]!]!;
    if (stop === STOP_BARE) throw new ParseError(BARE);
    const statusEnd = at;
    const minorVersion = statusLineVersion(data, from, statusEnd);
    if (minorVersion < 0)
      throw refusal(
        data,
        from,
        end,
        `invalid status line "${latin1Slice(data, from, Math.min(statusEnd, from + 80))}"`,
      );
    const statusCode = (data[from + 9]! - 48) * 100 + (data[from + 10]! - 48) * 10 + data[from + 11]! - 48;
    // One head per connection, refilled per response: its users read it
    // while it is handed on and keep nothing of it.
    const head = this.head;
    head.reset(data);
    const marks = head.marks;
    let contentLength = -1;
    let chunked = false;
    let te = false;
    let connClose = minorVersion === 0;
    let n = 0;
    while (at < end) {
      // `at` is a CR: the line break is CR LF (a CR at end - 1 is followed by the CR at `end`).
      if (data[at + 1] !== LF) throw new ParseError(BARE);
      const start = at + 2;
      at = start;
      stop = NAME_STOP[data[at]!]!;
      while (stop === 0) stop = NAME_STOP[data[++at]!]!;
      let colon = -1;
      if (stop === STOP_COLON) {
        colon = at;
        stop = LINE_STOP[data[++at]!]!;
        while (stop === 0) stop = LINE_STOP[data[++at]!]!;
      }
      if (stop === STOP_BARE) throw new ParseError(BARE);
      const lineEnd = at;
      const first = data[start]!;
      // Obsolete line folding and header lines without a name are refused (RFC 9112 §5.2).
      if (colon <= start || first === SP || first === HT)
        throw refusal(data, from, end, 'invalid header line');
      if (data[colon - 1] === SP) throw refusal(data, from, end, 'whitespace before colon');
      let kind = HEADER_PLAIN;
      switch (colon - start) {
        case 2:
          if (bytesNameIs(data, start, 'te')) kind = HEADER_HOP;
          break;
        case 7:
          if (bytesNameIs(data, start, 'trailer') || bytesNameIs(data, start, 'upgrade')) kind = HEADER_HOP;
          break;
        case 10: {
          if (bytesNameIs(data, start, 'connection')) {
            kind = HEADER_HOP;
            // The two usual values are recognised in place, without a string or a regex.
            const a = trimStart(data, colon + 1, lineEnd);
            const b = trimEnd(data, a, lineEnd);
            if (b - a === 10 && bytesNameIs(data, a, 'keep-alive')) connClose = false;
            else if (b - a === 5 && bytesNameIs(data, a, 'close')) connClose = true;
            else {
              const v = latin1Slice(data, a, b).toLowerCase();
              if (/(^|,)\s*close\s*(,|$)/.test(v)) connClose = true;
              else if (/(^|,)\s*keep-alive\s*(,|$)/.test(v)) connClose = false;
              if (/(^|,)\s*upgrade\s*(,|$)/.test(v)) head.upgrade = true;
              for (const token of v.split(',')) {
                const t = token.trim();
                if (t !== '' && t !== 'close' && t !== 'keep-alive' && t !== 'upgrade')
                  head.connectionNames = true;
              }
            }
          } else if (bytesNameIs(data, start, 'keep-alive')) {
            kind = HEADER_HOP;
            const t = /timeout\s*=\s*(\d+)/i.exec(latin1Slice(data, colon + 1, lineEnd));
            if (t) head.keepAliveHintMs = Number(t[1]) * 1000;
          }
          break;
        }
        case 14:
          if (bytesNameIs(data, start, 'content-length')) {
            kind = HEADER_LENGTH;
            const n = lengthValue(data, colon + 1, lineEnd);
            if (n < 0) throw refusal(data, from, end, 'invalid Content-Length');
            if (contentLength >= 0 && contentLength !== n)
              throw refusal(data, from, end, 'conflicting Content-Length');
            contentLength = n;
          }
          break;
        case 17:
          if (bytesNameIs(data, start, 'transfer-encoding')) {
            kind = HEADER_HOP;
            te = true;
            chunked = /(^|,)\s*chunked\s*$/i.test(latin1Slice(data, colon + 1, lineEnd).trim());
          }
          break;
      }
      if (
        kind === HEADER_PLAIN &&
        colon - start > 6 &&
        (first | 0x20) === 0x70 &&
        bytesNameIs(data, start, 'proxy-')
      )
        kind = HEADER_HOP;
      marks[n] = start;
      marks[n + 1] = colon;
      marks[n + 2] = lineEnd;
      marks[n + 3] = kind;
      n += 4;
    }
    if (marks.length !== n) marks.length = n;
    let framing: ResponseHead['framing'];
    if (this.headRequest || statusCode === 204 || statusCode === 304 || statusCode < 200) framing = 'none';
    else if (te) framing = chunked ? 'chunked' : 'close';
    else if (contentLength >= 0) framing = 'length';
    else framing = 'close';
    head.lineStart = from;
    head.lineEnd = statusEnd;
    head.statusCode = statusCode;
    head.statusMessage = statusEnd - from > 13 ? reasonPhrase(data, from + 13, statusEnd, statusCode) : '';
    head.minorVersion = minorVersion;
    head.framing = framing;
    head.contentLength = Math.max(contentLength, 0);
    head.close = connClose || framing === 'close';
    return head;
  }
}
