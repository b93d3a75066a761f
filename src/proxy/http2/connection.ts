/**
 * HTTP/2 on the client leg (`http2 on`): `Http2Front` per listening address
 * serves the connections its HTTP/1.x code hands over — h2c with prior
 * knowledge today (the connection started with the client preface, nginx's
 * behaviour on cleartext listeners), and, through the same `serve(socket)`,
 * a TLS socket whose ALPN chose `h2`. Node's `http2` (nghttp2) speaks the
 * protocol; each stream becomes a request of the HTTP/1.x frontend
 * (routing, local answers, one `ProxyExchange` with its one attempt loop),
 * its client side an `Http2ClientStream`.
 *
 * Per connection, as nginx 1.25 (connection settings from the address's
 * default server, as nginx takes them from `h2c->http_connection->conf_ctx`):
 *   - http2_max_concurrent_streams is SETTINGS_MAX_CONCURRENT_STREAMS;
 *   - keepalive_timeout: no stream open for that long → GOAWAY, close;
 *   - keepalive_requests: the N-th stream gets its response, then GOAWAY
 *     (graceful: streams in flight finish); keepalive_time likewise;
 *   - rapid reset (CVE-2023-44487): as nginx 1.25.3, new streams over twice
 *     max_concurrent_streams within one event-loop turn are refused
 *     (RST_STREAM REFUSED_STREAM); and, keepwire's own bound, a client that
 *     has reset more than twice max_concurrent_streams of its streams
 *     before their responses ended, and most of the streams it opened, gets
 *     GOAWAY ENHANCE_YOUR_CALM and the connection is closed
 *     (`http2_reset_flood` logged). keepalive_requests bounds any client
 *     the same way in the end, but 1000 cancelled upstream requests per
 *     connection is too many to wait for;
 *   - http2_ping_interval / http2_ping_timeout (keepwire's): a PING after
 *     that long without anything from the client, the connection closed
 *     when its ACK does not come in time (`http2_ping_timeout` logged).
 */
import {
  constants,
  createServer,
  type Http2Server,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Duplex } from 'node:stream';
import type { HttpServer } from '../../config/model.js';
import { Deadline } from '../deadline.js';
import type { ClientSide } from '../http/client-side.js';
import { LINGER_MS } from '../http/connection.js';
import { statusText } from '../http/exchange.js';
import type { ClientLimits } from '../http/limits.js';
import type { HttpLogRecord } from '../http/log.js';
import { type ClientRequest, type HeadRules, RequestError } from '../http/request.js';
import { http2Request, requestFieldsOf } from './head.js';
import { PingKeepalive } from './ping.js';
import { Http2ClientStream, type StreamOwner } from './stream.js';

const { NGHTTP2_REFUSED_STREAM, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_FLAG_END_STREAM } = constants;

/** A client connection's socket: TCP, or TLS over it. */
export type ClientSocket = Duplex & { remoteAddress?: string; remotePort?: number; bytesRead?: number };

/** What the HTTP/2 side needs from the HTTP frontend of its address. */
export interface Http2Owner {
  readonly listenText: string;
  /** The default server's head rules (a header list is read before its Host is known). */
  readonly headRules: HeadRules;
  /** The default server's settings: the connection's keep-alive rules. */
  readonly defaultLimits: ClientLimits;
  log(record: HttpLogRecord): void;
  /** A request read from a stream: routed and answered as an HTTP/1.x one. */
  onRequest(side: ClientSide, req: ClientRequest): void;
}

/** The HTTP/2 settings of an address (its default server's). */
export interface Http2Settings {
  maxConcurrentStreams: number;
  pingIntervalMs: number;
  pingTimeoutMs: number;
}

export function http2Settings(server: HttpServer): Http2Settings {
  return {
    maxConcurrentStreams: server.http2MaxConcurrentStreams,
    pingIntervalMs: server.http2PingIntervalMs,
    pingTimeoutMs: server.http2PingTimeoutMs,
  };
}

export class Http2Front {
  readonly connections = new Set<Http2Connection>();
  private readonly server: Http2Server;
  draining = false;
  private readonly sockets = new WeakSet<ClientSocket>();
  /** The socket being handed to the http2 server ('session' is emitted synchronously). */
  private accepting: ClientSocket | undefined;

  constructor(
    readonly owner: Http2Owner,
    readonly settings: Http2Settings,
  ) {
    const rules = owner.headRules;
    this.server = createServer({
      settings: {
        maxConcurrentStreams: settings.maxConcurrentStreams,
        enablePush: false,
        // Room above the head limit, so a list over it reaches the head parser and gets nginx's 400.
        maxHeaderListSize: Math.max(65_535, rules.headMax + 4096),
      },
      // Pairs counted by Node (pseudo-headers included): room above max_headers for the same reason.
      maxHeaderListPairs: rules.maxHeaders + 8,
    });
    this.server.on('session', (session: ServerHttp2Session) => {
      // session.socket is a proxy that throws once the session is gone: the socket itself is kept.
      const socket = this.accepting!;
      this.accepting = undefined;
      const conn = new Http2Connection(this, session, socket);
      this.connections.add(conn);
    });
    // Session errors end in the session's 'close'.
    this.server.on('sessionError', noop);
  }

  /**
   * Serves HTTP/2 on an established connection: a cleartext socket whose
   * first bytes were the client preface (`held`: every byte read so far,
   * given back to nghttp2), or a TLS socket whose ALPN chose `h2` (nothing
   * read yet). The socket's owner keeps counting it until it closes.
   */
  serve(socket: ClientSocket, held?: Buffer): void {
    if (this.draining) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    this.accepting = socket;
    this.server.emit('connection', socket);
    this.accepting = undefined;
    // Given back after the session exists: on its first tick it feeds what the
    // socket holds to nghttp2 (Node's http2 core does that for bytes read
    // before it took the socket); a readable tick scheduled earlier would
    // drop them.
    if (held !== undefined && held.length > 0) socket.unshift(held);
    // The HTTP/1.x code paused its reads; nghttp2 reads from the handle now.
    socket.resume();
  }

  /** Whether `socket` is an HTTP/2 connection's: `stop` closes it (after its streams' resets). */
  owns(socket: ClientSocket): boolean {
    return this.sockets.has(socket);
  }

  /** Draining (reload or shutdown): every connection gets GOAWAY; streams in flight finish. */
  drain(): void {
    this.draining = true;
    for (const c of [...this.connections]) c.goaway();
  }

  /** The shutdown deadline: streams in flight are cut, connections closed. */
  stop(): void {
    this.draining = true;
    for (const c of [...this.connections]) c.terminate();
  }

  closed(conn: Http2Connection): void {
    this.connections.delete(conn);
  }
}

export class Http2Connection implements StreamOwner {
  readonly remoteAddr: string;
  readonly remotePort: number;
  readonly clientText: string;
  readonly startedAt = Date.now();
  private readonly streams = new Set<Http2ClientStream>();
  private readonly limits: ClientLimits;
  /** Streams the client opened and keepwire took (refused ones not counted). */
  private opened = 0;
  /** Streams the client reset before their responses ended. */
  private resets = 0;
  /** New streams in this event-loop turn (nginx's per-read cap). */
  private turnStreams = 0;
  private turnReset = false;
  private goingAway = false;
  private readonly idle: Deadline<Http2Connection>;
  /** When the last stream in flight closed (or the connection opened): the client side's idle time before reuse. */
  private idleSince = Date.now();
  /** http2_ping_interval / _timeout (ping.ts, shared with grpc_pass's upstream PINGs). */
  private readonly ping: PingKeepalive | undefined;

  constructor(
    private readonly front: Http2Front,
    private readonly session: ServerHttp2Session,
    private readonly socket: ClientSocket,
  ) {
    this.remoteAddr = socket.remoteAddress ?? '';
    this.remotePort = socket.remotePort ?? 0;
    this.clientText = `${this.remoteAddr}:${this.remotePort}`;
    this.limits = front.owner.defaultLimits;
    this.idle = new Deadline<Http2Connection>(this, this.idleExpired);
    this.idle.arm(this.limits.keepaliveTimeoutMs);
    const s = front.settings;
    if (s.pingIntervalMs > 0)
      this.ping = new PingKeepalive(
        session,
        () => socket.bytesRead ?? 0,
        s.pingIntervalMs,
        s.pingTimeoutMs,
        () => this.pingTimedOut(),
      );
    session.on('stream', (stream: ServerHttp2Stream, _headers: unknown, flags: number, raw: string[]) =>
      this.onStream(stream, flags, raw),
    );
    session.on('ping', () => this.heard());
    session.on('error', noop);
    session.on('close', () => this.onClose());
  }

  // ---- streams -------------------------------------------------------------

  private onStream(stream: ServerHttp2Stream, flags: number, raw: string[]): void {
    this.heard();
    if (++this.turnStreams > 2 * this.front.settings.maxConcurrentStreams) {
      // nginx 1.25.3: "client sent too many streams at once".
      stream.on('error', noop);
      stream.close(NGHTTP2_REFUSED_STREAM);
      return;
    }
    if (!this.turnReset) {
      this.turnReset = true;
      setImmediate(resetTurn, this);
    }
    // Refused streams cost nothing upstream and are not requests: not counted.
    this.opened++;
    this.idle.cancel();
    const limits = this.limits;
    const fields = requestFieldsOf(raw);
    const side = new Http2ClientStream(this, stream, fields.method, limits);
    side.requests = this.opened;
    side.idleSince = this.streams.size === 0 ? this.idleSince : Date.now();
    this.streams.add(side);
    // keepalive_requests / keepalive_time (nginx): this stream is answered, then GOAWAY.
    if (
      (limits.keepaliveRequests > 0 && this.opened >= limits.keepaliveRequests) ||
      Date.now() - this.startedAt >= limits.keepaliveTimeMs
    )
      this.goaway();
    let req: ClientRequest;
    try {
      req = http2Request(raw, (flags & NGHTTP2_FLAG_END_STREAM) !== 0, this.front.owner.headRules);
    } catch (error) {
      if (!(error instanceof RequestError)) throw error;
      this.refuse(side, fields, error);
      return;
    }
    this.front.owner.onRequest(side, req);
  }

  /** A head the parser refused: its status on the stream (the connection goes on), logged as HTTP/1.x ones are. */
  private refuse(
    side: Http2ClientStream,
    fields: ReturnType<typeof requestFieldsOf>,
    error: RequestError,
  ): void {
    const status = error.status;
    const body = Buffer.from(`${status} ${error.text ?? statusText(status)}\n`, 'latin1');
    side.respond(
      status,
      statusText(status),
      ['Content-Type', 'text/plain', 'Content-Length', String(body.length)],
      body,
      true,
    );
    if (!this.limits.accessLog) return;
    this.front.owner.log({
      msg: 'request',
      listen: this.front.owner.listenText,
      client: this.clientText,
      ...fields,
      status,
      bytesSent: 0,
      bytesReceived: 0,
      upstream: null,
      upstreamConnect: null,
      tries: 0,
      retries: 0,
      timings: { totalMs: 0 },
      reason: 'bad_request',
      detail: `${error.code}: ${error.message}`,
      protocol: 'HTTP/2.0',
    });
  }

  streamClosed(stream: Http2ClientStream, byClient: boolean): void {
    this.streams.delete(stream);
    if (byClient) {
      this.resets++;
      const bound = 2 * this.front.settings.maxConcurrentStreams;
      if (this.resets > bound && 2 * this.resets > this.opened && !this.session.destroyed) {
        this.front.owner.log({
          msg: 'http2_reset_flood',
          listen: this.front.owner.listenText,
          client: this.clientText,
          streams: this.opened,
          resets: this.resets,
          detail: `client reset ${this.resets} of ${this.opened} streams before their responses (over 2 × http2_max_concurrent_streams = ${bound}): GOAWAY ENHANCE_YOUR_CALM`,
        });
        this.close(NGHTTP2_ENHANCE_YOUR_CALM);
        return;
      }
    }
    if (this.streams.size === 0) this.idleSince = Date.now();
    if (this.streams.size === 0 && !this.session.destroyed)
      this.idle.arm(this.goingAway ? LINGER_MS : this.limits.keepaliveTimeoutMs);
  }

  /** @internal */
  endTurn(): void {
    this.turnReset = false;
    this.turnStreams = 0;
  }

  // ---- keep-alive and PING -----------------------------------------------

  /** Something arrived from the client. */
  heard(): void {
    this.ping?.heard();
  }

  private idleExpired(): void {
    if (this.streams.size > 0) return;
    // After GOAWAY the client should close; one that does not is closed (nginx's lingering_timeout).
    if (this.goingAway) this.socket.destroy();
    else this.goaway();
  }

  private pingTimedOut(): void {
    if (this.session.destroyed) return;
    const ms = this.front.settings.pingTimeoutMs;
    this.front.owner.log({
      msg: 'http2_ping_timeout',
      listen: this.front.owner.listenText,
      client: this.clientText,
      streams: this.opened,
      resets: this.resets,
      detail: `no PING ACK within http2_ping_timeout (${ms} ms) after ${this.front.settings.pingIntervalMs} ms without frames from the client: connection closed`,
    });
    this.close(constants.NGHTTP2_NO_ERROR);
  }

  /** GOAWAY (NO_ERROR): no new streams; the connection closes once the open ones are done. */
  goaway(): void {
    if (this.goingAway || this.session.destroyed) return;
    this.goingAway = true;
    this.session.close();
    if (this.streams.size === 0) this.idle.arm(LINGER_MS);
  }

  /** GOAWAY with `code`, and the connection closed now (streams in flight are cut). */
  private close(code: number): void {
    if (this.session.destroyed) return;
    this.goingAway = true;
    // GOAWAY now: nghttp2 takes no new stream from here on.
    this.session.goaway(code);
    for (const s of [...this.streams]) s.terminate();
    // Node submits a stream's RST_STREAM on the next turn (setImmediate): the
    // session goes after it, or the client would see the connection close
    // without its streams being reset and could take them for answered.
    setImmediate(destroySession, this.session, code, this.socket);
  }

  terminate(): void {
    this.close(constants.NGHTTP2_NO_ERROR);
  }

  private onClose(): void {
    this.idle.cancel();
    this.ping?.cancel();
    this.front.closed(this);
    if (!this.socket.destroyed) this.socket.destroy();
  }
}

function destroySession(session: ServerHttp2Session, code: number, socket: ClientSocket): void {
  // With an error: destroy(undefined, code) would take its default error (0) as the code.
  if (!session.destroyed) session.destroy(new Error('connection closed by keepwire'), code);
  // A session closed gracefully before (GOAWAY when draining) leaves its socket
  // open until the client's FIN; keepwire closes it once the last frames are out
  // (the shutdown is queued after the writes already made).
  if (!socket.destroyed) socket.end(() => socket.destroy());
}

function resetTurn(conn: Http2Connection): void {
  conn.endTurn();
}

function noop(): void {}
