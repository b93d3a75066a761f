/**
 * Upgrade (WebSocket) tunnels. The request goes up on a fresh connection
 * with its `Upgrade` and `Connection: upgrade` (what nginx needs
 * `proxy_set_header Upgrade $http_upgrade` for); on 101 the two sockets are
 * joined byte for byte with backpressure, `proxy_read_timeout` as the idle
 * timeout of the tunnel (nginx's rule), TCP keepalive as configured on both
 * sockets, and a reset on one side passed on as a reset.
 */
import type { Socket } from 'node:net';
import type { HttpLocation } from '../../config/model.js';
import type { UpstreamHost } from '../../upstream/hosts.js';
import { joinSockets, resetSocket } from '../pump.js';
import type { ClientConnection } from './connection.js';
import type { Route } from './exchange.js';
import { clientResponseHeaders, headerLines, type RequestContext, upstreamRequestHead } from './headers.js';
import type { RequestEndReason, RequestRecord } from './log.js';
import type { ResponseHead } from './parser.js';
import type { ClientRequest } from './request.js';
import type { ConnectionUser, UpstreamConnection } from './transport.js';

export interface TunnelOwner {
  readonly listenText: string;
  readonly serverPort: number;
  log(record: RequestRecord): void;
  ended(tunnel: UpgradeTunnel): void;
}

/** A RST, but never while the socket's FIN is in flight (see resetSocket: Node would leak the socket). */
function reset(socket: Socket): void {
  resetSocket(socket);
}

export class UpgradeTunnel implements ConnectionUser {
  private readonly startedAt = Date.now();
  private readonly ctx: RequestContext;
  private readonly tried = new Set<UpstreamHost>();
  private tries = 0;
  private host: UpstreamHost | undefined;
  /** The host whose active count this tunnel holds. */
  private held: UpstreamHost | undefined;
  private conn: UpstreamConnection | undefined;
  /** The upstream socket once the tunnel is established. */
  upstream: Socket | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private lastActivity = Date.now();
  private status = 0;
  private bytesUp = 0;
  private bytesDown = 0;
  private reason: RequestEndReason | undefined;
  private detail: string | undefined;
  private tunnelled = false;
  private done = false;
  private rejectedResponse = false;
  readonly client: Socket;

  constructor(
    private readonly owner: TunnelOwner,
    private readonly req: ClientRequest,
    conn: ClientConnection,
    private readonly early: Buffer,
    private readonly location: HttpLocation,
    private readonly route: Route,
  ) {
    this.client = conn.socket;
    this.ctx = {
      method: req.method,
      url: req.url,
      head: req,
      remoteAddr: conn.remoteAddr,
      remotePort: conn.remotePort,
      serverPort: owner.serverPort,
      scheme: 'http',
      host: req.host ?? '',
      proxyHost: route.upstream.name,
    };
  }

  start(): void {
    this.client.on('error', (e: NodeJS.ErrnoException) => {
      this.reason ??= 'client_closed';
      this.detail ??= e.code ?? e.message;
      if (this.upstream) reset(this.upstream);
      else this.conn?.destroy();
    });
    this.client.on('close', () => {
      if (!this.tunnelled) this.conn?.destroy();
      this.finish();
    });
    this.connectNext();
  }

  private connectNext(): void {
    const host = this.route.upstream.pick({ remote_addr: this.ctx.remoteAddr }, this.tried);
    const max = this.location.proxyNextUpstreamTries;
    if (host === undefined || (max > 0 && this.tries >= max)) {
      this.fail(502, this.tries === 0 ? 'no live upstreams' : (this.detail ?? 'all tries failed'));
      return;
    }
    this.tried.add(host);
    this.tries++;
    this.host = host;
    this.held = host;
    host.acquire();
    const conn = this.route.pool.open(host, this.location.proxySocketKeepalive, Date.now());
    this.conn = conn;
    conn.user = this;
    conn.requests++;
    conn.parser.expect(this.ctx.method);
    const timeoutMs = this.location.proxyConnectTimeoutMs;
    this.connectTimer = setTimeout(
      () => this.attemptFailed(`connect timed out after ${timeoutMs} ms`),
      timeoutMs,
    );
    conn.socket.write(
      upstreamRequestHead(this.ctx, {
        version: '1.1',
        reuse: false,
        setHeaders: this.location.proxySetHeaders,
        bodyLength: 'none',
        upgrade: this.req.upgrade ?? 'websocket',
      }),
      'latin1',
    );
    if (this.early.length > 0) conn.socket.write(this.early);
    this.armIdle();
  }

  private attemptFailed(detail: string): void {
    clearTimeout(this.connectTimer);
    const host = this.host!;
    host.health.failure(Date.now());
    this.releaseHost();
    this.conn?.destroy();
    this.conn = undefined;
    this.detail = `${host.address.text}: ${detail}`;
    if (this.location.proxyNextUpstream.includes('error')) this.connectNext();
    else this.fail(502, this.detail);
  }

  onUpstreamConnect(): void {
    clearTimeout(this.connectTimer);
  }

  onUpstreamDrain(): void {}

  onInformational(): void {}

  onHead(head: ResponseHead): void {
    this.status = head.statusCode;
    this.host!.health.success();
    const headers = head.statusCode === 101 ? head.rawHeaders : clientResponseHeaders(head.rawHeaders);
    let out = `HTTP/1.1 ${head.statusCode} ${head.statusMessage}\r\n${headerLines(headers)}`;
    if (head.statusCode !== 101) {
      // Refused upgrade: the answer is passed on, framed by the close.
      this.rejectedResponse = true;
      out += 'Connection: close\r\n';
    }
    this.client.write(`${out}\r\n`, 'latin1');
  }

  onBody(chunk: Buffer): void {
    this.bytesDown += chunk.length;
    this.client.write(chunk);
  }

  onComplete(_trailers: string[], rest: Buffer | undefined): void {
    const conn = this.conn!;
    if (this.rejectedResponse) {
      this.reason = 'ok';
      this.releaseHost();
      conn.destroy();
      this.client.end();
      return;
    }
    // 101: from here on the connection is a byte stream, not HTTP.
    this.upstream = conn.socket;
    conn.user = undefined;
    conn.socket.removeAllListeners('drain');
    conn.socket.removeAllListeners('end');
    conn.socket.removeAllListeners('close');
    conn.socket.removeAllListeners('error');
    this.tunnelled = true;
    if (rest !== undefined) {
      this.bytesDown += rest.length;
      this.client.write(rest);
    }
    this.join(this.client, conn);
  }

  onConnectionError(error: Error): void {
    const code = (error as NodeJS.ErrnoException).code ?? error.message;
    if (this.status === 0) {
      this.attemptFailed(code);
      return;
    }
    this.reason ??= 'upstream_reset';
    this.detail ??= code;
    reset(this.client);
  }

  private join(client: Socket, conn: UpstreamConnection): void {
    const upstream = conn.socket;
    joinSockets(client, upstream, {
      onBytes: (fromClient, n) => {
        if (fromClient) this.bytesUp += n;
        else this.bytesDown += n;
        this.lastActivity = Date.now();
      },
      onEnd: (fromClient) => {
        if (fromClient) this.reason ??= 'client_closed';
        else {
          this.reason ??= 'ok';
          this.detail ??= 'upstream closed the tunnel';
        }
      },
    });
    upstream.on('error', (e: NodeJS.ErrnoException) => {
      this.reason ??= 'upstream_reset';
      this.detail ??= e.code ?? e.message;
      reset(client);
    });
    upstream.on('close', () => {
      this.releaseHost();
      if (!client.destroyed && client.writableFinished) client.destroy();
    });
    client.on('close', () => upstream.destroy());
  }

  private releaseHost(): void {
    this.held?.release();
    this.held = undefined;
  }

  private armIdle(): void {
    const timeoutMs = this.location.proxyReadTimeoutMs;
    const check = () => {
      const idle = Date.now() - this.lastActivity;
      if (idle < timeoutMs) {
        this.idleTimer = setTimeout(check, timeoutMs - idle);
        return;
      }
      this.reason = this.status === 0 ? 'upstream_timeout' : 'ok';
      this.detail = `tunnel idle for ${timeoutMs} ms (proxy_read_timeout)`;
      if (this.status === 0) {
        this.fail(504, this.detail);
        return;
      }
      this.client.destroy();
      this.upstream?.destroy();
      this.conn?.destroy();
    };
    this.idleTimer = setTimeout(check, timeoutMs);
  }

  private fail(status: number, detail: string): void {
    this.reason =
      status === 504 ? 'upstream_timeout' : this.tries === 0 ? 'no_live_upstreams' : 'connect_failed';
    this.detail = detail;
    this.status = status;
    const text = status === 504 ? 'Gateway Timeout' : 'Bad Gateway';
    const body = `${status} ${text}\n`;
    this.client.end(
      `HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
      'latin1',
    );
    this.conn?.destroy();
  }

  /** Shutdown deadline. */
  terminate(): void {
    this.reason = 'shutdown';
    reset(this.client);
    if (this.upstream) reset(this.upstream);
    this.conn?.destroy();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.idleTimer);
    clearTimeout(this.connectTimer);
    this.releaseHost();
    if (!this.location.accessLog) {
      this.owner.ended(this);
      return;
    }
    const record: RequestRecord = {
      msg: 'request',
      listen: this.owner.listenText,
      client: `${this.ctx.remoteAddr}:${this.ctx.remotePort}`,
      method: this.ctx.method,
      path: this.ctx.url,
      host: this.ctx.host,
      status: this.status,
      bytesSent: this.bytesDown,
      bytesReceived: this.bytesUp,
      upstream: this.host ? this.host.address.text : null,
      upstreamConnect: this.tries > 0 ? 'new' : null,
      tries: this.tries,
      retries: Math.max(0, this.tries - 1),
      timings: { totalMs: Date.now() - this.startedAt },
      reason: this.reason ?? 'client_closed',
    };
    if (this.status !== 0) record.upstreamStatus = this.status;
    if (this.detail !== undefined) record.detail = this.detail;
    this.owner.log(record);
    this.owner.ended(this);
  }
}
