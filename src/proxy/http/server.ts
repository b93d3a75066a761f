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
 * Lifecycle as the stream proxy: build → start (take listeners) → detach
 * (drain: idle keep-alive connections close at once, busy ones after their
 * response with `Connection: close`) → stop (cut what is left).
 */
import type { Socket } from 'node:net';
import type { HttpLocation, Listen } from '../../config/model.js';
import {
  compileKeepalive,
  type KeepaliveApplier,
  type KeepaliveFailureLog,
} from '../../keepalive/applier.js';
import { answerPage } from '../../metrics/pages.js';
import { type ListenerStats, listenerStats, noteEvent } from '../../metrics/stats.js';
import type { UpstreamHost } from '../../upstream/hosts.js';
import type { ConnectionLimiter } from '../limits.js';
import type { Listener } from '../listener.js';
import { resetSocket } from '../pump.js';
import { ClientConnection, type ClientUser, type ConnectionOwner } from './connection.js';
import { type ClientLeg, ProxyExchange, type Route, statusText } from './exchange.js';
import type { ClientLimits } from './limits.js';
import type { HttpLogRecord, RequestEndReason, RequestRecord } from './log.js';
import type { ClientRequest, HeadRules, RequestError } from './request.js';
import type { ServerTable } from './routing.js';
import type { UpgradeTunnel } from './streaming.js';

export interface HttpDeps {
  limiter: ConnectionLimiter;
  log: (record: HttpLogRecord) => void;
  /** A keepalive setting the kernel refused for a socket (the connection goes on). */
  keepaliveFailed?: KeepaliveFailureLog;
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
    private readonly conn: ClientConnection,
    /** Undefined under `access_log off`: nothing is logged. */
    private readonly record: RequestRecord | undefined,
    private readonly status: number,
    private readonly reason: RequestEndReason,
  ) {}

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
  private waiters: (() => void)[] = [];
  serverPort: number;

  constructor(
    readonly listen: Listen,
    readonly table: ServerTable,
    readonly routes: ReadonlyMap<HttpLocation, Route>,
    readonly deps: HttpDeps,
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
  }

  start(listeners: readonly Listener[]): void {
    for (const listener of listeners) {
      listener.handler = (socket) => this.accept(socket);
      this.attached.push(listener);
      this.serverPort = listener.port;
    }
  }

  /**
   * Stops taking connections. Every response from now on says `Connection:
   * close`. `closeIdle` (shutdown): connections waiting for their next
   * request close now. On a reload they stay until that request (answered,
   * then closed) or keepalive_timeout: the new generation has the listeners,
   * and a close the client cannot see coming resets its next request.
   */
  detach(closeIdle = true): void {
    this.draining = true;
    for (const l of this.attached) l.handler = undefined;
    this.attached.length = 0;
    if (closeIdle) {
      this.closeIdle = true;
      for (const c of [...this.connections]) c.drain();
    }
    this.notifyIfDrained();
  }

  get liveCount(): number {
    return this.connections.size;
  }

  drained(): Promise<void> {
    if (this.connections.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  stop(): void {
    this.detach();
    this.logRefused();
    clearTimeout(this.refusedTimer);
    this.refusedTimer = undefined;
    // A request in flight is its connection's user (no set of them is kept per request).
    // A request in flight at the deadline is cut with a RST (README: "reset
    // the rest"), so its client cannot take a cut response for a whole one;
    // the reset goes first, terminate() would close with a FIN.
    for (const c of [...this.connections])
      if (c.user instanceof ProxyExchange) {
        resetSocket(c.socket, true);
        c.user.terminate();
      }
    for (const t of [...this.tunnels]) t.terminate();
    for (const c of [...this.connections]) c.socket.destroy();
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
    this.connections.add(new ClientConnection(this, socket));
    this.keepalive.apply(socket);
    // The listener accepts with pauseOnConnect (for the stream proxy); HTTP reads at once.
    socket.resume();
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
    if (this.connections.size > 0 || this.waiters.length === 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /**
   * Routes a request to its location (undefined when none matches) and sets
   * the connection's settings to that server's and location's.
   */
  private locate(conn: ClientConnection, req: ClientRequest): HttpLocation | undefined {
    const vs = this.table.match(req.host);
    const location = vs.locations.match(req.path);
    conn.limits = (location && vs.locationLimits.get(location)) ?? vs.limits;
    return location;
  }

  mayKeepAlive(conn: ClientConnection): boolean {
    const l = conn.limits;
    return (
      !this.draining &&
      l.keepaliveTimeoutMs > 0 &&
      (l.keepaliveRequests <= 0 || conn.requests < l.keepaliveRequests) &&
      Date.now() - conn.acceptedAt < l.keepaliveTimeMs
    );
  }

  onRequest(conn: ClientConnection, req: ClientRequest): void {
    const stats = this.stats;
    stats.requests++;
    if (conn.requests > 1) stats.idleBeforeReuse.observe((Date.now() - conn.idleSince) / 1000);
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
    if (location.returnDirective) {
      const r = location.returnDirective;
      this.local(conn, req, r.code, 'local', undefined, false, r.text);
      return;
    }
    if (location.page !== undefined) {
      this.page(conn, req, location);
      return;
    }
    const route = this.routes.get(location)!;
    const exchange = new ProxyExchange(this, conn, req, location, route);
    exchange.start();
  }

  /** metrics, stub_status, status (src/metrics/pages.ts): answered once every serving process has answered. */
  private page(conn: ClientConnection, req: ClientRequest, location: HttpLocation): void {
    answerPage(location, req.url, req.rawHeaders).then(
      (a) => {
        if (!conn.socket.destroyed)
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
        if (!conn.socket.destroyed)
          this.local(conn, req, 500, 'local', `${location.page}: ${error.message}`, false);
      },
    );
  }

  /** An answer before routing (400, 405), under the address's default server's access_log. */
  private refuse(conn: ClientConnection, req: ClientRequest, status: number, detail: string): void {
    this.local(conn, req, status, 'bad_request', detail, true, undefined, this.defaultLimits.accessLog);
  }

  /**
   * A response keepwire makes itself: return, 404, early 413. Logged under
   * the access_log of the server and location routed to; answers before
   * routing pass the default server's.
   */
  private local(
    conn: ClientConnection,
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
