/**
 * The client leg: one HttpFrontend per listening address of `http {}`,
 * serving the virtual servers that share it. keepwire parses requests and
 * frames responses itself on raw sockets (`connection.ts`, `request.ts`):
 * node:http's server and response objects cost more CPU per request than
 * the rest of the proxy together. The connection rules are nginx's:
 *   keepalive_timeout T [H]   idle time between requests; H is announced as
 *                             `Keep-Alive: timeout=H` (only when given);
 *                             T = 0 disables keep-alive
 *   keepalive_requests N      `Connection: close` on the N-th response
 *   keepalive_time T          `Connection: close` once the connection is older
 *   client_header_timeout     408 and close
 *   large_client_header_buffers  a request line over the buffer 414, a
 *                             header line or the whole head 400, and close;
 *                             max_headers likewise; malformed request 400
 * client_header_timeout and the header settings (buffers, max_headers,
 * merge_slashes, underscores_in_headers, ignore_invalid_headers) come from
 * the address's default server (`default_server`, else the first listed):
 * a head is read before its Host is known. Locations match the normalised
 * path (`uri.ts`), as in nginx. Everything nginx resolves per request
 * (client_max_body_size, client_body_timeout, send_timeout, the keep-alive
 * rules, client_body_buffer_size) comes from the server chosen by Host and
 * the location chosen by path (`limits.ts`), set on the connection when the
 * request is routed.
 *
 * Lifecycle as the stream proxy: build → start (take listeners) →
 * announceDrain (graceful stop: `health` answers 503, every response says
 * `Connection: close`, still accepting) → detach (no new connections; each
 * kept-alive connection closes right after a response that said
 * `Connection: close`, or at its keepalive_timeout) → stop (cut what is left).
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { HttpLocation, Listen } from '../../config/model.js';
import {
  compileKeepalive,
  type KeepaliveApplier,
  type KeepaliveFailureLog,
  keepaliveOnFds,
} from '../../keepalive/applier.js';
import { type TcpHandle, tcpHandles } from '../../kernel/node-internals.js';
import { answerPage } from '../../metrics/pages.js';
import { type ListenerStats, listenerStats, noteEvent } from '../../metrics/stats.js';
import type { UpstreamHost } from '../../upstream/hosts.js';
import { now } from '../clock.js';
import { GrpcCall, type GrpcRoute } from '../grpc/call.js';
import { Http2Front, http2Settings } from '../http2/connection.js';
import type { ConnectionLimiter } from '../limits.js';
import type { Listener } from '../listener.js';
import { type HandshakeFailure, HTTP1_ALPN, TlsTerminator } from '../tls.js';
import type { ClientSide } from './client-side.js';
import { ClientConnection, type ClientUser, type ConnectionOwner } from './connection.js';
import { type ClientLeg, ProxyExchange, type Route, statusText } from './exchange.js';
import type { ClientLimits } from './limits.js';
import type { HttpLogRecord, RequestEndReason, RequestRecord } from './log.js';
import { startSweep } from './parked.js';
import { type ClientRequest, type HeadRules, RequestError } from './request.js';
import type { ServerTable, VirtualServer } from './routing.js';
import type { UpgradeTunnel } from './streaming.js';
import { forceSocketUpstreams } from './transport.js';

let socketsOnly = false;

/**
 * For tests: run plain HTTP connections on net.Socket (true), as on a Node
 * without the handle internals, or back to what this Node has (false). Read
 * when a frontend starts; for upstream connections (transport.ts), when one
 * opens.
 */
export function forceSocketConnections(on: boolean): void {
  socketsOnly = on;
  forceSocketUpstreams(on);
}

export interface HttpDeps {
  limiter: ConnectionLimiter;
  log: (record: HttpLogRecord) => void;
  /** A keepalive setting the kernel refused for a socket (the connection goes on). */
  keepaliveFailed?: KeepaliveFailureLog;
  /**
   * Session ticket keys of this configuration generation (tls.ts
   * `makeTicketKeys`): a process running workers makes them once and passes
   * the same to each; absent, the generation makes its own.
   */
  ticketKeys?: Buffer;
}

const TEXT_PLAIN = 'text/plain';

/** The request part of a log record; '' when no request line was read. */
function requestFields(req: ClientRequest | undefined): { method: string; path: string; host: string } {
  return { method: req?.method ?? '', path: req?.url ?? '', host: req?.host ?? '' };
}

/**
 * A response keepwire makes itself (return, 404, 413, 400 without Host):
 * it still reads (and drops) the request body before the next request, and
 * logs when the response is out.
 */
class LocalAnswer implements ClientUser {
  private readonly startedAt = Date.now();

  constructor(
    private readonly frontend: HttpFrontend,
    private readonly conn: ClientSide,
    /** Undefined under `access_log off`: nothing is logged. */
    private readonly record: RequestRecord | undefined,
    private readonly status: number,
    private readonly reason: RequestEndReason,
  ) {
    if (conn.requests > 1) frontend.stats.idleBeforeReuse.observe((this.startedAt - conn.idleSince) / 1000);
  }

  onBodyData(chunk: Buffer): void {
    if (this.record) this.record.bytesReceived += chunk.length;
  }

  onBodyEnd(): void {}
  onClientDrain(): void {}
  onClientBodyError(): void {
    this.conn.abort();
  }

  onClientDone(complete: boolean): void {
    this.frontend.stats.requestEnded(
      complete ? this.status : this.conn.status,
      complete ? this.reason : 'client_closed',
      Date.now() - this.startedAt,
    );
    if (!this.record) return;
    if (!complete) {
      this.record.reason = 'client_closed';
      this.record.detail ??= 'client closed before the response was sent';
    }
    this.record.timings.totalMs = Date.now() - this.record.timings.totalMs;
    this.frontend.log(this.record);
  }
}

/** How often the count of connections refused over worker_connections is logged, at most. */
export const REFUSED_LOG_PERIOD_MS = 1_000;

export class HttpFrontend implements ClientLeg, ConnectionOwner {
  readonly connections = new Set<ClientConnection>();
  readonly tunnels = new Set<UpgradeTunnel>();
  /** This address's counters (src/metrics/stats.ts), kept across reloads. */
  readonly stats: ListenerStats;
  /** lb_idle_timeout of the address's default server: what the status page draws idle time against. */
  readonly lbIdleTimeoutMs: number | undefined;
  /** so_keepalive of the listen directive, compiled once for this generation. */
  private readonly keepalive: KeepaliveApplier;
  readonly listenText: string;
  readonly clientHeaderTimeoutMs: number;
  readonly defaultLimits: ClientLimits;
  readonly headRules: HeadRules;
  private readonly attached: Listener[] = [];
  draining = false;
  closeIdle = false;
  /** Every response says `Connection: close` (announceDrain, detach). */
  private closing = false;
  /** The process is stopping: `health` answers 503 (announceDrain). */
  private stopping = false;
  private waiters: (() => void)[] = [];
  serverPort: number;
  /** `http2 on` in the address's default server: its HTTP/2 connections. */
  readonly h2: Http2Front | undefined;
  readonly http2: ((conn: ClientConnection, held: Buffer) => void) | undefined;
  /** `https` on an `ssl` address: `$scheme` and X-Forwarded-Proto. */
  readonly scheme: 'http' | 'https';
  /** TLS termination of an `ssl` address (undefined: plain). */
  readonly tls: TlsTerminator | undefined;

  /** `ticketKeys` given: the address is `ssl` and terminates TLS with these session ticket keys. */
  constructor(
    readonly listen: Listen,
    readonly table: ServerTable,
    readonly routes: ReadonlyMap<HttpLocation, Route | GrpcRoute>,
    readonly deps: HttpDeps,
    ticketKeys?: Buffer,
    servers: readonly VirtualServer[] = [table.defaultServer],
  ) {
    this.keepalive = compileKeepalive('so_keepalive', listen.soKeepalive, deps.keepaliveFailed);
    this.listenText = listen.address.text;
    this.serverPort = listen.address.port;
    this.clientHeaderTimeoutMs = table.defaultServer.model.clientHeaderTimeoutMs;
    this.defaultLimits = table.defaultServer.limits;
    this.headRules = table.defaultServer.headRules;
    this.lbIdleTimeoutMs = table.defaultServer.model.lbIdleTimeoutMs;
    this.stats = listenerStats(this.listenText, 'http');
    this.stats.soKeepalive = this.keepalive.value;
    const model = table.defaultServer.model;
    if (model.http2) {
      const h2 = new Http2Front(this, http2Settings(model));
      this.h2 = h2;
      this.http2 = (conn, held) => h2.serve(conn.socket, held);
    }
    this.scheme = ticketKeys === undefined ? 'http' : 'https';
    if (ticketKeys !== undefined) {
      // SNI chooses the server block as Host does (ServerTable: unknown names → default server).
      this.tls = new TlsTerminator(
        {
          defaultServer: table.defaultServer.model,
          serverFor: (name) => table.match(name).model,
          ticketKeys,
          // `http2 on`: `h2` offered first; an h2 client then starts with the
          // HTTP/2 preface, which ClientConnection hands to Http2Front as on h2c.
          alpn: this.h2 ? ['h2', ...HTTP1_ALPN] : HTTP1_ALPN,
        },
        {
          secure: (socket: TLSSocket) => this.serve(socket, false),
          plain: (socket) => this.serve(socket, true),
          failed: (socket, failure) => this.handshakeFailed(socket, failure),
        },
      );
      this.tls.prepare(servers.map((v) => v.model));
    }
  }

  start(listeners: readonly Listener[]): void {
    // A plain address takes its connections as bare TCP handles (no
    // net.Socket per connection: handle-wire.ts); so_keepalive then goes on
    // the descriptor through libc (where libc does not load, such an address
    // keeps sockets). Not TLS (a TLSSocket is a Socket), nor where this Node
    // lacks the internals.
    const handles =
      !socketsOnly &&
      tcpHandles !== null &&
      this.tls === undefined &&
      (!this.keepalive.enabled || keepaliveOnFds());
    for (const listener of listeners) {
      listener.handler = (socket) => this.accept(socket);
      listener.handleHandler =
        handles && listener.takesHandles ? (client) => this.acceptHandle(client) : undefined;
      this.attached.push(listener);
      this.serverPort = listener.port;
    }
    // Idle keep-alive connections are held as their TCP handle (parked.ts);
    // TLS ones cannot be (their handle is the TLSWrap).
    if (this.tls === undefined && this.parkSweep === undefined)
      this.parkSweep = startSweep(this.connections, now);
  }

  /** The timer that parks idle connections (parked.ts). */
  private parkSweep: NodeJS.Timeout | undefined;

  /**
   * The process is going away (graceful stop; the `shutdown_delay` before
   * the listeners close): connections are still accepted and served, but
   * `health` answers 503 so the load balancer takes this instance out, and
   * every response says `Connection: close` so keep-alive clients move to
   * another instance after their next response. `healthDown` false: the
   * instance stays (an old generation of a reload), `health` stays 200.
   */
  announceDrain(healthDown = true): void {
    this.stopping = healthDown;
    this.closing = true;
  }

  /**
   * Stops taking connections. Every response from now on says `Connection:
   * close`. Connections waiting for their next request stay until that
   * request (answered with `Connection: close`, then closed) or their
   * keepalive_timeout, on a reload and on a graceful stop alike: HTTP/1.1
   * has no way to tell a client "do not send on this connection", so
   * closing an idle one resets the request the client may be sending on it
   * at that moment. nginx does exactly that on graceful stop
   * (ngx_close_idle_connections closes every idle keep-alive connection at
   * once): the race keepwire exists to prevent. The wait is bounded by
   * worker_shutdown_timeout (stop). `closeIdle` true closes idle connections
   * now (only `stop` passes it: everything is cut then anyway).
   */
  detach(closeIdle = false): void {
    this.draining = true;
    this.closing = true;
    for (const l of this.attached) {
      l.handler = undefined;
      l.handleHandler = undefined;
    }
    this.attached.length = 0;
    if (closeIdle) {
      this.closeIdle = true;
      for (const c of [...this.connections]) c.drain();
    }
    // HTTP/2 clients are told by GOAWAY (no race with a next request, unlike HTTP/1.1).
    this.h2?.drain();
    this.notifyIfDrained();
  }

  get liveCount(): number {
    return this.connections.size + (this.tls?.pendingCount ?? 0);
  }

  drained(): Promise<void> {
    if (this.liveCount === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  stop(): void {
    clearInterval(this.parkSweep);
    this.parkSweep = undefined;
    // Parked connections are idle: detach(true) closes them with the other idle ones.
    this.detach(true);
    this.logRefused();
    clearTimeout(this.refusedTimer);
    this.refusedTimer = undefined;
    // A request in flight is its connection's user (no set of them is kept per request).
    // A request in flight at the deadline is cut with a RST (README: "reset
    // the rest"), so its client cannot take a cut response for a whole one;
    // the reset goes first, terminate() would close with a FIN.
    for (const c of [...this.connections])
      if (c.user instanceof ProxyExchange) {
        c.reset();
        c.user.terminate();
      }
    for (const t of [...this.tunnels]) t.terminate();
    this.h2?.stop();
    for (const c of [...this.connections]) if (this.h2?.owns(c.socket) !== true) c.abort();
    this.tls?.stop();
  }

  private refused = 0;
  private refusedTimer: NodeJS.Timeout | undefined;

  private accept(socket: Socket): void {
    if (this.draining) {
      socket.destroy();
      return;
    }
    this.stats.accepted++;
    if (!this.deps.limiter.tryAcquire()) {
      // As nginx: a connection over worker_connections is closed at once
      // (never queued, so a flood cannot grow memory), and logged as
      // "worker_connections are not enough" (one line per period with a count).
      socket.destroy();
      this.refusedOne();
      return;
    }
    this.stats.handled++;
    // On the TCP socket, before TLS wraps it (keepalive lives there).
    this.keepalive.apply(socket);
    if (this.tls !== undefined) {
      this.tls.accept(socket);
      return;
    }
    this.connections.add(new ClientConnection(this, socket));
    // The listener accepts with pauseOnConnect (for the stream proxy); HTTP reads at once.
    socket.resume();
  }

  /** `accept` for a plain connection taken as its TCP handle (always taken: true). */
  private acceptHandle(client: TcpHandle): boolean {
    if (this.draining) {
      client.close();
      return true;
    }
    this.stats.accepted++;
    if (!this.deps.limiter.tryAcquire()) {
      client.close();
      this.refusedOne();
      return true;
    }
    this.stats.handled++;
    // As the listener's sockets (noDelay: responses leave at once).
    client.setNoDelay(true);
    const conn = new ClientConnection(this, client);
    // As `accept` does with the socket: before the first read.
    if (this.keepalive.enabled) this.keepalive.applyFd(client.fd, conn.clientText);
    this.connections.add(conn);
    return true;
  }

  /** A connection of an `ssl` address past its handshake (or found to be plain HTTP). */
  private serve(socket: Socket, plain: boolean): void {
    this.connections.add(new ClientConnection(this, socket, plain));
    socket.resume();
  }

  private handshakeFailed(socket: Socket, failure: HandshakeFailure): void {
    this.deps.limiter.release();
    this.deps.log({
      msg: 'tls_handshake_failed',
      listen: this.listenText,
      client: `${socket.remoteAddress ?? ''}:${socket.remotePort ?? 0}`,
      reason: failure.kind,
      detail: failure.detail,
    });
    this.notifyIfDrained();
  }

  private refusedOne(): void {
    this.refused++;
    // Within a period the count grows; the period's end logs it.
    if (this.refusedTimer === undefined) this.logRefused();
  }

  /** Logs the refusals counted so far; a period starts in which further ones are counted. */
  private logRefused(): void {
    clearTimeout(this.refusedTimer);
    this.refusedTimer = undefined;
    if (this.refused === 0) return;
    this.deps.log({
      msg: 'worker_connections are not enough',
      listen: this.listenText,
      workerConnections: this.deps.limiter.limit,
      refused: this.refused,
      periodMs: REFUSED_LOG_PERIOD_MS,
    });
    this.refused = 0;
    this.refusedTimer = setTimeout(() => this.logRefused(), REFUSED_LOG_PERIOD_MS);
    this.refusedTimer.unref();
  }

  /** The socket closed (also after an Upgrade handed it to a tunnel). */
  connectionClosed(conn: ClientConnection): void {
    if (!this.connections.delete(conn)) return;
    this.deps.limiter.release();
    this.notifyIfDrained();
  }

  idleTimedOut(conn: ClientConnection): void {
    this.stats.clientIdleTimeouts++;
    noteEvent('client_idle_timeout', this.listenText, `${conn.clientText} idle for keepalive_timeout`);
  }

  private notifyIfDrained(): void {
    if (this.liveCount > 0) return;
    if (this.draining && this.parkSweep !== undefined) {
      // A detached generation with no connections left parks nothing more (and its timer must not hold it).
      clearInterval(this.parkSweep);
      this.parkSweep = undefined;
    }
    if (this.waiters.length === 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /**
   * Routes a request to its location (undefined when none matches) and sets
   * the connection's settings to that server's and location's.
   */
  private locate(conn: ClientSide, req: ClientRequest): HttpLocation | undefined {
    const vs = this.table.match(req.host);
    const location = vs.locations.match(req.path);
    if (location === undefined) conn.limits = vs.limits;
    else if (location === this.lastLocation) conn.limits = this.lastLimits!;
    else {
      const limits = vs.locationLimits.get(location) ?? vs.limits;
      conn.limits = limits;
      this.lastLocation = location;
      this.lastLimits = limits;
      this.lastRoute = this.routes.get(location);
    }
    return location;
  }

  /**
   * The location routed to last, with its limits and route: consecutive
   * requests mostly go to one location, found then without a Map lookup
   * each (a location belongs to one server, so it decides both).
   */
  private lastLocation: HttpLocation | undefined;
  private lastLimits: ClientLimits | undefined;
  private lastRoute: Route | GrpcRoute | undefined;

  mayKeepAlive(conn: ClientConnection): boolean {
    const l = conn.limits;
    return (
      !this.closing &&
      l.keepaliveTimeoutMs > 0 &&
      (l.keepaliveRequests <= 0 || conn.requests < l.keepaliveRequests) &&
      now() - conn.acceptedAt < l.keepaliveTimeMs
    );
  }

  /** A request from an HTTP/1.x connection or an HTTP/2 stream. */
  onRequest(conn: ClientSide, req: ClientRequest): void {
    // Idle time before reuse is observed by the request's user (ProxyExchange, LocalAnswer), which reads the clock anyway.
    this.stats.requests++;
    if (conn instanceof ClientConnection && conn.plainOnTlsPort) {
      // nginx's 497 "The plain HTTP request was sent to HTTPS port", answered as its 400 in clear text, then closed.
      this.onClientError(
        conn,
        new RequestError(
          400,
          'ERR_PLAIN_HTTP_TO_HTTPS',
          'plain HTTP request sent to HTTPS port',
          'The plain HTTP request was sent to HTTPS port',
        ),
        req,
      );
      return;
    }
    if (req.method === 'CONNECT') {
      this.refuse(conn, req, 405, 'CONNECT is not proxied');
      return;
    }
    if (req.host === undefined && req.minorVersion === 1) {
      // RFC 9112 §3.2: a server must answer 400 to an HTTP/1.1 request without Host.
      this.refuse(conn, req, 400, 'HTTP/1.1 request without Host');
      return;
    }
    const location = this.locate(conn, req);
    // As nginx (find-config phase, before `return`): the limit is the
    // location's, and a declared body over it is refused before anything
    // else, at once with 100-continue so the client need not send it.
    const max = conn.limits.clientMaxBodySize;
    if (max > 0 && req.contentLength > max) {
      this.local(
        conn,
        req,
        413,
        'body_too_large',
        `declared body of ${req.contentLength} bytes over ${max}`,
        true,
      );
      return;
    }
    if (req.expectContinue) conn.writeContinue();
    if (location === undefined) {
      this.local(conn, req, 404, 'local', 'no location matches', false);
      return;
    }
    if (location.health) {
      this.health(conn, req);
      return;
    }
    if (location.returnDirective) {
      const r = location.returnDirective;
      this.local(conn, req, r.code, 'local', undefined, false, r.text);
      return;
    }
    if (location.page !== undefined) {
      this.page(conn, req, location);
      return;
    }
    // locate() just remembered this location's route.
    const route = this.lastRoute!;
    if ('grpc' in route) {
      new GrpcCall(this, conn, req, location, route).start();
      return;
    }
    const exchange = new ProxyExchange(this, conn, req, location, route);
    exchange.start();
  }

  /** metrics, stub_status, status (src/metrics/pages.ts): answered once every serving process has answered. */
  private page(conn: ClientSide, req: ClientRequest, location: HttpLocation): void {
    answerPage(location, req.url, req.rawHeaders).then(
      (a) => {
        if (!conn.gone)
          this.local(
            conn,
            req,
            a.status,
            'local',
            undefined,
            false,
            a.body,
            undefined,
            a.contentType,
            a.headers,
          );
      },
      (error: Error) => {
        if (!conn.gone) this.local(conn, req, 500, 'local', `${location.page}: ${error.message}`, false);
      },
    );
  }

  /**
   * `health;`: 200 `ok` while serving, 503 `draining` once the process is
   * stopping (announceDrain), so a load balancer's health check takes the
   * instance out before its listeners close. Never cached. Logged as an
   * ordinary local answer (a 503 here is the drain working, not an error).
   */
  private health(conn: ClientSide, req: ClientRequest): void {
    const status = this.stopping ? 503 : 200;
    const body = Buffer.from(this.stopping ? 'draining\n' : 'ok\n');
    this.local(conn, req, status, 'local', undefined, false, body, undefined, TEXT_PLAIN, [
      'Cache-Control',
      'no-store',
    ]);
  }

  /** An answer before routing (400, 405), under the address's default server's access_log. */
  private refuse(conn: ClientSide, req: ClientRequest, status: number, detail: string): void {
    this.local(conn, req, status, 'bad_request', detail, true, undefined, this.defaultLimits.accessLog);
  }

  /**
   * A response keepwire makes itself: return, 404, early 413. Logged under
   * the access_log of the server and location routed to; answers before
   * routing pass the default server's.
   */
  private local(
    conn: ClientSide,
    req: ClientRequest,
    status: number,
    reason: RequestEndReason,
    detail: string | undefined,
    close: boolean,
    text?: string | Buffer,
    accessLog = conn.limits.accessLog,
    contentType = TEXT_PLAIN,
    extraHeaders: readonly string[] = [],
  ): void {
    let body = text ?? '';
    const headers: string[] = [...extraHeaders];
    if (status >= 301 && status <= 308 && status !== 304 && typeof text === 'string') {
      // `return 301 URL`: the text is the Location, as in nginx.
      headers.push('Location', text);
      body = '';
    } else if (text === undefined && status >= 400) body = `${status} ${statusText(status)}\n`;
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    headers.push('Content-Type', contentType, 'Content-Length', String(bytes.length));
    let record: RequestRecord | undefined;
    if (accessLog) {
      record = {
        msg: 'request',
        listen: this.listenText,
        client: conn.clientText,
        ...requestFields(req),
        status,
        bytesSent: req.method === 'HEAD' ? 0 : bytes.length,
        bytesReceived: 0,
        upstream: null,
        upstreamConnect: null,
        tries: 0,
        retries: 0,
        // Holds the start time until the answer is out.
        timings: { totalMs: Date.now() },
        reason,
      };
      if (detail !== undefined) record.detail = detail;
      if (conn.protocol !== undefined) record.protocol = conn.protocol;
    }
    const answer = new LocalAnswer(this, conn, record, status, reason);
    conn.user = answer;
    conn.readBody(answer);
    conn.respond(status, statusText(status), headers, bytes, close);
  }

  onClientError(conn: ClientConnection, error: RequestError, req: ClientRequest | undefined): void {
    const status = error.status;
    const reason: RequestEndReason = status === 408 ? 'client_header_timeout' : 'bad_request';
    const body = `${status} ${error.text ?? statusText(status)}\n`;
    this.stats.requestEnded(status, reason, 0);
    conn.sendAndClose(
      `HTTP/1.1 ${status} ${statusText(status)}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    );
    // Before routing: the address's default server's access_log.
    if (!this.defaultLimits.accessLog) return;
    this.deps.log({
      msg: 'request',
      listen: this.listenText,
      client: conn.clientText,
      ...requestFields(req),
      status,
      bytesSent: 0,
      bytesReceived: 0,
      upstream: null,
      upstreamConnect: null,
      tries: 0,
      retries: 0,
      timings: { totalMs: 0 },
      reason,
      detail: `${error.code}: ${error.message}`,
    });
  }

  // ClientLeg
  log(record: HttpLogRecord): void {
    this.deps.log(record);
  }

  tunnelled(tunnel: UpgradeTunnel): void {
    this.tunnels.add(tunnel);
  }

  retry(
    exchange: ProxyExchange,
    host: UpstreamHost,
    kind: 'stale_connection' | 'next_upstream',
    detail: string,
  ): void {
    exchange.upstreamStats.retried(kind);
    noteEvent(
      kind === 'stale_connection' ? 'stale_retry' : 'next_upstream',
      exchange.upstreamStats.upstream,
      `${exchange.req.method} to ${host.address.text}: ${detail}`,
    );
    this.deps.log({
      msg: 'upstream_retry',
      method: exchange.req.method,
      path: exchange.req.url,
      upstream: host.address.text,
      kind,
      detail,
      attempt: exchange.attempts + 1,
    });
  }

  ended(item: ProxyExchange | UpgradeTunnel): void {
    if (!(item instanceof ProxyExchange)) this.tunnels.delete(item as UpgradeTunnel);
  }
}
