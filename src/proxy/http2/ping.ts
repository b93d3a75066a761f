/**
 * HTTP/2 PING keepalive of one connection (RFC 9113 §6.7), on `Deadline`s
 * (the one timer idiom): after `intervalMs` without anything from the peer a
 * PING goes out, and again every `intervalMs` while the peer stays quiet;
 * an ACK not back within `timeoutMs` calls `onTimeout`. What counts as
 * "anything from the peer" is every byte the socket read: frames the http2
 * module does not surface (WINDOW_UPDATE, SETTINGS, PING ACKs) included.
 *
 * The connection is sampled every quarter interval instead of timing each
 * read (the socket's reads are nghttp2's, not ours; `heard` only sets a
 * flag, so a DATA frame costs no clock read). A read is dated to the sample
 * that saw it, which is never earlier than the read: a PING goes out only
 * after at least `intervalMs` of quiet (servers count early PINGs as
 * strikes), and at most 1.25 × `intervalMs` after the last read (grpc-go
 * times each read and pings at exactly the interval; sampling once per
 * interval would let the quiet stretch reach 2 ×, past an LB idle timeout a
 * user set the interval below with a margin of less than 2 ×).
 *
 * The semantics are gRPC's keepalive_time / keepalive_timeout; `mayPing`
 * is keepalive_permit_without_calls (a connection without calls is not
 * pinged unless it says so; its quiet time starts when a call comes). Used
 * for the client leg (`http2_ping_*`, connection.ts) and the upstream leg of
 * grpc_pass (`grpc_ping_*`, ../grpc/pool.ts).
 */
import { Deadline } from '../deadline.js';

/** What the keepalive needs from a session (client or server side). */
export interface PingSession {
  readonly destroyed: boolean;
  ping(callback: (error: Error | null, duration: number, payload: Buffer) => void): boolean;
}

export class PingKeepalive {
  private readonly sampler: Deadline<PingKeepalive>;
  private readonly wait: Deadline<PingKeepalive>;
  private lastBytesRead: number;
  /** When the peer was last heard from, as dated by a sample (Date.now ms). */
  private lastHeard = Date.now();
  /** `heard` was called since the last sample. */
  private fresh = false;
  /** PINGs sent, ACKs received (tests and logs). */
  sent = 0;
  acked = 0;

  constructor(
    private readonly session: PingSession,
    private readonly bytesRead: () => number,
    /** The interval; may be changed (a server's too_many_pings doubles it), taking effect at the next sample. */
    public intervalMs: number,
    private readonly timeoutMs: number,
    private readonly onTimeout: () => void,
    private readonly mayPing: () => boolean = always,
  ) {
    this.lastBytesRead = bytesRead();
    this.sampler = new Deadline<PingKeepalive>(this, this.sample, 0, true);
    this.wait = new Deadline<PingKeepalive>(this, this.waitExpired, 0, true);
    this.sampler.arm(this.stepMs());
  }

  /** Something arrived from the peer: the quiet time starts again (dated by the next sample). */
  heard(): void {
    this.fresh = true;
  }

  /** The connection is gone: no more timers. */
  cancel(): void {
    this.sampler.cancel();
    this.wait.cancel();
  }

  private stepMs(): number {
    return Math.max(1, Math.floor(this.intervalMs / 4));
  }

  private sample(): void {
    if (this.session.destroyed) return;
    const now = Date.now();
    const read = this.bytesRead();
    if (this.fresh || read !== this.lastBytesRead) {
      this.fresh = false;
      this.lastBytesRead = read;
      this.lastHeard = now;
    }
    if (!this.wait.armed && now - this.lastHeard >= this.intervalMs) {
      if (!this.mayPing()) this.lastHeard = now;
      else if (this.sendPing()) {
        this.sent++;
        this.wait.arm(this.timeoutMs);
      } else this.lastHeard = now;
    }
    this.sampler.arm(this.stepMs());
  }

  private sendPing(): boolean {
    return this.session.ping((error) => {
      if (error !== null) return;
      this.acked++;
      this.wait.cancel();
      // The ACK was read: the next sample dates the quiet time from it.
      this.fresh = true;
    });
  }

  private waitExpired(): void {
    if (this.session.destroyed) return;
    this.sampler.cancel();
    this.onTimeout();
  }
}

function always(): boolean {
  return true;
}
