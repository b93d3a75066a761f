/**
 * The L4 (TCP) proxy: one StreamProxy per `stream { server { ... } }` block.
 * Each accepted client becomes a StreamSession bridging it to one upstream
 * server, byte for byte, with backpressure both ways, half-close carried
 * across, resets mirrored, and an idle timeout that ends the session with a
 * FIN, or with a RST both ways like LVS/F5/NLB when
 * reset_timedout_connection is on.
 *
 * Lifecycle: build from the model (constructor) → start (attach to
 * listeners) → drain (wait for live sessions) → stop (reset what is left).
 */
import { connect, isIP, type Socket, type TcpNetConnectOpts } from 'node:net';
import type { Listen, StreamServer } from '../config/model.js';
import {
  compileKeepalive,
  type KeepaliveApplier,
  type KeepaliveFailureLog,
  keepaliveOnFds,
} from '../keepalive/applier.js';
import { type TcpHandle, type TcpHandles, tcpHandles, tcpSocketOf } from '../kernel/node-internals.js';
import { liveStreams } from '../metrics/live.js';
import { type ListenerStats, listenerStats } from '../metrics/stats.js';
import type { Upstream } from '../upstream/index.js';
import { hold, release } from './clock.js';
import type { ConnectionLimiter } from './limits.js';
import { type Listener, SOCKET_HIGH_WATER_MARK } from './listener.js';
import { joinSockets, resetSocket } from './pump.js';
import { HandleSession, handlePeer, resetHandle } from './stream-handles.js';
import { ClientVars, endpoint, SessionCore } from './stream-session.js';
import { type HandshakeFailure, makeTicketKeys, TlsTerminator } from './tls.js';
import { UpstreamTlsClient } from './tls-upstream.js';

export type SessionEndReason =
  | 'client_closed'
  | 'upstream_closed'
  | 'idle_timeout'
  | 'connect_failed'
  | 'client_reset'
  | 'upstream_reset'
  | 'shutdown'
  /** `listen ... ssl`: the client did not complete the TLS handshake (no upstream was tried). */
  | 'tls_handshake_failed';

/** The one log record each session writes when it ends. */
export interface SessionRecord {
  msg: 'session';
  listen: string;
  client: string;
  /** The upstream that carried the session; null if none connected. */
  upstream: string | null;
  upstreamGroup: string;
  /** Connection attempts, including failed ones. */
  tries: number;
  bytesFromClient: number;
  bytesFromUpstream: number;
  durationMs: number;
  idleTimeoutMs: number;
  reason: SessionEndReason;
  /** Why, when the reason alone does not say it (e.g. "no live upstreams", an errno). */
  detail?: string;
}

export interface StreamDeps {
  limiter: ConnectionLimiter;
  log: (record: SessionRecord) => void;
  /** Called once when the session's sockets are all closed. */
  now?: () => number;
  /** A keepalive setting the kernel refused for a socket (the session goes on). */
  keepaliveFailed?: KeepaliveFailureLog;
  /** Session ticket keys of the generation (tls.ts `makeTicketKeys`); absent, each `ssl` server makes its own. */
  ticketKeys?: Buffer;
}

let handlesOff = false;

/**
 * For tests: run plain-TCP sessions on net.Socket (true), as on a Node
 * without the handle internals, or back to what this Node has (false).
 * Read when a stream block starts.
 */
export function forceSocketSessions(on: boolean): void {
  handlesOff = on;
}

export class StreamProxy {
  readonly sessions = new Set<SessionCore>();
  private readonly attached: Listener[] = [];
  private draining = false;
  private idleWaiters: (() => void)[] = [];
  /** so_keepalive of each listen and proxy_socket_keepalive, compiled once for this generation. */
  readonly clientKeepalive = new Map<Listen, KeepaliveApplier>();
  readonly upstreamKeepalive: KeepaliveApplier;
  /** Each listen's counters (src/metrics/stats.ts), kept across reloads. */
  readonly stats = new Map<Listen, ListenerStats>();
  /** `listen ... ssl`: TLS termination of this server's addresses. */
  private readonly tls: TlsTerminator | undefined;
  /** `proxy_ssl on`: TLS toward the upstream. */
  readonly upstreamTls: UpstreamTlsClient | undefined;

  constructor(
    readonly model: StreamServer,
    readonly upstream: Upstream,
    readonly deps: StreamDeps,
  ) {
    if (model.listens.some((l) => l.ssl))
      this.tls = new TlsTerminator(
        { defaultServer: model, serverFor: () => undefined, ticketKeys: deps.ticketKeys ?? makeTicketKeys() },
        {
          secure: (socket) =>
            this.begin(socket, this.tlsListen.get(tcpSocketOf(socket)) ?? model.listens[0]!),
          failed: (socket, failure) => this.handshakeFailed(socket, failure),
        },
      );
    if (model.proxySsl) {
      const pass = model.proxyPass;
      this.upstreamTls = new UpstreamTlsClient(
        model,
        pass.kind === 'group' ? pass.name : pass.address.host,
        model.source,
      );
    }
    for (const listen of model.listens) {
      const applier = compileKeepalive('so_keepalive', listen.soKeepalive, deps.keepaliveFailed);
      this.clientKeepalive.set(listen, applier);
      const stats = listenerStats(listen.address.text, 'stream');
      stats.soKeepalive = applier.value;
      this.stats.set(listen, stats);
    }
    this.upstreamKeepalive = compileKeepalive(
      'proxy_socket_keepalive',
      model.proxySocketKeepalive,
      deps.keepaliveFailed,
    );
  }

  /** Takes over the given listeners (already bound, possibly by a previous configuration). */
  start(listeners: ReadonlyMap<Listen, Listener>): void {
    const handles = handlesOff ? null : tcpHandles;
    for (const [listen, listener] of listeners) {
      listener.handler = (socket) => this.accept(socket, listen);
      // Looked up here, once per listen, not per connection.
      const stats = this.stats.get(listen);
      const keepalive = this.clientKeepalive.get(listen);
      listener.handleHandler =
        handles !== null && listener.takesHandles && this.onHandles(listen)
          ? (client) => this.acceptHandle(client, listen, stats, keepalive, handles)
          : undefined;
      this.attached.push(listener);
    }
    liveStreams.add(this);
  }

  /** Stops taking new sessions from this block; listeners are closed by their owner. */
  detach(): void {
    this.draining = true;
    for (const l of this.attached) {
      l.handler = undefined;
      l.handleHandler = undefined;
    }
    this.attached.length = 0;
    void this.drained().then(() => liveStreams.delete(this));
  }

  /** Resolves when every live session has ended (or at once if none). */
  drained(): Promise<void> {
    if (this.sessions.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Resets every remaining session (reason `shutdown`). */
  stop(): void {
    this.detach();
    for (const s of [...this.sessions]) s.terminate('shutdown');
    this.tls?.stop();
  }

  /**
   * Whether `listen`'s sessions can run on bare TCP handles (stream-handles.ts):
   * plain TCP both ways (no `ssl` on the listen, no proxy_ssl), upstream
   * addresses that need no DNS lookup, and keepalive settable on a
   * descriptor where either leg has it. Otherwise net.Socket, as always.
   */
  private onHandles(listen: Listen): boolean {
    if (listen.ssl || this.upstreamTls !== undefined) return false;
    if (!this.upstream.hosts.every((h) => isIP(h.address.host) !== 0)) return false;
    const keepalive = this.clientKeepalive.get(listen)?.enabled === true || this.upstreamKeepalive.enabled;
    return !keepalive || keepaliveOnFds();
  }

  /** A connection accepted as its TCP handle (no net.Socket): always taken. */
  private acceptHandle(
    client: TcpHandle,
    listen: Listen,
    stats: ListenerStats | undefined,
    keepalive: KeepaliveApplier | undefined,
    handles: TcpHandles,
  ): boolean {
    if (stats !== undefined && !this.draining) stats.accepted++;
    if (this.draining || !this.deps.limiter.tryAcquire()) {
      const peer = handlePeer(client);
      resetHandle(client);
      this.logRefused(
        peer,
        listen.address.text,
        'connect_failed',
        this.draining ? 'shutting down' : `worker_connections (${this.deps.limiter.limit}) reached`,
      );
      return true;
    }
    if (stats !== undefined) stats.handled++;
    // One clock reading for the session's start, its server choice and its connect timer.
    hold();
    try {
      const session = new HandleSession(this, handles, client, listen, stats, keepalive);
      this.sessions.add(session);
      session.begin();
    } finally {
      release();
    }
    return true;
  }

  private accept(client: Socket, listen: Listen): void {
    const listenText = listen.address.text;
    const stats = this.stats.get(listen);
    if (stats !== undefined && !this.draining) stats.accepted++;
    if (this.draining || !this.deps.limiter.tryAcquire()) {
      resetSocket(client);
      this.logUnstarted(
        client,
        listenText,
        'connect_failed',
        this.draining ? 'shutting down' : `worker_connections (${this.deps.limiter.limit}) reached`,
      );
      return;
    }
    if (stats !== undefined) stats.handled++;
    if (listen.ssl && this.tls !== undefined) {
      // The session starts once the client is secure (keepalive then goes on the TCP socket under it).
      this.tlsListen.set(client, listen);
      this.tls.accept(client);
      return;
    }
    this.begin(client, listen);
  }

  private readonly tlsListen = new WeakMap<Socket, Listen>();

  private begin(client: Socket, listen: Listen): void {
    const session = new StreamSession(this, client, listen, this.stats.get(listen));
    this.sessions.add(session);
    session.begin();
  }

  private handshakeFailed(client: Socket, failure: HandshakeFailure): void {
    this.deps.limiter.release();
    this.logUnstarted(
      client,
      (this.tlsListen.get(client) ?? this.model.listens[0]!).address.text,
      'tls_handshake_failed',
      `${failure.kind}: ${failure.detail}`,
    );
  }

  /** The session line of a connection that never reached an upstream: refused, or its TLS handshake failed. */
  private logUnstarted(client: Socket, listen: string, reason: SessionEndReason, detail: string): void {
    this.logRefused(endpoint(client.remoteAddress, client.remotePort), listen, reason, detail);
  }

  private logRefused(client: string, listen: string, reason: SessionEndReason, detail: string): void {
    this.deps.log({
      msg: 'session',
      listen,
      client,
      upstream: null,
      upstreamGroup: this.upstream.name,
      tries: 0,
      bytesFromClient: 0,
      bytesFromUpstream: 0,
      durationMs: 0,
      idleTimeoutMs: this.model.proxyTimeoutMs,
      reason,
      detail,
    });
  }

  /** @internal */
  ended(session: SessionCore): void {
    this.sessions.delete(session);
    this.deps.limiter.release();
    if (this.sessions.size === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}

export class StreamSession extends SessionCore {
  upstreamSocket: Socket | undefined;
  private readonly clientAt: string;

  constructor(
    proxy: StreamProxy,
    readonly client: Socket,
    listen: Listen,
    stats: ListenerStats | undefined,
  ) {
    super(proxy, listen, stats);
    this.clientAt = endpoint(client.remoteAddress, client.remotePort);
  }

  protected get clientText(): string {
    return this.clientAt;
  }

  begin(): void {
    const client = this.client;
    client.on('error', (error: NodeJS.ErrnoException) => this.onClientError(error));
    client.on('close', () => {
      this.clientClosed = true;
      this.maybeFinish();
    });
    this.proxy.clientKeepalive.get(this.listen)?.apply(client);
    this.connectNext();
  }

  /**
   * The variables a `hash` key may name, read from the socket only when the
   * balancer asks: `server_addr` costs a getsockname(2) per session, which
   * round-robin and least_conn never need.
   */
  vars(): Readonly<Record<string, string>> {
    return new ClientVars(this.client) as unknown as Readonly<Record<string, string>>;
  }

  private connectNext(): void {
    if (this.reason !== undefined) return;
    const tries = this.tries;
    const host = tries.next(this);
    if (host === undefined) {
      this.failConnect(tries.attempts === 0 ? 'no live upstreams' : (this.detail ?? 'all tries failed'));
      return;
    }
    const m = this.proxy.model;
    const tls = this.proxy.upstreamTls;
    const socket =
      tls === undefined
        ? connect({
            host: host.address.host,
            port: host.address.port,
            allowHalfOpen: true,
            noDelay: true,
            // Not in @types/node's SocketConstructorOpts, but passed on to Duplex.
            highWaterMark: SOCKET_HIGH_WATER_MARK,
          } as TcpNetConnectOpts)
        : tls.connect(
            { host: host.address.host, port: host.address.port },
            {
              allowHalfOpen: true,
              noDelay: true,
              highWaterMark: SOCKET_HIGH_WATER_MARK,
              ALPNProtocols: undefined,
            },
          );
    this.upstreamSocket = socket;
    this.upstreamClosed = false;
    let connected = false;
    const attemptFailed = (why: string) => {
      tries.stopConnect();
      tries.failed();
      tries.release();
      this.upstreamSocket = undefined;
      this.upstreamClosed = true;
      this.detail = `${host.address.text}: ${why}`;
      if (this.mayRetry()) this.connectNext();
      else this.failConnect(this.detail);
    };
    this.proxy.upstreamKeepalive.apply(socket);
    tries.armConnect(m.proxyConnectTimeoutMs, () => {
      socket.removeAllListeners('error');
      socket.on('error', () => {});
      socket.destroy();
      attemptFailed('connect timed out');
    });
    // proxy_ssl on: connected once the handshake is done (a verify failure is a failed attempt).
    socket.once(tls === undefined ? 'connect' : 'secureConnect', () => {
      connected = true;
      tries.stopConnect();
      tries.succeeded();
      this.host = host;
      this.detail = undefined;
      if (this.reason !== undefined) {
        // Terminated (shutdown) while connecting.
        resetSocket(socket);
        return;
      }
      this.bridge(socket);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (!connected) attemptFailed(error.code ?? error.message);
      else this.onUpstreamError(error);
    });
    socket.on('close', () => {
      // A failed attempt has already moved on (upstreamSocket changed, its
      // slot given back); a socket abandoned while connecting (shutdown) has not.
      if (connected || this.upstreamSocket === socket) {
        tries.release();
        this.upstreamClosed = true;
        this.maybeFinish();
      }
    });
  }

  private failConnect(detail: string): void {
    this.reason ??= 'connect_failed';
    this.detail = detail;
    // The client only learns of the failure now, after every allowed try.
    this.client.destroy();
  }

  private bridge(upstream: Socket): void {
    // Half-close: a FIN from one peer becomes a FIN to the other, and the
    // opposite direction keeps flowing until that peer closes too.
    joinSockets(this.client, upstream, {
      onBytes: (fromClient, n) => {
        if (fromClient) this.bytesFromClient += n;
        else this.bytesFromUpstream += n;
        this.idle.touch();
      },
      onEnd: (fromClient) => {
        this.reason ??= fromClient ? 'client_closed' : 'upstream_closed';
      },
    });
    this.idle.touch();
  }

  protected expire(): void {
    const upstream = this.upstreamSocket;
    if (this.reason !== undefined && this.reason !== 'client_closed' && this.reason !== 'upstream_closed') {
      // Already ending (a reset being passed on) but a socket is still
      // open, e.g. a FIN the peer never reads: proxy_timeout still ends it.
      this.client.destroy();
      upstream?.destroy();
      return;
    }
    this.reason = 'idle_timeout';
    if (this.proxy.model.resetTimedoutConnection) {
      resetSocket(this.client, true);
      if (upstream) resetSocket(upstream, true);
    } else {
      // Nothing is in flight (that is what idle means), so close() sends a FIN.
      this.client.destroy();
      upstream?.destroy();
    }
  }

  private onClientError(error: NodeJS.ErrnoException): void {
    this.reason ??= 'client_reset';
    this.detail ??= error.code ?? error.message;
    // The client's stream broke mid-flight: the upstream must not mistake
    // that for a clean end of data, so it gets a reset as well.
    if (this.upstreamSocket) resetSocket(this.upstreamSocket);
  }

  private onUpstreamError(error: NodeJS.ErrnoException): void {
    this.reason ??= 'upstream_reset';
    this.detail ??= error.code ?? error.message;
    resetSocket(this.client);
  }

  /** Ends the session now with a reset both ways (drain deadline passed). */
  terminate(reason: SessionEndReason): void {
    if (this.reason === undefined || this.reason === 'client_closed' || this.reason === 'upstream_closed')
      this.reason = reason;
    this.tries.stopConnect();
    resetSocket(this.client, true);
    if (this.upstreamSocket) resetSocket(this.upstreamSocket, true);
  }
}
