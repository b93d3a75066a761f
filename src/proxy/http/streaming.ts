/**
 * Upgrade (WebSocket) tunnels, after the upstream answered 101. Until then
 * an Upgrade request is an ordinary request of `ProxyExchange` (the one
 * attempt loop: tries, proxy_next_upstream and its timeout, connect timer,
 * health, max_conns), sent on a fresh connection; on the 101 the exchange
 * hands both sockets here. They are joined byte for byte with backpressure
 * (`../pump.ts`), `proxy_read_timeout` as the idle timeout of the tunnel
 * (nginx's rule), TCP keepalive as set on both sockets, and a reset on one
 * side passed on as a reset. One access line when the tunnel ends.
 *
 * A WebSocket tunnel with `websocket_heartbeat` has its frames followed both
 * ways (`websocket-frames.ts`) and gets unsolicited Pongs when quiet. Both
 * the idle timeout and the heartbeat are `Deadline`s (`../deadline.ts`): a
 * busy tunnel moves two numbers per chunk and makes no timer calls.
 */
import type { Socket } from 'node:net';
import type { WebSocketHeartbeat } from '../../config/model.js';
import { type ListenerStats, noteEvent } from '../../metrics/stats.js';
import type { UpstreamHost } from '../../upstream/hosts.js';
import { Deadline } from '../deadline.js';
import { joinSockets, resetSocket } from '../pump.js';
import type { RequestRecord, WebSocketRelayRecord } from './log.js';
import { FrameTracker, isWebSocketSwitch, pongFrame } from './websocket-frames.js';

export interface TunnelOwner {
  log(record: RequestRecord | WebSocketRelayRecord): void;
  ended(tunnel: UpgradeTunnel): void;
  /** The client address's counters (heartbeats, idle closes). */
  readonly stats: ListenerStats;
}

/** What the exchange hands over with the sockets. */
export interface TunnelStart {
  /** The 101 response head for the client, as the upstream sent it. */
  head: string;
  /** Upstream bytes read past the 101 head. */
  fromUpstream: Buffer | undefined;
  /** Client bytes read past the request (held until the 101). */
  fromClient: Buffer | undefined;
  /** The client sent FIN before the 101. */
  clientEnded: boolean;
}

/** A RST, but never while the socket's FIN is in flight (see resetSocket: Node would leak the socket). */
function reset(socket: Socket): void {
  resetSocket(socket);
}

/** Heartbeat state of a WebSocket tunnel: one frame tracker per direction. */
interface Heartbeat {
  intervalMs: number;
  toClient: boolean;
  toUpstream: boolean;
  /** Client → upstream frames (masked, RFC 6455 §5.1). */
  fromClient: FrameTracker;
  /** Upstream → client frames (unmasked). */
  fromUpstream: FrameTracker;
  lastSentAt: number;
}

export class UpgradeTunnel {
  /** proxy_read_timeout as the tunnel's idle timeout. */
  private readonly idle: Deadline<UpgradeTunnel>;
  /** websocket_heartbeat's deadline, while heartbeats are on. */
  private beat: Deadline<UpgradeTunnel> | undefined;
  private done = false;
  /** Set while heartbeats are on: a WebSocket tunnel with websocket_heartbeat whose bytes are valid frames so far. */
  private heartbeat: Heartbeat | undefined;
  /** Heartbeats sent, also after a fallback to plain relay (for the access line). */
  private heartbeatsSent = 0;
  /** The upstream server, for the status page. */
  readonly upstreamText: string;

  constructor(
    private readonly owner: TunnelOwner,
    readonly client: Socket,
    readonly upstream: Socket,
    /** The host whose active count (least_conn, max_conns) the tunnel holds until the upstream socket closes. */
    private held: UpstreamHost | undefined,
    private readonly idleMs: number,
    /** The request's access line, completed when the tunnel ends; undefined under `access_log off`. */
    private readonly record: RequestRecord | undefined,
    readonly startedAt: number,
    private readonly heartbeatConfig: WebSocketHeartbeat | null = null,
  ) {
    this.idle = new Deadline<UpgradeTunnel>(this, this.expire, idleMs);
    this.upstreamText = held?.address.text ?? `${upstream.remoteAddress}:${upstream.remotePort}`;
  }

  /** Time since the last byte either way (keepwire's clock; the status page prefers the kernel's). */
  get idleForMs(): number {
    const left = this.idle.left;
    return left === undefined ? 0 : Math.max(0, this.idleMs - left);
  }

  /** The first thing that ends the tunnel is what its access line says. */
  private note(reason: RequestRecord['reason'], detail: string): void {
    const r = this.record;
    if (r === undefined || r.detail !== undefined) return;
    r.reason = reason;
    r.detail = detail;
  }

  start(s: TunnelStart): void {
    const { client, upstream } = this;
    const r = this.record;
    const hb = this.heartbeatConfig;
    if (hb !== null && isWebSocketSwitch(s.head)) {
      this.heartbeat = {
        intervalMs: hb.intervalMs,
        toClient: hb.side !== 'upstream',
        toUpstream: hb.side !== 'client',
        fromClient: new FrameTracker(true),
        fromUpstream: new FrameTracker(false),
        lastSentAt: 0,
      };
      this.beat = new Deadline<UpgradeTunnel>(this, this.beatDue, hb.intervalMs);
    }
    client.on('error', (e: NodeJS.ErrnoException) => {
      this.note('client_closed', e.code ?? e.message);
      reset(upstream);
    });
    upstream.on('error', (e: NodeJS.ErrnoException) => {
      this.note('upstream_reset', e.code ?? e.message);
      reset(client);
    });
    upstream.on('close', () => {
      this.releaseHost();
      if (!client.destroyed && client.writableFinished) client.destroy();
    });
    client.on('close', () => {
      upstream.destroy();
      this.finish();
    });
    client.write(s.head, 'latin1');
    if (s.fromUpstream !== undefined) {
      if (r) r.bytesSent += s.fromUpstream.length;
      this.track(false, s.fromUpstream);
      client.write(s.fromUpstream);
    }
    if (s.fromClient !== undefined) {
      if (r) r.bytesReceived += s.fromClient.length;
      this.track(true, s.fromClient);
      upstream.write(s.fromClient);
    }
    joinSockets(client, upstream, {
      onBytes: (fromClient, n, chunk) => {
        if (r) {
          if (fromClient) r.bytesReceived += n;
          else r.bytesSent += n;
        }
        this.idle.touch();
        if (this.heartbeat !== undefined) {
          this.track(fromClient, chunk);
          this.beat?.touch();
        }
      },
      onEnd: (fromClient) => {
        if (fromClient) this.note('client_closed', 'client closed the tunnel');
        else this.note('ok', 'upstream closed the tunnel');
      },
    });
    if (s.clientEnded) upstream.end();
    this.idle.touch();
    this.beat?.touch();
  }

  private releaseHost(): void {
    this.held?.release();
    this.held = undefined;
  }

  private expire(): void {
    this.owner.stats.tunnelIdleTimeouts++;
    noteEvent(
      'tunnel_idle_timeout',
      this.upstreamText,
      `tunnel idle for ${this.idleMs} ms (proxy_read_timeout)`,
    );
    this.note('ok', `tunnel idle for ${this.idleMs} ms (proxy_read_timeout)`);
    this.client.destroy();
    this.upstream.destroy();
  }

  /** Follows the frames of one direction; the first invalid byte turns heartbeats off for good. */
  private track(fromClient: boolean, chunk: Buffer): void {
    const hb = this.heartbeat;
    if (hb === undefined) return;
    const tracker = fromClient ? hb.fromClient : hb.fromUpstream;
    if (tracker.feed(chunk)) return;
    this.heartbeat = undefined;
    this.beat?.cancel();
    this.owner.log({
      msg: 'websocket_relay',
      client: this.record?.client ?? '',
      path: this.record?.path ?? '',
      upstream: this.record?.upstream ?? null,
      from: fromClient ? 'client' : 'upstream',
      detail: `${tracker.invalid}: plain relay, no heartbeats for this tunnel`,
    });
  }

  /**
   * The heartbeat's deadline passed: `intervalMs` after the later of the last
   * byte and the last heartbeat. Heartbeats are writes: they never move the
   * idle deadline (proxy_read_timeout still ends a tunnel neither peer uses).
   */
  private beatDue(): void {
    const hb = this.heartbeat;
    if (hb === undefined) return;
    this.sendHeartbeats(hb, Date.now());
    if (this.heartbeat !== undefined) this.beat?.arm(hb.intervalMs);
  }

  /**
   * A Pong toward each configured side whose incoming direction is between
   * frames (a frame still partly through, e.g. a sender stalled mid-frame,
   * is never split: that side waits for the next period). Nothing follows a
   * Close (RFC 6455 §5.5.1), and nothing goes to a side that was sent FIN.
   */
  private sendHeartbeats(hb: Heartbeat, now: number): void {
    hb.lastSentAt = now;
    if (hb.fromClient.closed || hb.fromUpstream.closed) {
      this.heartbeat = undefined;
      return;
    }
    const { client, upstream } = this;
    if (hb.toClient && hb.fromUpstream.atBoundary && client.writable) {
      client.write(pongFrame(false));
      this.heartbeatsSent++;
      this.owner.stats.websocketHeartbeats++;
    }
    if (hb.toUpstream && hb.fromClient.atBoundary && upstream.writable) {
      upstream.write(pongFrame(true));
      this.heartbeatsSent++;
      this.owner.stats.websocketHeartbeats++;
    }
  }

  /** Shutdown deadline. */
  terminate(): void {
    this.note('shutdown', 'shutdown deadline');
    reset(this.client);
    reset(this.upstream);
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.idle.cancel();
    this.beat?.cancel();
    if (this.upstream.destroyed) this.releaseHost();
    const r = this.record;
    if (r !== undefined) {
      if (r.detail === undefined) r.reason = 'client_closed';
      if (this.heartbeatConfig !== null) r.websocketHeartbeats = this.heartbeatsSent;
      r.timings.totalMs = Date.now() - this.startedAt;
      this.owner.log(r);
    }
    this.owner.ended(this);
  }
}
