/**
 * One gRPC call through `grpc_pass`: the client's HTTP/2 stream (any
 * `ClientSide`) joined to a stream on a pooled HTTP/2 upstream connection
 * (pool.ts), request and response passed frame by frame with HTTP/2 flow
 * control as backpressure both ways, metadata and trailers unchanged.
 *
 * Attempts are the one upstream attempt loop (`Tries`: server choice,
 * grpc_next_upstream_tries/_timeout, passive health, max_conns, the connect
 * timer). A call goes to the next server only while nothing of it has
 * reached an upstream: a connect failure or timeout, a connection closed
 * before its SETTINGS, a stream the server refused (REFUSED_STREAM, RFC 9113
 * §8.7: not processed) or one cut by GOAWAY before any response; the
 * `error`/`timeout` conditions of grpc_next_upstream decide, as for
 * proxy_pass. What the client is told otherwise is in status.ts: before the
 * response header a trailers-only status (UNAVAILABLE, or DEADLINE_EXCEEDED
 * for grpc_read_timeout); after it, a read timeout at a message boundary
 * ends the stream with DEADLINE_EXCEEDED trailers, and anything else resets
 * the client's stream, so a cut stream never looks complete.
 */
import {
  type ClientHttp2Stream,
  constants,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from 'node:http2';
import type { HttpLocation, NextUpstreamCondition } from '../../config/model.js';
import type { KeepaliveApplier } from '../../keepalive/applier.js';
import { type ListenerStats, noteEvent, type UpstreamStats } from '../../metrics/stats.js';
import type { Upstream } from '../../upstream/index.js';
import { Deadline } from '../deadline.js';
import type { ClientSide } from '../http/client-side.js';
import { BodyKind, type ClientUser } from '../http/connection.js';
import { balancerVars, expand, type RequestContext } from '../http/headers.js';
import {
  type HttpLogRecord,
  type RequestEndReason,
  type RequestRecord,
  upstreamFailureReason,
} from '../http/log.js';
import type { ClientRequest, RequestError } from '../http/request.js';
import { http2Fields } from '../http2/stream.js';
import { Tries } from '../tries.js';
import type { GrpcPool, Http2Upstream, PingSettings, SlotWaiter } from './pool.js';
import { GRPC_STATUS, grpcMessage, MessageBoundary, trailersOnly } from './status.js';

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM, NGHTTP2_NO_ERROR, HTTP2_HEADER_STATUS } = constants;

/** A grpc_pass location's upstream side, built once per configuration. */
export interface GrpcRoute {
  readonly grpc: true;
  upstream: Upstream;
  pool: GrpcPool;
  conditions: ReadonlySet<NextUpstreamCondition>;
  /** grpc_socket_keepalive, compiled when the generation was built. */
  keepalive: KeepaliveApplier;
  ping: PingSettings;
  stats: UpstreamStats;
  /** grpcs://: `:scheme` https. */
  tls: boolean;
}

/** What a call needs from the client leg (the address's HttpFrontend). */
export interface GrpcLeg {
  log(record: HttpLogRecord): void;
  readonly listenText: string;
  readonly serverPort: number;
  readonly stats: ListenerStats;
  readonly scheme: 'http' | 'https';
}

/** Never sent over HTTP/2 (RFC 9113 §8.2.2), or carried as pseudo-headers. */
const CONNECTION_SPECIFIC = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  'host',
]);

const RST_NAMES: Record<number, string> = {
  0: 'NO_ERROR',
  1: 'PROTOCOL_ERROR',
  2: 'INTERNAL_ERROR',
  3: 'FLOW_CONTROL_ERROR',
  5: 'STREAM_CLOSED',
  6: 'FRAME_SIZE_ERROR',
  7: 'REFUSED_STREAM',
  8: 'CANCEL',
  9: 'COMPRESSION_ERROR',
  11: 'ENHANCE_YOUR_CALM',
  12: 'INADEQUATE_SECURITY',
};

type Failure = 'connect' | 'connect_timeout' | 'refused' | 'reset' | 'timeout';

const now = Date.now;

/** Flat name, value pairs of a header object, pseudo-headers left out. */
function pairsOf(headers: IncomingHttpHeaders): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (name.charCodeAt(0) === 0x3a || value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) out.push(name, v);
    else out.push(name, String(value));
  }
  return out;
}

function statusOf(headers: IncomingHttpHeaders): number | undefined {
  const v = headers['grpc-status'];
  if (v === undefined) return undefined;
  const n = Number.parseInt(Array.isArray(v) ? v[0]! : v, 10);
  return Number.isNaN(n) ? undefined : n;
}

export class GrpcCall implements ClientUser, SlotWaiter {
  readonly startedAt = now();
  private readonly tries: Tries;
  private readonly ctx: RequestContext;
  private readonly headers: OutgoingHttpHeaders;
  private readonly hasBody: boolean;
  private retries = 0;

  // Request body: chunks held until a stream takes them.
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private bodyDone = false;
  private bodyBytes = 0;
  private bodyPaused = false;

  // Current attempt.
  private conn: Http2Upstream | undefined;
  private stream: ClientHttp2Stream | undefined;
  private attemptStartedAt = 0;
  private connectMs: number | undefined;
  private headerMs: number | undefined;
  private upstreamStatus: number | undefined;
  private fresh = false;
  private readonly read: Deadline<GrpcCall>;
  private sendTimer: NodeJS.Timeout | undefined;
  private upstreamPaused = false;

  // Client side.
  private headerSent = false;
  private bytesSent = 0;
  private readonly boundary = new MessageBoundary();
  private clientTimer: NodeJS.Timeout | undefined;
  private finished = false;
  private reason: RequestEndReason | undefined;
  private detail: string | undefined;
  private grpcStatus: number | undefined;

  constructor(
    private readonly leg: GrpcLeg,
    private readonly client: ClientSide,
    readonly req: ClientRequest,
    private readonly location: HttpLocation,
    private readonly route: GrpcRoute,
  ) {
    this.tries = new Tries(
      route.upstream,
      location.proxyNextUpstreamTries,
      location.proxyNextUpstreamTimeoutMs,
      this.startedAt,
    );
    this.hasBody = req.chunked || req.contentLength > 0;
    this.ctx = {
      method: req.method,
      url: req.url,
      head: req,
      remoteAddr: client.remoteAddr,
      remotePort: client.remotePort,
      serverPort: leg.serverPort,
      scheme: leg.scheme,
      host: req.host ?? '',
      proxyHost: route.upstream.name,
    };
    this.headers = this.upstreamHeaders();
    this.read = new Deadline<GrpcCall>(this, this.readTimedOut, location.proxyReadTimeoutMs);
  }

  /** The request's header list for the upstream: the client's, less connection-specific fields, with grpc_set_header applied. */
  private upstreamHeaders(): OutgoingHttpHeaders {
    const req = this.req;
    const raw = req.rawHeaders;
    const pairs: string[] = [];
    let xff: string | undefined;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      const value = raw[i + 1]!;
      if (CONNECTION_SPECIFIC.has(name)) continue;
      // te: only "trailers" may cross HTTP/2 (RFC 9113 §8.2.2); gRPC requires it.
      if (name === 'te') {
        if (value.toLowerCase().includes('trailers')) pairs.push('te', 'trailers');
        continue;
      }
      // content-length is the h2 framing's: the client's is kept (its DATA must match it).
      if (name === 'x-forwarded-for') xff = xff === undefined ? value : `${xff}, ${value}`;
      pairs.push(name, value);
    }
    const out: OutgoingHttpHeaders = {
      ':method': req.method,
      ':path': req.url,
      ':scheme': this.route.tls ? 'https' : 'http',
      ':authority': this.ctx.host || this.route.upstream.name,
    };
    http2Fields(pairs, out);
    const addXff = xff === undefined ? this.ctx.remoteAddr : `${xff}, ${this.ctx.remoteAddr}`;
    for (const { name, value } of this.location.proxySetHeaders) {
      const lower = name.toLowerCase();
      const v = expand(value, this.ctx, addXff);
      if (lower === 'host') {
        if (v !== '') out[':authority'] = v;
        continue;
      }
      if (CONNECTION_SPECIFIC.has(lower)) continue;
      if (v === '') delete out[lower];
      else out[lower] = v;
    }
    return out;
  }

  start(): void {
    this.client.user = this;
    if (this.hasBody) this.client.readBody(this);
    else this.bodyDone = true;
    this.attempt();
  }

  // ---- attempts ----------------------------------------------------------

  /** The variables a `hash` key may name (Tries asks only for a group that hashes). */
  vars(): Record<string, string> {
    return balancerVars(this.ctx);
  }

  private attempt(): void {
    if (this.finished) return;
    const host = this.tries.next(this);
    if (host === undefined) {
      if (this.tries.attempts === 0) {
        this.route.stats.failed('no_live_upstreams');
        this.respondStatus(GRPC_STATUS.UNAVAILABLE, 'no_live_upstreams', 'no live upstreams');
      } else
        this.respondStatus(
          GRPC_STATUS.UNAVAILABLE,
          this.reason ?? 'connect_failed',
          this.detail ?? 'all tries failed',
        );
      return;
    }
    this.attemptStartedAt = now();
    this.fresh = false;
    this.connectMs = undefined;
    this.headerMs = undefined;
    this.take();
  }

  /** A slot on a connection to the current server (a new connection, or one with room). */
  private take(): void {
    const host = this.tries.host!;
    const route = this.route;
    const { conn, fresh } = route.pool.take(host, route.keepalive, route.ping, this);
    // reserve() may have called onSlotReady already (a ready connection).
    if (this.conn === undefined) this.conn = conn;
    if (fresh && this.stream === undefined) {
      this.fresh = true;
      const timeoutMs = this.location.proxyConnectTimeoutMs;
      this.tries.armConnect(timeoutMs, () =>
        this.failed('connect_timeout', `connect timed out after ${timeoutMs} ms`),
      );
    }
  }

  onSlotBounced(): void {
    this.conn = undefined;
    if (!this.finished) this.take();
  }

  onSlotFailed(error: Error): void {
    const conn = this.conn;
    this.conn = undefined;
    conn?.release();
    const code = (error as NodeJS.ErrnoException).code;
    this.failed('connect', `connect failed: ${code ?? error.message}`);
  }

  onSlotReady(conn: Http2Upstream): void {
    this.conn = conn;
    if (this.finished) {
      this.conn = undefined;
      conn.release();
      return;
    }
    this.tries.stopConnect();
    if (this.fresh) this.connectMs = now() - this.attemptStartedAt;
    let stream: ClientHttp2Stream;
    try {
      stream = conn.session.request(this.headers, {
        endStream: this.bodyDone && this.pending.length === 0,
      });
    } catch (error) {
      this.conn = undefined;
      conn.release();
      this.failed('refused', `stream not opened: ${(error as Error).message}`);
      return;
    }
    this.stream = stream;
    // Events of a stream this call dropped (cancelled on a failure) are not its any more.
    stream.on('response', (headers: IncomingHttpHeaders, flags: number) => {
      if (this.stream === stream) this.onResponse(headers, flags);
    });
    stream.on('data', (chunk: Buffer) => {
      if (this.stream === stream) this.onData(chunk);
    });
    stream.on('trailers', (headers: IncomingHttpHeaders) => {
      if (this.stream === stream) this.onTrailers(headers);
    });
    // Node ends the readable side on a RST_STREAM too: the call is complete
    // only when the stream closes after its end with NO_ERROR ('close').
    stream.on('close', () => this.onStreamClose(stream));
    stream.on('drain', () => this.onUpstreamDrain());
    stream.on('error', noop);
    this.read.touch();
    this.flushBody();
  }

  /** Request chunks held so far go to the stream; then its end, once the client's body ended. */
  private flushBody(): void {
    const stream = this.stream;
    if (stream === undefined) return;
    const pending = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    for (const chunk of pending) stream.write(chunk);
    if (this.bodyDone && this.hasBody && !stream.writableEnded) stream.end();
    this.afterWrite();
    // A body held back while no stream took it flows again once the stream does.
    if (this.bodyPaused && !stream.writableNeedDrain) {
      this.bodyPaused = false;
      this.client.resumeBody();
    }
  }

  private afterWrite(): void {
    const stream = this.stream;
    if (stream === undefined) return;
    if (stream.writableNeedDrain) this.upstreamBlocked();
  }

  private upstreamBlocked(): void {
    if (!this.bodyDone && !this.bodyPaused) {
      this.bodyPaused = true;
      this.client.pauseBody();
    }
    if (this.sendTimer !== undefined) return;
    const timeoutMs = this.location.proxySendTimeoutMs;
    this.sendTimer = setTimeout(() => {
      this.sendTimer = undefined;
      this.failed('timeout', `grpc_send_timeout (${timeoutMs} ms) writing the request`);
    }, timeoutMs);
  }

  private onUpstreamDrain(): void {
    clearTimeout(this.sendTimer);
    this.sendTimer = undefined;
    if (this.bodyPaused) {
      this.bodyPaused = false;
      this.client.resumeBody();
    }
  }

  // ---- request body ------------------------------------------------------

  onBodyData(chunk: Buffer): void {
    if (this.finished) return;
    this.bodyBytes += chunk.length;
    // client_max_body_size bounds a call's whole request stream, as nginx does for grpc_pass (0: no limit).
    const max = this.client.limits.clientMaxBodySize;
    if (max > 0 && this.bodyBytes > max) {
      this.dropAttempt(NGHTTP2_CANCEL);
      const detail = `request stream over client_max_body_size (${max} bytes)`;
      if (this.headerSent) this.abortClient('body_too_large', detail);
      else this.respondStatus(GRPC_STATUS.RESOURCE_EXHAUSTED, 'body_too_large', detail);
      return;
    }
    if (this.stream === undefined) {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      // Held while no stream takes it: bounded, the client waits (its window closes).
      if (this.pendingBytes > this.client.limits.clientBodyBufferSize && !this.bodyPaused) {
        this.bodyPaused = true;
        this.client.pauseBody();
      }
      return;
    }
    this.stream.write(chunk);
    this.afterWrite();
  }

  /** gRPC requests carry no trailers (PROTOCOL-HTTP2.md): any the client sent are not passed on. */
  onBodyEnd(_trailers: string[]): void {
    if (this.finished) return;
    this.bodyDone = true;
    const stream = this.stream;
    if (stream !== undefined && !stream.writableEnded) stream.end();
  }

  onClientBodyError(error: RequestError): void {
    this.dropAttempt(NGHTTP2_CANCEL);
    if (this.headerSent) this.abortClient('bad_request', `request body: ${error.message}`);
    else this.respondStatus(GRPC_STATUS.INTERNAL, 'bad_request', `request body: ${error.message}`);
  }

  // ---- response ----------------------------------------------------------

  private onResponse(headers: IncomingHttpHeaders, flags: number): void {
    if (this.finished) return;
    this.conn?.heard();
    this.read.touch();
    this.tries.succeeded();
    const status = Number(headers[HTTP2_HEADER_STATUS] ?? 0);
    this.upstreamStatus = status;
    this.headerMs = now() - this.attemptStartedAt - (this.connectMs ?? 0);
    this.headerSent = true;
    const trailersOnlyResponse = (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    if (trailersOnlyResponse) this.grpcStatus = statusOf(headers);
    this.client.startResponse(
      status,
      '',
      pairsOf(headers),
      trailersOnlyResponse ? BodyKind.None : BodyKind.Stream,
      false,
    );
  }

  private onData(chunk: Buffer): void {
    if (this.finished) return;
    this.conn?.heard();
    this.read.touch();
    this.bytesSent += chunk.length;
    this.boundary.feed(chunk);
    this.client.writeBody(chunk);
    if (this.client.flush()) {
      // Backpressure: the upstream's window closes while the client is slow.
      this.stream?.pause();
      this.upstreamPaused = true;
      this.clientBlocked();
    }
  }

  private trailers: string[] | undefined;

  private onTrailers(headers: IncomingHttpHeaders): void {
    this.conn?.heard();
    this.read.touch();
    this.trailers = pairsOf(headers);
    this.grpcStatus = statusOf(headers);
  }

  private onEnd(): void {
    if (this.finished || !this.headerSent) return;
    this.read.cancel();
    this.reason = 'ok';
    const conn = this.conn;
    this.conn = undefined;
    this.stream = undefined;
    this.tries.release();
    conn?.release();
    if (this.client.writeBlocked) this.clientBlocked();
    this.client.endResponse(this.trailers);
  }

  onClientDrain(): void {
    clearTimeout(this.clientTimer);
    this.clientTimer = undefined;
    if (this.upstreamPaused) {
      this.upstreamPaused = false;
      this.read.touch();
      this.stream?.resume();
    }
  }

  private clientBlocked(): void {
    if (this.clientTimer !== undefined) return;
    const timeoutMs = this.client.limits.sendTimeoutMs;
    this.clientTimer = setTimeout(() => {
      this.clientTimer = undefined;
      this.dropAttempt(NGHTTP2_CANCEL);
      this.abortClient('send_timeout', `client took nothing for ${timeoutMs} ms`);
    }, timeoutMs);
  }

  private readTimedOut(): void {
    if (this.finished || this.stream === undefined) return;
    // Reads paused for a slow client: that wait is send_timeout's.
    if (this.upstreamPaused) {
      this.read.touch();
      return;
    }
    this.failed('timeout', `grpc_read_timeout (${this.location.proxyReadTimeoutMs} ms)`);
  }

  private onStreamClose(stream: ClientHttp2Stream): void {
    if (this.stream !== stream) return;
    const code = stream.rstCode ?? NGHTTP2_NO_ERROR;
    if (code === NGHTTP2_NO_ERROR && stream.readableEnded && this.headerSent) {
      this.onEnd();
      return;
    }
    // Closed without its end: reset by the server, or the connection went.
    const name = RST_NAMES[code] ?? String(code);
    const sessionGone = this.conn?.session.destroyed === true || this.conn?.closing === true;
    if (code === NGHTTP2_REFUSED_STREAM && !this.headerSent)
      this.failed('refused', 'upstream refused the stream (RST_STREAM REFUSED_STREAM)');
    else if (code === NGHTTP2_NO_ERROR && sessionGone && !this.headerSent)
      this.failed('refused', 'upstream connection closed (GOAWAY) before the call was answered');
    else
      this.failed(
        'reset',
        code === NGHTTP2_NO_ERROR
          ? `upstream connection closed ${this.headerSent ? 'during' : 'before'} the response`
          : `upstream RST_STREAM ${name} (${code}) ${this.headerSent ? 'during' : 'before'} the response`,
      );
  }

  // ---- failures ----------------------------------------------------------

  /** Ends the current attempt: its stream is cancelled (if open), its slots given back. */
  private dropAttempt(code: number): void {
    this.tries.stopConnect();
    this.read.cancel();
    clearTimeout(this.sendTimer);
    this.sendTimer = undefined;
    const stream = this.stream;
    this.stream = undefined;
    if (stream !== undefined && !stream.closed && !stream.destroyed) stream.close(code);
    const conn = this.conn;
    this.conn = undefined;
    if (conn !== undefined) conn.release(this);
    this.tries.release();
    this.upstreamPaused = false;
  }

  private failed(kind: Failure, detail: string): void {
    if (this.finished) return;
    const host = this.tries.host!;
    const opened = this.stream !== undefined;
    const bodySent = opened && (this.bodyBytes > 0 || this.bodyDone);
    this.dropAttempt(NGHTTP2_CANCEL);
    const where = `${host.address.text}: ${detail}`;
    const reason = upstreamFailureReason(kind);
    this.reason = reason;
    this.detail = where;
    this.route.stats.failed(reason);
    if (reason !== 'upstream_timeout')
      noteEvent('upstream_failure', this.route.stats.upstream, `${reason}: ${where}`);
    if (this.headerSent) {
      // A timeout at a message boundary can still end the call honestly; anything else resets it.
      if (kind === 'timeout' && this.boundary.atBoundary) {
        this.grpcStatus = GRPC_STATUS.DEADLINE_EXCEEDED;
        this.client.endResponse([
          'grpc-status',
          String(GRPC_STATUS.DEADLINE_EXCEEDED),
          'grpc-message',
          grpcMessage(detail),
        ]);
      } else this.abortClient(reason, `${where} (client stream reset)`);
      return;
    }
    if (kind === 'connect' || kind === 'connect_timeout') this.tries.failed();
    // Nothing of the call reached an upstream: another server may take it.
    const unsent = kind === 'connect' || kind === 'connect_timeout' || (kind === 'refused' && !bodySent);
    const condition = kind === 'connect_timeout' ? 'timeout' : 'error';
    if (unsent && this.route.conditions.has(condition) && this.tries.left) {
      this.retries++;
      this.route.stats.retried('next_upstream');
      noteEvent(
        'next_upstream',
        this.route.stats.upstream,
        `${this.req.method} to ${host.address.text}: ${detail}`,
      );
      this.leg.log({
        msg: 'upstream_retry',
        method: this.req.method,
        path: this.req.url,
        upstream: host.address.text,
        kind: 'next_upstream',
        detail,
        attempt: this.tries.attempts + 1,
      });
      this.attempt();
      return;
    }
    if (kind === 'timeout') this.respondStatus(GRPC_STATUS.DEADLINE_EXCEEDED, reason, where);
    else this.respondStatus(GRPC_STATUS.UNAVAILABLE, reason, where);
  }

  /** A trailers-only response with keepwire's own status (HTTP 200, grpc-status, grpc-message). */
  private respondStatus(status: number, reason: RequestEndReason, detail: string): void {
    if (this.finished || this.headerSent) return;
    this.reason = reason;
    this.detail = detail;
    this.headerSent = true;
    this.grpcStatus = status;
    this.client.startResponse(200, 'OK', trailersOnly(status, detail), BodyKind.None, false);
  }

  private abortClient(reason: RequestEndReason, detail: string): void {
    if (this.finished) return;
    this.reason = reason;
    this.detail = detail;
    this.grpcStatus = undefined;
    this.client.abort();
  }

  /** Shutdown deadline: cut the call now. */
  terminate(): void {
    this.dropAttempt(NGHTTP2_CANCEL);
    this.abortClient('shutdown', 'shutdown deadline');
  }

  onClientDone(complete: boolean): void {
    if (this.finished) return;
    this.finished = true;
    if (!complete) {
      if (this.reason === undefined || this.reason === 'ok') {
        this.reason = 'client_closed';
        this.detail ??= this.headerSent
          ? 'client closed during the response'
          : 'client closed before the response';
        this.grpcStatus = undefined;
      }
      // The client's RST_STREAM (a cancelled call) is passed on as CANCEL.
      this.dropAttempt(NGHTTP2_CANCEL);
    }
    this.read.cancel();
    clearTimeout(this.clientTimer);
    const totalMs = now() - this.startedAt;
    this.leg.stats.requestEnded(this.client.status, this.reason ?? 'ok', totalMs);
    if (this.client.limits.accessLog) this.leg.log(this.record(totalMs));
  }

  private record(totalMs: number): RequestRecord {
    const host = this.tries.host;
    const record: RequestRecord = {
      msg: 'request',
      listen: this.leg.listenText,
      client: this.client.clientText,
      method: this.req.method,
      path: this.ctx.url,
      host: this.ctx.host,
      status: this.client.status,
      bytesSent: this.bytesSent,
      bytesReceived: this.bodyBytes,
      upstream: host ? host.address.text : null,
      upstreamConnect: host ? (this.fresh ? 'new' : 'reused') : null,
      tries: this.tries.attempts,
      retries: this.retries,
      timings: { totalMs },
      reason: this.reason ?? 'ok',
    };
    if (this.upstreamStatus !== undefined) record.upstreamStatus = this.upstreamStatus;
    if (this.connectMs !== undefined) record.timings.connectMs = this.connectMs;
    if (this.headerMs !== undefined) record.timings.headerMs = this.headerMs;
    if (this.detail !== undefined) record.detail = this.detail;
    record.protocol = this.client.protocol ?? 'HTTP/1.1';
    if (this.grpcStatus !== undefined) record.grpcStatus = this.grpcStatus;
    return record;
  }
}

function noop(): void {}
