/**
 * The HTTP/2 connections of `grpc_pass` to the servers of one upstream group
 * (one pool per group and TLS setting, as the HTTP keep-alive caches): Node's
 * `http2.connect` (nghttp2), one connection carrying many calls.
 *
 *   - A call takes a slot on a connection whose streams in flight are below
 *     the server's SETTINGS_MAX_CONCURRENT_STREAMS; when every connection to
 *     that server is full, a new one is opened (nghttp2 would otherwise queue
 *     the stream inside the connection, unseen). A new connection is ready
 *     at the server's first SETTINGS (its limit known): calls waiting on it
 *     over that limit are handed back to take another connection.
 *   - A connection without calls is closed after the group's
 *     `keepalive_timeout`; one told GOAWAY takes no new calls.
 *   - `grpc_ping_interval` / `_timeout` / `_without_calls`: PING keepalive
 *     (http2/ping.ts), gRPC's keepalive_time / keepalive_timeout /
 *     keepalive_permit_without_calls. A GOAWAY ENHANCE_YOUR_CALM with debug
 *     data "too_many_pings" doubles the interval for that server from then
 *     on, logged: gRFC A8 (client-side keepalive) and grpc-go
 *     (internal/transport/http2_client.go handleGoAway: "log the occurrence
 *     ... and double the configure[d] KEEPALIVE_TIME used for new
 *     connections"); keepwire also applies it to that server's other open
 *     connections, which the same policy would refuse next.
 */
import {
  type ClientHttp2Session,
  type ClientSessionOptions,
  constants,
  connect as h2connect,
} from 'node:http2';
import { type Socket, connect as tcpConnect } from 'node:net';
import type { KeepaliveApplier } from '../../keepalive/applier.js';
import type { UpstreamStats } from '../../metrics/stats.js';
import type { UpstreamHost } from '../../upstream/hosts.js';
import { Deadline } from '../deadline.js';
import type { GrpcUpstreamRecord } from '../http/log.js';
import { PingKeepalive } from '../http2/ping.js';
import type { UpstreamTlsClient } from '../tls-upstream.js';

const { NGHTTP2_ENHANCE_YOUR_CALM } = constants;

/** Streams allowed on a connection before its server's SETTINGS say how many (RFC 9113 §6.5.2 recommends ≥ 100). */
const BEFORE_SETTINGS = 100;

/** The PING keepalive of a location (grpc_ping_*); interval 0: off. */
export interface PingSettings {
  intervalMs: number;
  timeoutMs: number;
  withoutCalls: boolean;
}

/** A call waiting for a connection to be ready. */
export interface SlotWaiter {
  /** The connection is ready (SETTINGS received): open the stream. */
  onSlotReady(conn: Http2Upstream): void;
  /** The connection is full under its server's limit: take another (the slot was given back). */
  onSlotBounced(): void;
  /** The connection failed before it was ready. */
  onSlotFailed(error: Error): void;
}

export class Http2Upstream {
  readonly session: ClientHttp2Session;
  readonly socket: Socket;
  /** Calls holding a slot (streams open, or waiting for the connection to be ready). */
  active = 0;
  ready = false;
  /** GOAWAY received or sent: no new calls. */
  closing = false;
  /** Calls that made the connection and wait for it. */
  private waiters: SlotWaiter[] = [];
  private readonly idle: Deadline<Http2Upstream>;
  /** The PING keepalive (grpc_ping_interval); undefined when off. */
  ping: PingKeepalive | undefined;
  /** When the connection last had no call (metrics: idle before reuse). */
  idleSince = Date.now();
  /** The keepalive setting on its socket (grpc_socket_keepalive of the location that opened it, or last reused it). */
  keepalive: KeepaliveApplier;
  /** Calls served (the first one opened it). */
  calls = 0;
  /** Why the connection failed, when it did. */
  private error: Error | undefined;

  constructor(
    private readonly pool: GrpcPool,
    readonly host: UpstreamHost,
    keepalive: KeepaliveApplier,
    ping: PingSettings,
  ) {
    this.keepalive = keepalive;
    const { address } = host;
    const tls = pool.tls;
    const socket: Socket =
      tls === undefined
        ? tcpConnect({ host: address.host, port: address.port })
        : tls.connect({ host: address.host, port: address.port }, { ALPNProtocols: ['h2'] });
    socket.setNoDelay(true);
    keepalive.apply(socket);
    this.socket = socket;
    const options: ClientSessionOptions = {
      createConnection: () => socket,
      // Room for gRPC's metadata (grpc-go and grpc-core advertise 16 KiB and up).
      maxHeaderListPairs: 2000,
      settings: { enablePush: false },
    };
    const authority = `${tls === undefined ? 'http' : 'https'}://${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;
    this.session = h2connect(authority, options);
    this.idle = new Deadline<Http2Upstream>(this, this.idleExpired, 0, true);
    const session = this.session;
    session.on('remoteSettings', () => this.settled());
    session.on('goaway', (code: number, _last: number, data?: Buffer) => this.goaway(code, data));
    // The cause is kept for the calls waiting (ECONNREFUSED, a TLS failure); 'close' follows.
    session.on('error', (error: Error) => {
      this.error ??= error;
    });
    socket.on('error', (error: Error) => {
      this.error ??= error;
    });
    session.on('close', () => this.closed());
    if (ping.intervalMs > 0) {
      const interval = pool.pingIntervalFor(host, ping.intervalMs);
      this.ping = new PingKeepalive(
        session,
        () => socket.bytesRead,
        interval,
        ping.timeoutMs,
        () => this.pingTimedOut(ping.timeoutMs),
        () => this.active > 0 || ping.withoutCalls,
      );
    }
  }

  /** Streams this connection may carry at once: the server's SETTINGS_MAX_CONCURRENT_STREAMS. */
  get capacity(): number {
    if (!this.ready) return BEFORE_SETTINGS;
    return this.session.remoteSettings.maxConcurrentStreams ?? BEFORE_SETTINGS;
  }

  get usable(): boolean {
    return !this.closing && !this.session.destroyed && !this.session.closed;
  }

  /** A call takes a slot; `waiter` hears when the connection is ready (now, if it is). */
  reserve(waiter: SlotWaiter): void {
    this.active++;
    this.calls++;
    this.idle.cancel();
    if (this.ready) waiter.onSlotReady(this);
    else this.waiters.push(waiter);
  }

  /** A call gives its slot back (its stream closed, or it stopped waiting). */
  release(waiter?: SlotWaiter): void {
    if (waiter !== undefined) {
      const i = this.waiters.indexOf(waiter);
      if (i >= 0) this.waiters.splice(i, 1);
    }
    this.active--;
    if (this.active > 0) return;
    this.idleSince = Date.now();
    if (!this.ready && this.waiters.length === 0) {
      // Nobody waits for a connection still being made (their connect timers ran out).
      this.destroy();
      return;
    }
    if (this.closing) {
      this.destroy();
      return;
    }
    this.idle.arm(this.pool.keepaliveTimeoutMs);
  }

  /** Something came from the server (a call's frame): the PING keepalive's quiet time starts again. */
  heard(): void {
    this.ping?.heard();
  }

  private settled(): void {
    this.heard();
    if (this.ready) return;
    this.ready = true;
    const waiters = this.waiters;
    this.waiters = [];
    const room = this.capacity;
    let taken = 0;
    for (const w of waiters) {
      if (taken < room) {
        taken++;
        w.onSlotReady(this);
      } else {
        this.active--;
        w.onSlotBounced();
      }
    }
    if (this.active === 0) this.idle.arm(this.pool.keepaliveTimeoutMs);
  }

  private goaway(code: number, data: Buffer | undefined): void {
    this.closing = true;
    const text = data === undefined ? '' : data.toString('latin1');
    if (code === NGHTTP2_ENHANCE_YOUR_CALM && text === 'too_many_pings') this.pool.tooManyPings(this.host);
    if (this.active === 0) this.destroy();
  }

  private idleExpired(): void {
    if (this.active > 0) return;
    this.pool.stats.idleTimeouts++;
    this.closing = true;
    this.destroy();
  }

  private pingTimedOut(timeoutMs: number): void {
    this.pool.log({
      msg: 'grpc_ping_timeout',
      upstream: this.host.address.text,
      detail: `no PING ACK within grpc_ping_timeout (${timeoutMs} ms): connection closed with ${this.active} call(s) in flight`,
    });
    this.closing = true;
    this.session.destroy(new Error(`no PING ACK within grpc_ping_timeout (${timeoutMs} ms)`));
  }

  /** PINGs sent on this connection so far. */
  get pingsSent(): number {
    return this.ping?.sent ?? 0;
  }

  /** Graceful: no new calls, closes when the last one is done. */
  close(): void {
    this.closing = true;
    if (this.active === 0) this.destroy();
    else if (!this.session.closed) this.session.close();
  }

  destroy(): void {
    this.closing = true;
    this.idle.cancel();
    this.ping?.cancel();
    if (!this.session.destroyed) this.session.destroy();
    if (!this.socket.destroyed) this.socket.destroy();
  }

  private closed(): void {
    this.closing = true;
    this.idle.cancel();
    this.ping?.cancel();
    this.pool.forget(this);
    const waiters = this.waiters;
    this.waiters = [];
    const error = this.error ?? new Error('connection closed before its SETTINGS');
    for (const w of waiters) w.onSlotFailed(error);
    if (!this.socket.destroyed) this.socket.destroy();
  }
}

export class GrpcPool {
  private readonly byHost = new Map<UpstreamHost, Http2Upstream[]>();
  /** PING intervals doubled by a server's too_many_pings, per server, for this generation. */
  private readonly pingIntervals = new Map<UpstreamHost, number>();
  private closed = false;

  constructor(
    /** The group's keepalive_timeout: a connection without calls is closed after it. */
    readonly keepaliveTimeoutMs: number,
    readonly stats: UpstreamStats,
    readonly tls: UpstreamTlsClient | undefined,
    readonly log: (record: GrpcUpstreamRecord) => void,
  ) {}

  /**
   * A connection to `host` with a free slot, or a new one; `waiter` takes a
   * slot on it and hears when it is ready. `fresh`: whether a new connection
   * was opened (the caller's connect timer runs then).
   */
  take(
    host: UpstreamHost,
    keepalive: KeepaliveApplier,
    ping: PingSettings,
    waiter: SlotWaiter,
  ): { conn: Http2Upstream; fresh: boolean } {
    let list = this.byHost.get(host);
    if (list === undefined) {
      list = [];
      this.byHost.set(host, list);
    }
    for (const conn of list) {
      if (!conn.usable || conn.active >= conn.capacity) continue;
      if (conn.ready) {
        this.stats.connectionsReused++;
        if (conn.active === 0) this.stats.idleBeforeReuse.observe((Date.now() - conn.idleSince) / 1000);
        if (conn.keepalive !== keepalive) {
          keepalive.reapply(conn.socket);
          conn.keepalive = keepalive;
        }
      }
      conn.reserve(waiter);
      return { conn, fresh: !conn.ready };
    }
    this.stats.connectionsNew++;
    const conn = new Http2Upstream(this, host, keepalive, ping);
    list.push(conn);
    if (this.closed) conn.closing = true;
    conn.reserve(waiter);
    return { conn, fresh: true };
  }

  /** The PING interval for `host`: the configured one, or what its too_many_pings made of it. */
  pingIntervalFor(host: UpstreamHost, configuredMs: number): number {
    return Math.max(configuredMs, this.pingIntervals.get(host) ?? 0);
  }

  /** GOAWAY ENHANCE_YOUR_CALM "too_many_pings" from `host`: its PING interval doubles (grpc-go). */
  tooManyPings(host: UpstreamHost): void {
    const conns = this.byHost.get(host) ?? [];
    const current = Math.max(this.pingIntervals.get(host) ?? 0, ...conns.map((c) => c.ping?.intervalMs ?? 0));
    if (current === 0) return;
    const doubled = current * 2;
    this.pingIntervals.set(host, doubled);
    for (const c of conns) if (c.ping !== undefined) c.ping.intervalMs = doubled;
    this.log({
      msg: 'grpc_too_many_pings',
      upstream: host.address.text,
      pingIntervalMs: doubled,
      detail: `GOAWAY ENHANCE_YOUR_CALM "too_many_pings": PING interval for this server doubled from ${current} ms to ${doubled} ms (the server's keepalive enforcement policy refuses PINGs this often; relax it, or raise grpc_ping_interval)`,
    });
  }

  /** Connections to `host` (tests, status). */
  connections(host: UpstreamHost): readonly Http2Upstream[] {
    return this.byHost.get(host) ?? [];
  }

  /** @internal a connection closed */
  forget(conn: Http2Upstream): void {
    const list = this.byHost.get(conn.host);
    if (list === undefined) return;
    const i = list.indexOf(conn);
    if (i >= 0) list.splice(i, 1);
  }

  /** Reload/shutdown: idle connections close now, busy ones when their calls are done. */
  close(): void {
    this.closed = true;
    for (const list of this.byHost.values()) for (const c of [...list]) c.close();
  }

  /** Everything closed now. */
  destroy(): void {
    this.closed = true;
    for (const list of this.byHost.values()) for (const c of [...list]) c.destroy();
  }
}
