/**
 * A plain-TCP stream session on bare libuv TCP handles: the client's handle
 * as the listening handle accepted it (no net.Socket made for it, see
 * listener.ts), the upstream's connected with a TCPConnectWrap, and the
 * bytes pumped between them as pump.ts does on sockets: each read lands in
 * the shared READ_BUFFER, is copied into a pooled write buffer and written
 * to the other handle; a write libuv keeps (the kernel took part) holds its
 * buffer and stops reading the other side until it completes.
 *
 * Why: a short session (accept, connect, one read each way, two FINs, two
 * closes) spent more in net.Socket's machinery (Socket objects, stream
 * state, events, nextTicks) than in keepwire's own logic
 * (docs/performance.md, short sessions). The behaviour is the net path's
 * (StreamSession, stream.ts), each rule carried over:
 *
 * - half-close: a FIN read from one side is a shutdown (FIN) to the other,
 *   after what was written to it, and the opposite direction keeps flowing;
 *   a side is closed once it has both read the peer's FIN and had its own
 *   shutdown done (net's allowHalfOpen end);
 * - a reset stays a reset: a read or write error on one side resets the
 *   other (never a FIN: a cut stream must not look complete), and an EOF is
 *   checked with a zero-byte write for a RST hidden behind it (writes.ts
 *   `resetBehindEnd`); a side whose FIN is already queued is not reset
 *   (uv_tcp_close_reset refuses during a shutdown) but closed once its FIN
 *   is out, or at once for a deadline;
 * - proxy_connect_timeout, next-upstream tries, proxy_timeout and
 *   reset_timedout_connection, keepalive (so_keepalive, proxy_socket_keepalive
 *   through setsockopt on the descriptor), the session record, counters and
 *   drain are the same code as the net path's (stream-session.ts).
 *
 * Not for TLS (either side) or upstream names that need a DNS lookup: those
 * sessions stay on net.Socket (StreamProxy decides).
 */

import type { Socket } from 'node:net';
import { getSystemErrorName } from 'node:util';
import type { Listen } from '../config/model.js';
import type { KeepaliveApplier } from '../keepalive/applier.js';
import type {
  TcpConnectReq,
  TcpHandle,
  TcpHandles,
  TcpShutdownReq,
  WriteReq,
} from '../kernel/node-internals.js';
import type { ListenerStats } from '../metrics/stats.js';
import { handleView, nameOf } from './handle-view.js';
import { CHUNK, giveBack, takeBuffer } from './pump.js';
import { READ_BUFFER } from './reads.js';
import type { SessionEndReason, StreamProxy } from './stream.js';
import { ClientVars, endpoint, SessionCore } from './stream-session.js';
import { heldByLibuv, releaseWriteReq, takeWriteReq } from './write-requests.js';

/** libuv's UV_EOF (the same on every platform). */
export const UV_EOF = -4095;
const EMPTY = Buffer.alloc(0);

function errName(status: number): string {
  try {
    return getSystemErrorName(status);
  } catch {
    return `error ${status}`;
  }
}

/** Shutdown of a leg's writing side: none asked, asked (FIN queued behind the writes), done (FIN sent). */
export enum Shut {
  None = 0,
  Asked = 1,
  Done = 2,
}

interface LegHandle extends TcpHandle {
  leg?: Leg;
}

/** One side of a session: its handle and the state of each of its directions. */
class Leg {
  /** Writes to this handle libuv still holds (the kernel took part). */
  pending = 0;
  /** The write buffer of the write libuv holds (at most one: the other side stops reading meanwhile). */
  held: Buffer | undefined;
  /** Read its FIN. */
  eof = false;
  shut = Shut.None;
  /** Close once the FIN is out (a reset asked while it was queued). */
  closeAfterShut = false;
  closed = false;
  /** Still connecting (the upstream leg until its connect completes). */
  connecting = false;
  peer: Leg | undefined;

  constructor(
    readonly handle: LegHandle,
    readonly session: HandleSession,
    readonly isClient: boolean,
  ) {
    handle.leg = this;
  }

  /** The session's own count (the handle's counters are not kept for reads into a user buffer). */
  get bytesRead(): number {
    return this.session.counted(this.isClient);
  }

  /** What was handed to libuv for this leg: the other side's reads. */
  get bytesWritten(): number {
    return this.session.counted(!this.isClient);
  }
}

let binding: TcpHandles;

/** A write libuv held is done (or failed, or was cancelled by a close). */
function writeDone(this: WriteReq<Leg>, status: number): void {
  const to = this.owner!;
  const buf = this.buffer;
  this.owner = undefined;
  this.buffer = null;
  this.handle = null;
  to.pending--;
  if (to.closed) return;
  if (status < 0) {
    to.session.broken(to, status);
    return;
  }
  if (buf !== null && to.held === buf) {
    to.held = undefined;
    giveBack(buf);
  }
  if (to.pending === 0) to.session.drained(to);
}

function shutDone(this: TcpShutdownReq, status: number): void {
  const leg = this.leg as Leg;
  this.leg = undefined;
  this.handle = null;
  if (leg.closed) return;
  leg.shut = Shut.Done;
  if (status < 0) {
    leg.session.broken(leg, status);
    return;
  }
  if (leg.eof || leg.closeAfterShut) leg.session.closeLeg(leg);
}

/**
 * A leg that has read its peer's FIN and holds no bytes in libuv can be
 * closed instead of shut down: with nothing unread, close(2) sends the FIN
 * after the bytes the kernel holds, as shutdown(2) would (a shutdown still
 * queued is cancelled). The last two FINs of a session then cost no
 * shutdown(2) each: strace counted 2 per session more than the handle floor.
 */
function finished(leg: Leg): boolean {
  return leg.eof && leg.pending === 0;
}

/** Every read of a session's handle (`this` the handle; the bytes in READ_BUFFER). */
function onRead(this: LegHandle): void {
  const leg = this.leg;
  if (leg === undefined || leg.closed) return;
  const n = binding.state[binding.readBytes]!;
  if (n > 0) leg.session.bytes(leg, n);
  else if (n === UV_EOF) leg.session.eof(leg);
  else if (n < 0) leg.session.broken(leg, n);
}

function connectDone(this: TcpConnectReq, status: number): void {
  const leg = this.leg as Leg;
  this.leg = undefined;
  leg.session.connected(leg, status);
}

export class HandleSession extends SessionCore {
  private readonly c: Leg;
  private u: Leg | undefined;
  /** The client's address and port, read at accept (the log's client, even once the client is closed). */
  private readonly clientAddress: string | undefined;
  private readonly clientPort: number;

  constructor(
    proxy: StreamProxy,
    handles: TcpHandles,
    client: TcpHandle,
    listen: Listen,
    stats: ListenerStats | undefined,
    private readonly keepalive: KeepaliveApplier | undefined,
  ) {
    super(proxy, listen, stats);
    binding = handles;
    this.c = new Leg(client, this, true);
    const at = nameOf(client, true);
    this.clientAddress = at?.address;
    this.clientPort = at === undefined ? 0 : at.port;
  }

  /** Made when a line needs it: with `access_log off` a clean session never does. */
  protected get clientText(): string {
    return endpoint(this.clientAddress, this.clientPort);
  }

  /** The client as the status page reads a socket. */
  get client(): Socket {
    return handleView(this.c);
  }

  /** The upstream connection as the status page reads a socket; undefined while none is open. */
  get upstreamSocket(): Socket | undefined {
    const u = this.u;
    return u === undefined || u.closed ? undefined : handleView(u);
  }

  /** @internal bytes read from the client (`fromClient`) or from the upstream so far. */
  counted(fromClient: boolean): number {
    return fromClient ? this.bytesFromClient : this.bytesFromUpstream;
  }

  begin(): void {
    const h = this.c.handle;
    h.setNoDelay(true);
    const keepalive = this.keepalive;
    // `fd` is a getter into C++ and the peer text a string made: only where so_keepalive is set.
    if (keepalive?.enabled) keepalive.applyFd(h.fd, this.clientText);
    this.connectNext();
  }

  /** The variables a `hash` key may name, read from the handle only when the balancer asks (Tries). */
  vars(): Readonly<Record<string, string>> {
    return new ClientVars(handleView(this.c)) as unknown as Readonly<Record<string, string>>;
  }

  private connectNext(): void {
    if (this.reason !== undefined) return;
    const tries = this.tries;
    const host = tries.next(this);
    if (host === undefined) {
      this.failConnect(tries.attempts === 0 ? 'no live upstreams' : (this.detail ?? 'all tries failed'));
      return;
    }
    const handle = binding.newSocket();
    const leg = new Leg(handle, this, false);
    leg.connecting = true;
    leg.peer = this.c;
    this.u = leg;
    this.upstreamClosed = false;
    handle.setNoDelay(true);
    const req = new binding.ConnectWrap();
    req.oncomplete = connectDone;
    req.leg = leg;
    const { host: address, port } = host.address;
    // An IP literal (StreamProxy sends only those here): a colon is IPv6 (isIPv6's regex was 1 % of a session).
    const err = address.includes(':')
      ? handle.connect6(req, address, port)
      : handle.connect(req, address, port);
    if (err !== 0) {
      this.attemptFailed(leg, errName(err));
      return;
    }
    tries.armConnect(this.proxy.model.proxyConnectTimeoutMs, () => {
      if (this.u === leg && leg.connecting) this.attemptFailed(leg, 'connect timed out');
    });
  }

  /** An attempt that did not connect: its handle closed, its slot given back, the next try or the end. */
  private attemptFailed(leg: Leg, why: string): void {
    const tries = this.tries;
    tries.stopConnect();
    tries.failed();
    tries.release();
    leg.closed = true;
    leg.connecting = false;
    // A connect still in progress is cancelled by the close (its callback then sees the leg closed).
    leg.handle.close();
    this.u = undefined;
    this.upstreamClosed = true;
    this.detail = `${this.tries.host?.address.text ?? '-'}: ${why}`;
    if (this.mayRetry()) this.connectNext();
    else this.failConnect(this.detail);
  }

  /** @internal the upstream's connect completed with `status`. */
  connected(leg: Leg, status: number): void {
    if (leg.closed || this.u !== leg) return;
    if (status < 0) {
      this.attemptFailed(leg, errName(status));
      return;
    }
    leg.connecting = false;
    const tries = this.tries;
    tries.stopConnect();
    tries.succeeded();
    this.host = tries.host;
    this.detail = undefined;
    if (this.reason !== undefined) {
      // Terminated (shutdown) while connecting.
      this.resetLeg(leg, true);
      return;
    }
    const u = leg.handle;
    const keepalive = this.proxy.upstreamKeepalive;
    if (keepalive.enabled) keepalive.applyFd(u.fd, tries.host?.address.text ?? '-');
    const c = this.c;
    c.peer = leg;
    // Both read into the shared buffer; nothing was read from the client before now
    // (its early bytes waited in the kernel, as pauseOnConnect keeps them on the net path).
    c.handle.onread = onRead;
    u.onread = onRead;
    c.handle.useUserBuffer(READ_BUFFER);
    u.useUserBuffer(READ_BUFFER);
    this.idle.touch();
    if (c.handle.readStart() !== 0 || u.readStart() !== 0) this.broken(c, -104);
  }

  private failConnect(detail: string): void {
    this.reason ??= 'connect_failed';
    this.detail = detail;
    // The client only learns of the failure now, after every allowed try.
    this.closeLeg(this.c);
  }

  /** @internal `n` bytes of `from` are in READ_BUFFER: written to its peer. */
  bytes(from: Leg, n: number): void {
    if (from.isClient) this.bytesFromClient += n;
    else this.bytesFromUpstream += n;
    this.idle.touch();
    const to = from.peer!;
    if (to.closed) return;
    const buf = takeBuffer();
    READ_BUFFER.copy(buf, 0, 0, n);
    const req = takeWriteReq(to.handle, writeDone, to);
    const err = to.handle.writeBuffer(req, n === CHUNK ? buf : buf.subarray(0, n));
    if (err !== 0) {
      releaseWriteReq(req);
      giveBack(buf);
      this.broken(to, err);
      return;
    }
    if (heldByLibuv(req, buf)) {
      // The kernel took part: libuv writes the rest from `buf`; `from` waits for it.
      to.pending++;
      to.held = buf;
      from.handle.readStop();
    } else giveBack(buf);
  }

  /** @internal every write to `to` is with the kernel: read its peer again. */
  drained(to: Leg): void {
    const from = to.peer;
    if (from !== undefined && !from.closed && !from.eof && !from.connecting) from.handle.readStart();
  }

  /** @internal `from` sent FIN. */
  eof(from: Leg): void {
    // An EOF can hide a reset (writes.ts resetBehindEnd): a zero-byte write asks the kernel.
    if (from.pending === 0 && from.shut === Shut.None) {
      const req = takeWriteReq(from.handle, writeDone, from);
      const err = from.handle.writeBuffer(req, EMPTY);
      if (heldByLibuv(req, null)) from.pending++;
      else if (err !== 0 && errName(err) === 'ECONNRESET') {
        this.broken(from, err);
        return;
      }
    }
    from.eof = true;
    from.handle.readStop();
    this.reason ??= from.isClient ? 'client_closed' : 'upstream_closed';
    const to = from.peer!;
    if (!to.closed) {
      if (finished(to)) this.closeLeg(to);
      else if (to.shut === Shut.None) {
        // After what was written to it: libuv sends the FIN once its queue is empty.
        const req = new binding.ShutdownWrap();
        req.handle = to.handle;
        req.oncomplete = shutDone;
        req.leg = to;
        to.shut = Shut.Asked;
        const err = to.handle.shutdown(req);
        if (err !== 0) {
          to.shut = Shut.None;
          this.broken(to, err);
          return;
        }
      }
    }
    if (from.shut !== Shut.None && finished(from)) this.closeLeg(from);
  }

  /** @internal a read or write on `leg` failed (a reset, mostly): closed, and its peer reset. */
  broken(leg: Leg, status: number): void {
    this.reason ??= leg.isClient ? 'client_reset' : 'upstream_reset';
    this.detail ??= errName(status);
    this.closeLeg(leg);
    // The other side must not mistake the break for a clean end of data.
    const peer = leg.peer;
    if (peer !== undefined) this.resetLeg(peer, false);
  }

  /**
   * @internal closes `leg`'s handle (a FIN if nothing is unread or queued, as
   * close(2) does). uv_close closes the descriptor at once; only its callback
   * waits for the loop's closing phase, so the leg counts as closed now and
   * no close callback is given: Node stores one as a property on the handle
   * (a runtime property add) and calls it through a full MakeCallback: 5 %
   * of a short session's instructions for the two legs. Whatever libuv
   * still reports for the handle (a cancelled write, shutdown or connect)
   * finds the leg closed and is ignored, as before.
   */
  closeLeg(leg: Leg): void {
    if (leg.closed) return;
    leg.closed = true;
    leg.handle.close();
    this.legClosed(leg);
  }

  /**
   * `resetSocket` (pump.ts) on a handle: a RST, except once its FIN is queued
   * or sent (see there); `now` closes it at once whatever is queued.
   */
  private resetLeg(leg: Leg, now: boolean): void {
    if (leg.closed) return;
    if (leg.connecting) {
      // A reset needs a connection; one still connecting is simply abandoned.
      this.closeLeg(leg);
      return;
    }
    if (leg.shut !== Shut.None) {
      if (now || leg.shut === Shut.Done) this.closeLeg(leg);
      else leg.closeAfterShut = true;
      return;
    }
    leg.closed = true;
    // uv_tcp_close_reset closes the descriptor at once too (SO_LINGER 0, then uv_close).
    if (leg.handle.reset() !== 0) leg.handle.close();
    this.legClosed(leg);
  }

  /** A leg's handle (its descriptor) is closed: the session ends once both are. */
  private legClosed(leg: Leg): void {
    if (leg.isClient) this.clientClosed = true;
    else if (leg === this.u) {
      this.tries.release();
      this.upstreamClosed = true;
    } else return;
    this.maybeFinish();
  }

  protected expire(): void {
    const u = this.u;
    const reason = this.reason;
    if (reason !== undefined && reason !== 'client_closed' && reason !== 'upstream_closed') {
      // Already ending (a reset being passed on) but a side is still open,
      // e.g. a FIN the peer never reads: proxy_timeout still ends it.
      this.closeLeg(this.c);
      if (u !== undefined) this.closeLeg(u);
      return;
    }
    this.reason = 'idle_timeout';
    if (this.proxy.model.resetTimedoutConnection) {
      this.resetLeg(this.c, true);
      if (u !== undefined) this.resetLeg(u, true);
    } else {
      // Nothing is in flight (that is what idle means), so close() sends a FIN.
      this.closeLeg(this.c);
      if (u !== undefined) this.closeLeg(u);
    }
  }

  /** Ends the session now with a reset both ways (drain deadline passed). */
  terminate(reason: SessionEndReason): void {
    if (this.reason === undefined || this.reason === 'client_closed' || this.reason === 'upstream_closed')
      this.reason = reason;
    this.tries.stopConnect();
    this.resetLeg(this.c, true);
    if (this.u !== undefined) this.resetLeg(this.u, true);
  }
}

/** A connection refused before its session (draining, worker_connections): reset, as the net path does. */
export function resetHandle(client: TcpHandle): void {
  if (client.reset() !== 0) client.close();
}

/** The client address of a bare handle for a session line. */
export function handlePeer(client: TcpHandle): string {
  const at = nameOf(client, true);
  return at === undefined ? '-' : endpoint(at.address, at.port);
}
