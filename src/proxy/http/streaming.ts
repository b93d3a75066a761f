/**
 * Upgrade (WebSocket) tunnels, after the upstream answered 101. Until then
 * an Upgrade request is an ordinary request of `ProxyExchange` (the one
 * attempt loop: tries, proxy_next_upstream and its timeout, connect timer,
 * health, max_conns), sent on a fresh connection; on the 101 the exchange
 * hands both sockets here. They are joined byte for byte with backpressure
 * (`../pump.ts`), `proxy_read_timeout` as the idle timeout of the tunnel
 * (nginx's rule), TCP keepalive as set on both sockets, and a reset on one
 * side passed on as a reset. One access line when the tunnel ends.
 */
import type { Socket } from 'node:net';
import type { UpstreamHost } from '../../upstream/hosts.js';
import { Deadline } from '../deadline.js';
import { joinSockets, resetSocket } from '../pump.js';
import type { RequestRecord } from './log.js';

export interface TunnelOwner {
  log(record: RequestRecord): void;
  ended(tunnel: UpgradeTunnel): void;
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

export class UpgradeTunnel {
  /** proxy_read_timeout as the tunnel's idle timeout. */
  private readonly idle: Deadline<UpgradeTunnel>;
  private done = false;

  constructor(
    private readonly owner: TunnelOwner,
    readonly client: Socket,
    readonly upstream: Socket,
    /** The host whose active count (least_conn, max_conns) the tunnel holds until the upstream socket closes. */
    private held: UpstreamHost | undefined,
    private readonly idleMs: number,
    /** The request's access line, completed when the tunnel ends; undefined under `access_log off`. */
    private readonly record: RequestRecord | undefined,
    private readonly startedAt: number,
  ) {
    this.idle = new Deadline<UpgradeTunnel>(this, this.expire, idleMs);
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
      client.write(s.fromUpstream);
    }
    if (s.fromClient !== undefined) {
      if (r) r.bytesReceived += s.fromClient.length;
      upstream.write(s.fromClient);
    }
    joinSockets(client, upstream, {
      onBytes: (fromClient, n) => {
        if (r) {
          if (fromClient) r.bytesReceived += n;
          else r.bytesSent += n;
        }
        this.idle.touch();
      },
      onEnd: (fromClient) => {
        if (fromClient) this.note('client_closed', 'client closed the tunnel');
        else this.note('ok', 'upstream closed the tunnel');
      },
    });
    if (s.clientEnded) upstream.end();
    this.idle.touch();
  }

  private releaseHost(): void {
    this.held?.release();
    this.held = undefined;
  }

  private expire(): void {
    this.note('ok', `tunnel idle for ${this.idleMs} ms (proxy_read_timeout)`);
    this.client.destroy();
    this.upstream.destroy();
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
    if (this.upstream.destroyed) this.releaseHost();
    const r = this.record;
    if (r !== undefined) {
      if (r.detail === undefined) r.reason = 'client_closed';
      r.timings.totalMs = Date.now() - this.startedAt;
      this.owner.log(r);
    }
    this.owner.ended(this);
  }
}
