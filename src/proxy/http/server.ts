/**
 * The client leg: one HttpFrontend per listening address of `http {}`,
 * serving the virtual servers that share it. Node's HTTP/1.1 server does the
 * parsing; keepwire sets the connection rules as nginx does:
 *   keepalive_timeout T [H]   idle time between requests; H is announced as
 *                             `Keep-Alive: timeout=H` (only when given);
 *                             T = 0 disables keep-alive
 *   keepalive_requests N      `Connection: close` on the N-th response
 *   keepalive_time T          `Connection: close` once the connection is older
 *   client_header_timeout     408 and close
 *   header fields too large   431 and close; malformed request 400 and close
 * Connection-level settings come from the address's default server (the
 * first listed), request-level ones from the server chosen by Host.
 *
 * Lifecycle as the stream proxy: build → start (take listeners) → detach
 * (drain: idle keep-alive connections close at once, busy ones after their
 * response with `Connection: close`) → stop (cut what is left).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { HttpLocation, Listen } from '../../config/model.js';
import { applyKeepalive, toKeepaliveOptions } from '../../keepalive/socket.js';
import type { UpstreamHost } from '../../upstream/hosts.js';
import type { ConnectionLimiter } from '../limits.js';
import type { Listener } from '../listener.js';
import { type ClientLeg, ProxyExchange, type Route, STATUS_TEXT } from './exchange.js';
import type { HttpLogRecord, RequestEndReason, RequestRecord } from './log.js';
import type { ServerTable } from './routing.js';
import { type TunnelOwner, UpgradeTunnel } from './streaming.js';

export interface HttpDeps {
  limiter: ConnectionLimiter;
  log: (record: HttpLogRecord) => void;
}

/** Per client connection: when it was accepted and how many requests it carried. */
interface ConnState {
  acceptedAt: number;
  requests: number;
}

const STATE = Symbol('keepwire.conn');

type StatefulSocket = Socket & { [STATE]?: ConnState };

export class HttpFrontend implements ClientLeg, TunnelOwner {
  readonly server: Server;
  readonly sockets = new Set<Socket>();
  readonly exchanges = new Set<ProxyExchange>();
  readonly tunnels = new Set<UpgradeTunnel>();
  readonly listenText: string;
  readonly sendTimeoutMs: number;
  readonly clientBodyTimeoutMs: number;
  readonly clientMaxBodySize: number;
  private readonly keepaliveHeader: string | undefined;
  private readonly attached: Listener[] = [];
  private draining = false;
  private waiters: (() => void)[] = [];
  serverPort: number;

  constructor(
    readonly listen: Listen,
    readonly table: ServerTable,
    readonly routes: ReadonlyMap<HttpLocation, Route>,
    readonly deps: HttpDeps,
  ) {
    const m = table.defaultServer.model;
    this.listenText = listen.address.text;
    this.serverPort = listen.address.port;
    this.sendTimeoutMs = m.sendTimeoutMs;
    this.clientBodyTimeoutMs = m.clientBodyTimeoutMs;
    this.clientMaxBodySize = m.clientMaxBodySize;
    if (m.keepaliveHeaderTimeoutMs !== undefined)
      this.keepaliveHeader = `timeout=${Math.floor(m.keepaliveHeaderTimeoutMs / 1000)}`;
    this.server = createServer({
      requestTimeout: 0,
      headersTimeout: m.clientHeaderTimeoutMs,
      // Header timeouts are enforced by a periodic sweep; keep its error small.
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(m.clientHeaderTimeoutMs / 4))),
      keepAliveTimeout: m.keepaliveTimeoutMs,
      noDelay: true,
      // Extra copies of a header are kept as received, not joined.
      joinDuplicateHeaders: false,
      // Checked in onRequest, so the refusal is logged like every other.
      requireHostHeader: false,
    });
    // Node's default 5 s; 0 would mean "never" to Node, while nginx's 0
    // disables keep-alive, which connectionHeaders() does with Connection: close.
    this.server.keepAliveTimeout = m.keepaliveTimeoutMs === 0 ? 1 : m.keepaliveTimeoutMs;
    // Node 24+ keeps idle sockets this much longer than announced; keepwire
    // closes at keepalive_timeout exactly, as nginx does.
    (this.server as unknown as { keepAliveTimeoutBuffer?: number }).keepAliveTimeoutBuffer = 0;
    this.server.headersTimeout = m.clientHeaderTimeoutMs;
    this.server.requestTimeout = 0;
    // The sockets come from keepwire's own listeners, so this server never
    // listens; Node starts its connection tracking (header timeouts,
    // closeIdleConnections) on 'listening', so that event is given here.
    this.server.emit('listening');
    this.server.on('request', (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res));
    this.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => this.onContinue(req, res));
    this.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) =>
      this.onUpgrade(req, socket, head),
    );
    this.server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) =>
      this.onClientError(error, socket),
    );
  }

  start(listeners: readonly Listener[]): void {
    for (const listener of listeners) {
      listener.handler = (socket) => this.accept(socket);
      this.attached.push(listener);
      this.serverPort = listener.port;
    }
  }

  detach(): void {
    this.draining = true;
    for (const l of this.attached) l.handler = undefined;
    this.attached.length = 0;
    // Connections waiting for their next request close now; busy ones close
    // after their response (Connection: close).
    this.server.closeIdleConnections();
    this.notifyIfDrained();
  }

  get liveCount(): number {
    return this.sockets.size;
  }

  drained(): Promise<void> {
    if (this.sockets.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  stop(): void {
    this.detach();
    for (const e of [...this.exchanges]) e.terminate();
    for (const t of [...this.tunnels]) t.terminate();
    for (const s of [...this.sockets]) s.destroy();
  }

  private accept(socket: Socket): void {
    if (this.draining || !this.deps.limiter.tryAcquire()) {
      socket.destroy();
      return;
    }
    const s = socket as StatefulSocket;
    s[STATE] = { acceptedAt: Date.now(), requests: 0 };
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.deps.limiter.release();
      this.notifyIfDrained();
    });
    const spec = this.listen.soKeepalive;
    if (spec?.enable) {
      try {
        applyKeepalive(socket, toKeepaliveOptions(spec));
      } catch {
        // Keepalive is a safety net, not the data path; the connection is served.
      }
    }
    this.server.emit('connection', socket);
    // The listener accepts with pauseOnConnect (for the stream proxy); HTTP reads at once.
    socket.resume();
  }

  private notifyIfDrained(): void {
    if (this.sockets.size > 0 || this.waiters.length === 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Routes a request to its location; undefined when none matches. */
  private locate(req: IncomingMessage): HttpLocation | undefined {
    const vs = this.table.match(req.headers.host);
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    return vs.locations.match(q < 0 ? url : url.slice(0, q));
  }

  private onContinue(req: IncomingMessage, res: ServerResponse): void {
    // 100-continue exists so a client can learn of a refusal before sending
    // the body: answer 413 at once for a declared body over the limit.
    const max = this.clientMaxBodySize;
    const length = Number(req.headers['content-length'] ?? 0);
    if (max > 0 && length > max) {
      this.local(req, res, 413, 'body_too_large', `declared body of ${length} bytes over ${max}`, true);
      return;
    }
    res.writeContinue();
    this.onRequest(req, res);
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    res.sendDate = false;
    const state = (req.socket as StatefulSocket)[STATE];
    if (state) state.requests++;
    if (req.headers.host === undefined && req.httpVersionMinor === 1) {
      // RFC 9112 §3.2: a server must answer 400 to an HTTP/1.1 request without Host.
      this.local(req, res, 400, 'bad_request', 'HTTP/1.1 request without Host', true);
      return;
    }
    const location = this.locate(req);
    if (location === undefined) {
      this.local(req, res, 404, 'local', 'no location matches', false);
      return;
    }
    if (location.returnDirective) {
      const r = location.returnDirective;
      this.local(req, res, r.code, 'local', undefined, false, r.text);
      return;
    }
    const max = this.clientMaxBodySize;
    const declared = req.headers['content-length'];
    if (max > 0 && declared !== undefined && Number(declared) > max) {
      this.local(req, res, 413, 'body_too_large', `declared body of ${declared} bytes over ${max}`, true);
      return;
    }
    const route = this.routes.get(location)!;
    const exchange = new ProxyExchange(this, req, res, location, route);
    this.exchanges.add(exchange);
    exchange.start();
  }

  /** A response keepwire makes itself: return, 404, early 413. */
  private local(
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    reason: RequestEndReason,
    detail: string | undefined,
    close: boolean,
    text?: string,
  ): void {
    res.sendDate = false;
    const startedAt = Date.now();
    let body = text ?? '';
    const headers: string[] = [];
    if (status >= 301 && status <= 308 && status !== 304 && text !== undefined) {
      // `return 301 URL`: the text is the Location, as in nginx.
      headers.push('Location', text);
      body = '';
    } else if (text === undefined && status >= 400) body = `${status} ${STATUS_TEXT[status] ?? ''}\n`;
    headers.push('Content-Type', 'text/plain', 'Content-Length', String(Buffer.byteLength(body)));
    if (close) {
      headers.push('Connection', 'close');
      req.resume();
    } else this.connectionHeaders(req, res, headers);
    res.writeHead(status, headers);
    res.end(body);
    req.resume();
    const socket = req.socket;
    const record: RequestRecord = {
      msg: 'request',
      listen: this.listenText,
      client: `${socket.remoteAddress ?? ''}:${socket.remotePort ?? 0}`,
      method: req.method ?? '',
      path: req.url ?? '',
      host: req.headers.host ?? '',
      status,
      bytesSent: Buffer.byteLength(body),
      bytesReceived: 0,
      upstream: null,
      upstreamConnect: null,
      tries: 0,
      retries: 0,
      timings: { totalMs: Date.now() - startedAt },
      reason,
    };
    if (detail !== undefined) record.detail = detail;
    this.deps.log(record);
  }

  connectionHeaders(req: IncomingMessage, res: ServerResponse, headers: string[]): void {
    const state = (req.socket as StatefulSocket)[STATE];
    const m = this.table.defaultServer.model;
    const keep =
      res.shouldKeepAlive &&
      !this.draining &&
      m.keepaliveTimeoutMs > 0 &&
      (state === undefined ||
        ((m.keepaliveRequests <= 0 || state.requests < m.keepaliveRequests) &&
          Date.now() - state.acceptedAt < m.keepaliveTimeMs));
    if (!keep) {
      headers.push('Connection', 'close');
      return;
    }
    // An explicit Connection header also stops Node from announcing its own
    // Keep-Alive timeout: nginx announces one only when asked to.
    headers.push('Connection', 'keep-alive');
    if (this.keepaliveHeader !== undefined) headers.push('Keep-Alive', this.keepaliveHeader);
  }

  private onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const location = this.locate(req);
    const route = location ? this.routes.get(location) : undefined;
    if (location === undefined || route === undefined) {
      const status = location?.returnDirective?.code ?? 404;
      socket.end(
        `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? ''}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
      );
      return;
    }
    const tunnel = new UpgradeTunnel(this, req, socket, head, location, route);
    this.tunnels.add(tunnel);
    tunnel.start();
  }

  private onClientError(error: NodeJS.ErrnoException, socket: Socket): void {
    const code = error.code ?? '';
    let status = 400;
    let reason: RequestEndReason = 'bad_request';
    if (code === 'HPE_HEADER_OVERFLOW') status = 431;
    else if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      status = 408;
      reason = 'client_header_timeout';
    } else if (code === 'ECONNRESET' || code === 'EPIPE') {
      socket.destroy();
      return;
    }
    const busy = (socket as unknown as { _httpMessage?: ServerResponse | null })._httpMessage;
    if (socket.writable && (busy == null || !busy.headersSent)) {
      const body = `${status} ${STATUS_TEXT[status] ?? ''}\n`;
      socket.end(
        `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? ''}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
        'latin1',
      );
    }
    socket.destroySoon();
    this.deps.log({
      msg: 'request',
      listen: this.listenText,
      client: `${socket.remoteAddress ?? ''}:${socket.remotePort ?? 0}`,
      method: '',
      path: '',
      host: '',
      status,
      bytesSent: 0,
      bytesReceived: 0,
      upstream: null,
      upstreamConnect: null,
      tries: 0,
      retries: 0,
      timings: { totalMs: 0 },
      reason,
      detail: code || error.message,
    });
  }

  // ClientLeg / TunnelOwner
  log(record: RequestRecord): void {
    this.deps.log(record);
  }

  retry(
    exchange: ProxyExchange,
    host: UpstreamHost,
    kind: 'stale_connection' | 'next_upstream',
    detail: string,
  ): void {
    this.deps.log({
      msg: 'upstream_retry',
      method: exchange.req.method ?? '',
      path: exchange.req.url ?? '',
      upstream: host.address.text,
      kind,
      detail,
      attempt: exchange.attempts + 1,
    });
  }

  ended(item: ProxyExchange | UpgradeTunnel): void {
    if (item instanceof ProxyExchange) this.exchanges.delete(item);
    else this.tunnels.delete(item);
  }
}
