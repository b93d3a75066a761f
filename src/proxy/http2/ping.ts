/**
 * HTTP/2 PING keepalive of one connection (RFC 9113 §6.7), on `Deadline`s
 * (the one timer idiom): after `intervalMs` without anything from the peer a
 * PING goes out, and again every `intervalMs` while the peer stays quiet;
 * an ACK not back within `timeoutMs` calls `onTimeout`. What counts as
 * "anything from the peer" is every byte the socket read: frames the http2
 * module does not surface (WINDOW_UPDATE, SETTINGS, PING ACKs) included.
 *
 * The semantics are gRPC's keepalive_time / keepalive_timeout; `mayPing`
 * is keepalive_permit_without_calls (a connection without calls is not
 * pinged unless it says so). Used for the client leg (`http2_ping_*`,
 * connection.ts) and the upstream leg of grpc_pass (`grpc_ping_*`,
 * ../grpc/pool.ts).
 */
import { Deadline } from '../deadline.js';

/** What the keepalive needs from a session (client or server side). */
export interface PingSession {
  readonly destroyed: boolean;
  ping(callback: (error: Error | null, duration: number, payload: Buffer) => void): boolean;
}

export class PingKeepalive {
  private readonly quiet: Deadline<PingKeepalive>;
  private readonly wait: Deadline<PingKeepalive>;
  private lastBytesRead = 0;
  /** PINGs sent, ACKs received (tests and logs). */
  sent = 0;
  acked = 0;

  constructor(
    private readonly session: PingSession,
    private readonly bytesRead: () => number,
    /** The interval; may be changed (a server's too_many_pings doubles it), taking effect at the next touch. */
    public intervalMs: number,
    private readonly timeoutMs: number,
    private readonly onTimeout: () => void,
    private readonly mayPing: () => boolean = always,
  ) {
    this.quiet = new Deadline<PingKeepalive>(this, this.quietExpired, 0, true);
    this.wait = new Deadline<PingKeepalive>(this, this.waitExpired, 0, true);
    this.quiet.arm(intervalMs);
  }

  /** Something arrived from the peer: the quiet time starts again. */
  heard(): void {
    this.quiet.arm(this.intervalMs);
  }

  /** The connection is gone: no more timers. */
  cancel(): void {
    this.quiet.cancel();
    this.wait.cancel();
  }

  private quietExpired(): void {
    if (this.session.destroyed) return;
    const read = this.bytesRead();
    if (read !== this.lastBytesRead) {
      this.lastBytesRead = read;
      this.heard();
      return;
    }
    if (this.wait.armed) return;
    if (!this.mayPing()) {
      this.heard();
      return;
    }
    const sent = this.session.ping((error) => {
      if (error !== null) return;
      this.acked++;
      this.wait.cancel();
      this.lastBytesRead = this.bytesRead();
      this.heard();
    });
    if (sent) {
      this.sent++;
      this.wait.arm(this.timeoutMs);
    } else this.heard();
  }

  private waitExpired(): void {
    if (this.session.destroyed) return;
    this.quiet.cancel();
    this.onTimeout();
  }
}

function always(): boolean {
  return true;
}
