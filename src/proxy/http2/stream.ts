/**
 * One HTTP/2 stream as the client side of an exchange (`ClientSide`): the
 * request body from DATA frames, the response as HEADERS, DATA and
 * trailers, flow control as the exchange's backpressure (the stream's
 * Writable wanting a drain pauses the upstream; pausing the body stops
 * reading DATA, so the stream's window closes on the client).
 *
 * What ends a stream:
 *   - a complete response: END_STREAM on the last DATA (or on trailers);
 *     if the client is still sending the body then, RST_STREAM NO_ERROR
 *     tells it to stop (RFC 9113 §8.1), as nginx does;
 *   - a response that cannot be completed (upstream failure mid-body,
 *     send_timeout): RST_STREAM INTERNAL_ERROR, so the client never takes a
 *     cut body for a whole one, as nginx does;
 *   - the client's RST_STREAM: the exchange hears `onClientDone(false)`, and
 *     the connection counts it (rapid reset, `connection.ts`).
 */
import { constants, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { ClientSide } from '../http/client-side.js';
import { BodyKind, type ClientUser } from '../http/connection.js';
import type { ClientLimits } from '../http/limits.js';
import { owned } from '../reads.js';

const { NGHTTP2_NO_ERROR } = constants;

/** The error a stream is destroyed with when its response cannot be completed (RST_STREAM INTERNAL_ERROR). */
const RESPONSE_ABORTED = new Error('response aborted');

/** Fields Node's http2 allows once per header list (ERR_HTTP2_HEADER_SINGLE_VALUE): a repeat is dropped. */
const SINGLE = new Set([
  'access-control-allow-credentials',
  'access-control-max-age',
  'access-control-request-method',
  'age',
  'authorization',
  'content-encoding',
  'content-language',
  'content-length',
  'content-location',
  'content-md5',
  'content-range',
  'content-type',
  'date',
  'dnt',
  'etag',
  'expires',
  'from',
  'host',
  'if-match',
  'if-modified-since',
  'if-none-match',
  'if-range',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'range',
  'referer',
  'retry-after',
  'tk',
  'upgrade-insecure-requests',
  'user-agent',
  'x-content-type-options',
]);

function addField(out: OutgoingHttpHeaders, name: string, value: string): void {
  const lower = name.toLowerCase();
  const had = out[lower];
  if (had === undefined) out[lower] = value;
  else if (SINGLE.has(lower)) return;
  else if (Array.isArray(had)) had.push(value);
  else out[lower] = [had as string, value];
}

/** Header lines (`Name: value` CRLF each) or flat name, value pairs, as HTTP/2 fields (names lower case). */
export function http2Fields(
  headers: readonly string[] | string,
  into: OutgoingHttpHeaders,
): OutgoingHttpHeaders {
  if (typeof headers === 'string') {
    let at = 0;
    while (at < headers.length) {
      let end = headers.indexOf('\r\n', at);
      if (end < 0) end = headers.length;
      const colon = headers.indexOf(':', at);
      if (colon > at && colon < end)
        addField(into, headers.slice(at, colon), headers.slice(colon + 1, end).trim());
      at = end + 2;
    }
  } else for (let i = 0; i < headers.length; i += 2) addField(into, headers[i]!, headers[i + 1]!);
  return into;
}

/** The header lines of an upstream's head passed on as bytes: past its status line (`:status` says it). */
function headerLinesOf(head: Buffer): string {
  const text = head.toString('latin1');
  return text.slice(text.indexOf('\r\n') + 2);
}

/** What the stream needs from its connection. */
export interface StreamOwner {
  readonly remoteAddr: string;
  readonly remotePort: number;
  readonly clientText: string;
  /** Activity from the client (a body chunk): the PING keepalive's quiet time starts again. */
  heard(): void;
  /** The stream closed: `byClient` when the client reset it before its response was complete. */
  streamClosed(stream: Http2ClientStream, byClient: boolean): void;
}

export class Http2ClientStream implements ClientSide {
  readonly protocol = 'HTTP/2.0';
  user: ClientUser | undefined;
  status = 0;
  readonly remoteAddr: string;
  readonly remotePort: number;
  readonly clientText: string;
  private sink: ClientUser | undefined;
  private reading = false;
  private noBody = false;
  private withTrailers = false;
  private trailers: readonly string[] | undefined;
  /** The last byte of the response is with nghttp2 (END_STREAM queued). */
  private responseEnded = false;
  /** keepwire reset the stream itself (not a client reset). */
  private resetByUs = false;
  private closed = false;
  private requestTrailers: string[] = [];
  /** Streams opened on the connection so far, this one included (set by the connection). */
  requests = 1;
  /** When the connection last had no stream in flight (set by the connection). */
  idleSince = 0;

  get gone(): boolean {
    return this.closed;
  }

  constructor(
    private readonly owner: StreamOwner,
    readonly stream: ServerHttp2Stream,
    readonly method: string,
    public limits: ClientLimits,
  ) {
    this.remoteAddr = owner.remoteAddr;
    this.remotePort = owner.remotePort;
    this.clientText = owner.clientText;
    stream.on('close', () => this.onClose());
    stream.on('drain', () => this.user?.onClientDrain());
    // Errors end in 'close', where the exchange learns of them.
    stream.on('error', noop);
    stream.on('wantTrailers', () => this.sendTrailers());
  }

  readBody(sink: ClientUser): void {
    this.sink = sink;
    if (this.reading) return;
    this.reading = true;
    const stream = this.stream;
    stream.on('trailers', (headers: Record<string, string | string[] | undefined>) => {
      for (const [name, value] of Object.entries(headers)) {
        if (name.startsWith(':') || value === undefined) continue;
        for (const v of Array.isArray(value) ? value : [value]) this.requestTrailers.push(name, v);
      }
    });
    stream.on('data', (chunk: Buffer) => {
      this.owner.heard();
      this.sink?.onBodyData(chunk);
    });
    stream.on('end', () => this.sink?.onBodyEnd(this.requestTrailers));
  }

  pauseBody(): void {
    this.stream.pause();
  }

  resumeBody(): void {
    this.stream.resume();
  }

  writeContinue(): void {
    if (!this.stream.headersSent && !this.closed) this.stream.additionalHeaders({ ':status': 100 });
  }

  startResponse(
    status: number,
    _message: string,
    headers: readonly string[] | string | Buffer,
    kind: BodyKind,
    _close: boolean,
  ): void {
    this.status = status;
    if (this.closed) return;
    this.noBody = kind === BodyKind.None || this.method === 'HEAD';
    // A body of unknown length may end with trailers (a chunked upstream response).
    this.withTrailers = !this.noBody && kind === BodyKind.Stream;
    const fields = http2Fields(
      typeof headers === 'string' || Array.isArray(headers) ? headers : headerLinesOf(headers as Buffer),
      { ':status': status },
    );
    try {
      this.stream.respond(fields, { endStream: this.noBody, waitForTrailers: this.withTrailers });
    } catch {
      // A field Node's http2 refuses: the response cannot be passed on whole.
      this.abort();
      return;
    }
    if (this.noBody) this.responseDone();
  }

  writeBody(chunk: Buffer): void {
    if (this.noBody || chunk.length === 0 || this.closed || this.responseEnded) return;
    // An upstream read's view of the shared read buffer (reads.ts): the stream keeps it.
    this.stream.write(owned(chunk));
  }

  flush(): boolean {
    return this.writeBlocked;
  }

  get writeBlocked(): boolean {
    return !this.closed && this.stream.writableNeedDrain;
  }

  endResponse(trailers?: readonly string[]): void {
    if (this.closed || this.noBody || this.responseEnded) return;
    this.trailers = trailers;
    this.stream.end();
    if (!this.withTrailers) this.responseDone();
  }

  /** Node asks for the trailers once the last DATA frame is queued (waitForTrailers). */
  private sendTrailers(): void {
    if (this.closed) return;
    const t = this.trailers;
    // No trailers from the upstream: an empty trailer section still ends the stream (RFC 9113 §8.1).
    this.stream.sendTrailers(t === undefined || t.length === 0 ? {} : http2Fields(t, {}));
    this.responseDone();
  }

  respond(status: number, message: string, headers: readonly string[], body: Buffer, close: boolean): void {
    this.startResponse(status, message, headers, BodyKind.Length, close);
    this.writeBody(body);
    this.endResponse();
  }

  abort(): void {
    if (this.closed) return;
    this.resetByUs = true;
    // Not stream.close(): it ends the writable side first, which sends an
    // empty DATA with END_STREAM before the RST_STREAM, and a client that
    // had no content-length would take the cut body for a whole one.
    // destroy() with an error resets at once with INTERNAL_ERROR.
    this.stream.destroy(RESPONSE_ABORTED);
  }

  /** The response is queued whole; a client still sending its body is told to stop. */
  private responseDone(): void {
    this.responseEnded = true;
    if (this.closed) return;
    const state = this.stream.state as { remoteClose?: number } | undefined;
    if (state !== undefined && state.remoteClose === 0) {
      this.resetByUs = true;
      // Node sends it once the response's frames are queued (after 'finish').
      this.stream.close(NGHTTP2_NO_ERROR);
    }
  }

  /** Shutdown deadline or a connection being torn down: the request in flight is cut. */
  terminate(): void {
    const user = this.user as { terminate?: () => void } | undefined;
    if (user?.terminate !== undefined) user.terminate();
    else this.abort();
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    const complete = this.responseEnded && this.stream.rstCode === NGHTTP2_NO_ERROR;
    const byClient = !complete && !this.resetByUs;
    const user = this.user;
    this.user = undefined;
    this.sink = undefined;
    user?.onClientDone(complete);
    this.owner.streamClosed(this, byClient);
  }
}

function noop(): void {}
