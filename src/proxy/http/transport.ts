/**
 * Upstream connections and the keep-alive cache of an upstream group
 * (nginx's ngx_http_upstream_keepalive_module): at most `keepalive N` idle
 * connections for the whole group, the least recently used evicted first;
 * a connection leaves the cache after `keepalive_timeout` idle, after
 * `keepalive_requests` requests or once older than `keepalive_time`; the
 * upstream's `Connection: close` is obeyed and its `Keep-Alive: timeout=N`
 * hint shortens the idle time so keepwire closes first.
 */
import { connect, isIP, type Socket, type TcpNetConnectOpts } from 'node:net';
import type { HttpUpstreamGroup } from '../../config/model.js';
import { type KeepaliveApplier, keepaliveOnFds } from '../../keepalive/applier.js';
import { type TcpHandles, tcpHandles } from '../../kernel/node-internals.js';
import { noteEvent, type UpstreamStats } from '../../metrics/stats.js';
import type { UpstreamHost } from '../../upstream/hosts.js';
import { Deadline } from '../deadline.js';
import { SOCKET_HIGH_WATER_MARK } from '../listener.js';
import { handView, READ_BUFFER } from '../reads.js';
import { UpstreamHandshakeError, type UpstreamTlsClient } from '../tls-upstream.js';
import { resetBehindEnd, uvError } from '../writes.js';
import { type ConnectingUser, connectWire, type HandleWire } from './handle-wire.js';
import { type ParserSink, type ResponseHead, ResponseParser } from './parser.js';
import { type ClientWire, SocketWire } from './wire.js';

/**
 * How long before the upstream's advertised keep-alive timeout a connection
 * is given up: a request written in the last moments could cross the
 * upstream's FIN on the wire (undici uses the same 1 s margin).
 */
export const KEEPALIVE_HINT_MARGIN_MS = 1000;

/** What an exchange in flight receives from its connection. */
export interface ConnectionUser extends ParserSink {
  /** The connection failed or closed before the response completed. */
  onConnectionError(error: Error): void;
  /** A new connection is established (the request starts going out). */
  onUpstreamConnect(): void;
  /** The socket accepted more request bytes after a full write buffer. */
  onUpstreamDrain(): void;
  /** One read from the upstream was parsed (what it produced can be written out together). */
  onReadDone?(): void;
  /** The read timer (`armReadTimer`) ran out: the ms still left, or 0 once the user gave up. */
  onReadTimer?(): number;
}

export type PoolSettings = Pick<
  HttpUpstreamGroup,
  'keepalive' | 'keepaliveTimeoutMs' | 'keepaliveRequests' | 'keepaliveTimeMs'
>;

/**
 * For tests: open plain upstream connections as net.Sockets (true), as on a
 * Node without the handle internals, or back to what this Node has (false).
 * Read when a connection opens (http/server.ts `forceSocketConnections`
 * sets it with the client side's).
 */
export function forceSocketUpstreams(on: boolean): void {
  socketUpstreams = on;
}
let socketUpstreams = false;

export class UpstreamConnection implements ParserSink, ConnectingUser {
  /**
   * What the exchange writes to, pauses and resumes: a plain TCP
   * connection's bare libuv handle (`HandleWire`, where Node has the
   * internals and the address is an IP literal: no net.Socket, whose read
   * callback and Writable state were about 3 % of the proxy's user time,
   * docs/performance.md), else its net.Socket (TLS, host names, another
   * Node).
   */
  readonly wire: ClientWire;
  /** The wire as a handle (undefined on a socket). */
  private readonly handleWire: HandleWire | undefined;
  /** The net.Socket (undefined on a handle). */
  private readonly sock: Socket | undefined;
  readonly parser: ResponseParser;
  readonly createdAt: number;
  /** Requests started on this connection. */
  requests = 0;
  idleSince = 0;
  /** Idle limit for this stay in the cache (the pool's, or less after a hint). */
  idleLimitMs = 0;
  user: ConnectionUser | undefined;
  connected = false;
  /** The peer closed, reset, or we destroyed it: never reusable. */
  dead = false;
  /** The upstream asked to close after this response (or framing needs close). */
  closeAfter = false;
  /** The proxy_socket_keepalive value the socket carries (`off`, `30s:10s:3`). */
  keepalive: string;
  /** @internal the cache's idle limit (keepalive_timeout or the upstream's hint) */
  readonly idleDeadline = new Deadline<UpstreamConnection>(this, this.onIdleExpired, 0, true);
  /** @internal */ pool: GroupPool | undefined;
  private readonly readDeadline = new Deadline<UpstreamConnection>(this, this.onReadTimer);

  constructor(
    readonly host: UpstreamHost,
    keepalive: KeepaliveApplier,
    now: number,
    /** `proxy_pass https://`: TLS over the TCP connection; 'connected' once the handshake is done. */
    tls?: UpstreamTlsClient,
    /** Open it as a bare TCP handle (plain TCP to an IP literal; GroupPool.open decides). */
    handles?: TcpHandles,
  ) {
    this.createdAt = now;
    this.parser = new ResponseParser(this);
    this.keepalive = keepalive.value;
    if (handles !== undefined) {
      this.sock = undefined;
      this.handleWire = this.openHandle(handles, keepalive);
      this.wire = this.handleWire;
      return;
    }
    this.handleWire = undefined;
    let socket: Socket;
    if (tls === undefined) {
      socket = connect({
        host: host.address.host,
        port: host.address.port,
        noDelay: true,
        highWaterMark: SOCKET_HIGH_WATER_MARK,
        // Reads skip the Readable stream machinery (see ../reads.ts).
        onread: {
          buffer: READ_BUFFER,
          callback: (n: number): boolean => {
            // A view, valid during the call: the parser makes strings of the head, and
            // what is kept past the read (a partial head, body bytes a write holds) is copied.
            handView(n, this.onData, this);
            return true;
          },
        },
      } as TcpNetConnectOpts);
    } else {
      socket = tls.connect(
        { host: host.address.host, port: host.address.port },
        { noDelay: true, highWaterMark: SOCKET_HIGH_WATER_MARK },
      );
      socket.on('data', (chunk: Buffer) => this.onData(chunk));
    }
    this.sock = socket;
    this.wire = new SocketWire(socket);
    // Settings asked for before connect are applied by keepwire's backend
    // once the descriptor exists (DESIGN §2), so no wait for 'connect'; on
    // TLS they go on the TCP socket under it.
    keepalive.apply(socket);
    let tcpUp = false;
    socket.once('connect', () => {
      tcpUp = true;
    });
    socket.once(tls === undefined ? 'connect' : 'secureConnect', () => {
      this.connected = true;
      this.user?.onUpstreamConnect();
    });
    socket.on('error', (error: Error) =>
      // A failure between TCP connect and the end of the handshake is the handshake's (verify, protocol, alert).
      this.onPeerGone(
        tls !== undefined && tcpUp && !this.connected ? new UpstreamHandshakeError(error) : error,
      ),
    );
    socket.on('drain', () => this.user?.onUpstreamDrain());
    socket.on('end', () =>
      // libuv reports data then RST as an end (see resetBehindEnd): a body
      // framed by the connection's close must not complete on a reset.
      this.onPeerGone(resetBehindEnd(socket) ?? 'upstream closed the connection'),
    );
    socket.on('close', () => this.onPeerGone('upstream connection closed'));
  }

  /**
   * A TCP handle connecting to the host. The request written before the
   * connect completes waits in libuv's queue, written once connected, as a
   * socket's Writable holds it.
   */
  private openHandle(handles: TcpHandles, keepalive: KeepaliveApplier): HandleWire {
    const { host: address, port } = this.host.address;
    const { wire, error } = connectWire(handles, this, address, port);
    if (error !== 0) {
      // Told as a socket tells it: after the caller has taken the connection.
      process.nextTick(() => this.onPeerGone(uvError(error, 'connect')));
      return wire;
    }
    if (keepalive.enabled) keepalive.applyFd(wire.handle.fd, this.host.address.text);
    return wire;
  }

  /** @internal the handle's connect completed with `status` (0, or a negative errno). */
  onConnect(status: number): void {
    const wire = this.handleWire!;
    if (status < 0) {
      this.onPeerGone(uvError(status, 'connect'));
      return;
    }
    // A handle that cannot read is closed by `start` (then onClose).
    if (!wire.start()) return;
    this.connected = true;
    this.user?.onUpstreamConnect();
  }

  // WireUser: what the handle tells its connection.
  /** @internal */
  handleRead(n: number): void {
    // A view, valid during the call, as the socket's onread above.
    handView(n, this.onData, this);
  }
  /** @internal */
  onEnd(): void {
    // libuv reports data then RST as EOF: a body framed by the close must not complete on a reset.
    const reset = this.handleWire!.resetBehindEof();
    this.onPeerGone(reset === 0 ? 'upstream closed the connection' : uvError(reset, 'read'));
  }
  /** @internal */
  onDrain(): void {
    this.user?.onUpstreamDrain();
  }
  /** @internal */
  onClose(): void {
    this.onPeerGone(this.failure ?? 'upstream connection closed');
  }
  /**
   * @internal A read or write failed; the handle closes next. Told with the
   * close, after the call that failed, as a socket's 'error' comes: a write
   * refused at once is inside the exchange's own write.
   */
  onError(status: number, syscall: 'read' | 'write'): void {
    this.failure ??= uvError(status, syscall);
  }
  private failure: Error | undefined;

  /** The connection as the status page and keepalive read a socket. */
  get socket(): Socket {
    return this.sock ?? this.handleWire!.view();
  }

  /**
   * Calls the user's `onReadTimer` in `ms` at the latest. One timer per
   * connection serves every exchange on it: a request on a busy connection
   * moves no timer, the timer asks its user how much time is left when it
   * fires (proxy_read_timeout counts from the last read) and sleeps again.
   */
  armReadTimer(ms: number): void {
    this.readDeadline.arm(ms);
  }

  /**
   * The connection has no exchange any more (cached idle, or gone). The read
   * timer is ref'd: left armed on a connection that then closed, it kept the
   * process alive for up to proxy_read_timeout after `stopped`.
   */
  stopReadTimer(): void {
    this.readDeadline.cancel();
  }

  private onReadTimer(): void {
    const left = this.user?.onReadTimer?.() ?? 0;
    if (left > 0 && !this.dead) this.readDeadline.arm(left);
  }

  private onIdleExpired(): void {
    // Taken from the cache since (the deadline is left to lapse, not cleared per request).
    if (this.pool !== undefined && !this.dead) {
      this.pool.idleExpired(this);
      this.destroy();
    }
  }

  /** Switches the socket's TCP keepalive when a location with other settings reuses it. */
  ensureKeepalive(keepalive: KeepaliveApplier): void {
    if (keepalive.value === this.keepalive) return;
    this.keepalive = keepalive.value;
    keepalive.reapply(this.socket);
  }

  private onData(chunk: Buffer): void {
    const user = this.user;
    if (user === undefined || this.parser.idle) {
      // Bytes nobody asked for: the connection's framing can no longer be trusted.
      this.destroy();
      return;
    }
    try {
      this.parser.execute(chunk);
      if (this.user === user) user.onReadDone?.();
    } catch (error) {
      this.dead = true;
      this.user = undefined;
      this.wire.destroy();
      user.onConnectionError(error as Error);
    }
  }

  /**
   * The connection is gone: `error`, or the message of the UpstreamClosedError
   * made only when a user is told (an Error's stack trace costs more than a
   * cached connection's whole close, which is most closes).
   */
  private onPeerGone(error: Error | string): void {
    const wasDead = this.dead;
    this.dead = true;
    this.pool?.remove(this);
    const user = this.user;
    if (user === undefined) {
      this.stopReadTimer();
      this.idleDeadline.cancel();
      if (!wasDead) this.wire.destroy();
      return;
    }
    // A body framed by the connection's end completes here.
    if (typeof error === 'string' && this.parser.finish()) return;
    this.user = undefined;
    this.wire.destroy();
    user.onConnectionError(typeof error === 'string' ? new UpstreamClosedError(error) : error);
  }

  // ParserSink: forwarded to the exchange using the connection.
  onInformational(head: ResponseHead): void {
    this.user?.onInformational(head);
  }

  onHead(head: ResponseHead): void {
    if (head.close) this.closeAfter = true;
    if (head.keepAliveHintMs !== undefined) this.hintMs = head.keepAliveHintMs;
    this.user?.onHead(head);
  }

  onBody(chunk: Buffer): void {
    this.user?.onBody(chunk);
  }

  onComplete(trailers: readonly string[], rest: Buffer | undefined): void {
    const user = this.user;
    if (rest !== undefined && rest.length > 0) {
      // Data beyond the response (other than after a 101) breaks reuse.
      this.closeAfter = true;
    }
    user?.onComplete(trailers, rest);
  }

  /**
   * Hands the socket over after a 101: from here on it carries the tunnel's
   * bytes, not HTTP. The connection lets go of it (no timers, no listeners,
   * never cached); the caller must take its reads at once (`readsTo`). A
   * handle gets a net.Socket made over it (as a client connection's does).
   */
  takeSocket(): Socket {
    this.dead = true;
    this.user = undefined;
    this.idleDeadline.cancel();
    this.readDeadline.cancel();
    this.pool?.remove(this);
    if (this.handleWire !== undefined) return this.handleWire.handOver(SOCKET_HIGH_WATER_MARK);
    const socket = this.sock!;
    for (const event of ['connect', 'drain', 'end', 'error', 'close']) socket.removeAllListeners(event);
    return socket;
  }

  /** The upstream's Keep-Alive timeout hint from the last response. */
  hintMs: number | undefined;

  destroy(): void {
    this.dead = true;
    this.user = undefined;
    this.idleDeadline.cancel();
    this.stopReadTimer();
    this.pool?.remove(this);
    this.wire.destroy();
  }
}

export class UpstreamClosedError extends Error {
  override name = 'UpstreamClosedError';
  code = 'EOF';
}

/**
 * The keep-alive cache of one upstream group, shared by every location that
 * proxies to it. Idle connections are kept per host, newest last (reused
 * first, so a quiet period lets the older ones time out).
 */
export class GroupPool {
  private readonly idle = new Map<UpstreamHost, UpstreamConnection[]>();
  /** The stack of the host used last: most groups have one server, found then without a Map lookup per take and release. */
  private lastHost: UpstreamHost | undefined;
  private lastStack: UpstreamConnection[] | undefined;
  private idleCount = 0;
  /** Connections opened (for tests and logs). */
  opened = 0;

  constructor(
    readonly settings: PoolSettings,
    /** The group's counters (idle-timeout closes). */
    readonly stats?: UpstreamStats,
    /** `proxy_pass https://`: every connection of this cache speaks TLS with these settings. */
    readonly tls?: UpstreamTlsClient,
  ) {}

  /** The cached connections, for the status page. */
  *idleConnections(): Iterable<UpstreamConnection> {
    for (const stack of this.idle.values()) yield* stack;
  }

  /** @internal A cached connection outlived its idle limit and is closed. */
  idleExpired(conn: UpstreamConnection): void {
    const stats = this.stats;
    if (stats === undefined) return;
    stats.idleTimeouts++;
    noteEvent(
      'upstream_idle_timeout',
      stats.upstream,
      `${conn.host.address.text} idle for ${conn.idleLimitMs} ms (keepalive_timeout)`,
    );
  }

  get size(): number {
    return this.idleCount;
  }

  /** A cached connection to `host` that is still usable, newest first. */
  take(host: UpstreamHost, now: number): UpstreamConnection | undefined {
    const stack = this.stackOf(host);
    if (stack === undefined) return undefined;
    while (stack.length > 0) {
      const conn = stack.pop()!;
      this.idleCount--;
      conn.pool = undefined;
      if (
        conn.dead ||
        conn.wire.destroyed ||
        now - conn.idleSince >= conn.idleLimitMs ||
        now - conn.createdAt >= this.settings.keepaliveTimeMs
      ) {
        if (!conn.dead && !conn.wire.destroyed && now - conn.idleSince >= conn.idleLimitMs)
          this.idleExpired(conn);
        conn.destroy();
        continue;
      }
      return conn;
    }
    return undefined;
  }

  open(host: UpstreamHost, keepalive: KeepaliveApplier, now: number): UpstreamConnection {
    this.opened++;
    // A bare handle for plain TCP to an IP literal, where keepalive (if set) can go on its descriptor.
    const handles =
      this.tls === undefined &&
      !socketUpstreams &&
      tcpHandles !== null &&
      isIP(host.address.host) !== 0 &&
      (!keepalive.enabled || keepaliveOnFds())
        ? tcpHandles
        : undefined;
    return new UpstreamConnection(host, keepalive, now, this.tls, handles);
  }

  /** Whether a connection that just finished a response may serve another. */
  reusable(conn: UpstreamConnection, now: number): boolean {
    const s = this.settings;
    return (
      !this.closed &&
      s.keepalive > 0 &&
      !conn.dead &&
      !conn.closeAfter &&
      conn.requests < s.keepaliveRequests &&
      now - conn.createdAt < s.keepaliveTimeMs &&
      this.idleLimit(conn) > 0
    );
  }

  private idleLimit(conn: UpstreamConnection): number {
    let limit = this.settings.keepaliveTimeoutMs;
    if (conn.hintMs !== undefined) limit = Math.min(limit, conn.hintMs - KEEPALIVE_HINT_MARGIN_MS);
    return limit;
  }

  /** Puts a connection whose exchange finished cleanly into the cache, or closes it. */
  release(conn: UpstreamConnection, now: number): void {
    conn.user = undefined;
    // O(1) with Deadline's timer lists: no Node timer is cleared here or made by the next request.
    conn.stopReadTimer();
    if (!this.reusable(conn, now)) {
      conn.destroy();
      return;
    }
    if (this.idleCount >= this.settings.keepalive) this.evictOldest();
    conn.idleSince = now;
    conn.idleLimitMs = this.idleLimit(conn);
    conn.pool = this;
    let stack = this.stackOf(conn.host);
    if (stack === undefined) {
      stack = [];
      this.idle.set(conn.host, stack);
    }
    stack.push(conn);
    this.idleCount++;
    // A busy connection moves this deadline, never its timer, per request.
    conn.idleDeadline.arm(conn.idleLimitMs);
  }

  /** The idle stack of `host` (stacks are never removed from `idle`, so the one remembered stays its stack). */
  private stackOf(host: UpstreamHost): UpstreamConnection[] | undefined {
    if (host === this.lastHost) return this.lastStack;
    const stack = this.idle.get(host);
    if (stack !== undefined) {
      this.lastHost = host;
      this.lastStack = stack;
    }
    return stack;
  }

  private evictOldest(): void {
    let oldest: UpstreamConnection | undefined;
    for (const stack of this.idle.values()) {
      const c = stack[0];
      if (c !== undefined && (oldest === undefined || c.idleSince < oldest.idleSince)) oldest = c;
    }
    oldest?.destroy();
  }

  /** @internal Drops a connection from the cache (it closed or is being destroyed). */
  remove(conn: UpstreamConnection): void {
    if (conn.pool !== this) return;
    conn.pool = undefined;
    const stack = this.idle.get(conn.host);
    if (stack === undefined) return;
    const i = stack.indexOf(conn);
    if (i >= 0) {
      stack.splice(i, 1);
      this.idleCount--;
    }
  }

  private closed = false;

  /** Closes the cached connections; connections still busy are closed when released. */
  close(): void {
    this.closed = true;
    for (const stack of this.idle.values()) for (const c of [...stack]) c.destroy();
  }
}
