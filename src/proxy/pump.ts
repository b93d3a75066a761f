/**
 * Two sockets joined byte for byte: the stream proxy's sessions and the
 * HTTP proxy's Upgrade (WebSocket) tunnels. What one side reads the other
 * writes, in order; a side stops reading while its peer's write waits for
 * the socket and starts again on the peer's 'drain' (the bound on buffering
 * per session: one write buffer per direction beyond the kernel's); a FIN
 * from one side becomes a FIN to the other while the opposite direction
 * keeps flowing (half-close). Errors, close and timers stay with the
 * caller, which knows what they mean.
 *
 * The path every stream byte takes, so it does the least per read: reads
 * arrive as views of the shared read buffer (`readsViewTo`, no Readable
 * machinery, no Buffer of their own), are copied into a write buffer taken
 * from a small pool of reused 64 KiB buffers, and are handed to the peer's
 * handle (`send`, no Writable machinery) when nothing is queued there. A
 * write the kernel took whole gives its buffer back at once; one it took in
 * part keeps it until 'drain', with the reading side paused. Reused buffers
 * are warm memory: a fresh Buffer per read (what Node and `readsTo` do) is
 * new pages every time, and their page faults were most of a bulk
 * transfer's CPU on this kind of VM (docs/performance.md, L4 stream proxy,
 * 2026-11-30). Where the write cannot go to the handle (TLS, a queue, an
 * older Node), the bytes are copied into a Buffer of their own for
 * `socket.write`, as before.
 */
import type { Socket } from 'node:net';
import { READ_BUFFER, readsViewTo } from './reads.js';
import { blocked, resetBehindEnd, send, sendsDirect } from './writes.js';

export interface PumpEvents {
  /**
   * `n` bytes were read from the client (`fromClient`) or from the upstream
   * and are passed on next; `chunk` is valid only during the call (the
   * WebSocket frame tracker of a tunnel reads its frame headers).
   */
  onBytes(fromClient: boolean, n: number, chunk: Buffer): void;
  /** That side sent FIN; the other side is sent one too. */
  onEnd(fromClient: boolean): void;
}

/** Size of a write buffer: a read is at most this (the shared read buffer's size). */
export const CHUNK = READ_BUFFER.length;
/** Write buffers free for the next write; at most POOL_MAX kept (the rest are the GC's). */
const pool: Buffer[] = [];
const POOL_MAX = 16;

/** A write buffer of CHUNK bytes from the pool (warm memory), or a new one. Also the handle sessions' (stream-handles.ts). */
export function takeBuffer(): Buffer {
  return pool.pop() ?? Buffer.allocUnsafeSlow(CHUNK);
}

/** A write buffer libuv no longer holds, back to the pool. */
export function giveBack(buf: Buffer): void {
  if (pool.length < POOL_MAX) pool.push(buf);
}

/** One direction of a joined pair: reads of `from` written to `to`. */
class Direction {
  /** The write buffer libuv still holds (the write went in part); back to the pool on 'drain'. */
  private held: Buffer | undefined;

  constructor(
    readonly from: Socket,
    readonly to: Socket,
    readonly fromClient: boolean,
    readonly events: PumpEvents,
  ) {}

  /** A read of `from` (`view` valid only during the call). */
  onRead(view: Buffer): void {
    const n = view.length;
    this.events.onBytes(this.fromClient, n, view);
    const to = this.to;
    if (n <= CHUNK && sendsDirect(to)) {
      const buf = takeBuffer();
      view.copy(buf, 0, 0, n);
      send(to, n === CHUNK ? buf : buf.subarray(0, n));
      if (blocked(to)) {
        this.held = buf;
        this.from.pause();
      } else giveBack(buf);
      return;
    }
    if (!to.write(Buffer.from(view))) this.from.pause();
  }

  /** `to` took every byte written so far: read `from` again. */
  drained(): void {
    if (blocked(this.to)) return;
    const held = this.held;
    if (held !== undefined) {
      this.held = undefined;
      giveBack(held);
    }
    this.from.resume();
  }
}

export function joinSockets(client: Socket, upstream: Socket, events: PumpEvents): void {
  const up = new Direction(client, upstream, true, events);
  const down = new Direction(upstream, client, false, events);
  readsViewTo(client, Direction.prototype.onRead, up);
  readsViewTo(upstream, Direction.prototype.onRead, down);
  upstream.on('drain', () => up.drained());
  client.on('drain', () => down.drained());
  client.on('end', () => ended(client, upstream, true, events));
  upstream.on('end', () => ended(upstream, client, false, events));
  client.resume();
  upstream.resume();
}

function ended(from: Socket, to: Socket, fromClient: boolean, events: PumpEvents): void {
  // An 'end' can hide a reset (see resetBehindEnd): passing it on as a FIN
  // would tell the peer that a cut stream was complete.
  const reset = resetBehindEnd(from);
  if (reset !== undefined) {
    from.destroy(reset);
    return;
  }
  events.onEnd(fromClient);
  to.end();
}
/**
 * Ends a socket with a RST (so its peer cannot mistake a cut stream for a
 * complete one), except once its own FIN is queued or sent: the bytes before
 * that FIN are complete, a RST could discard them unread at the peer, and
 * Node refuses the reset while the FIN is in flight anyway (libuv's
 * uv_tcp_close_reset returns EINVAL during a shutdown, and Node 20 and 26
 * then never close the handle: the fd, the session and its slot leaked).
 * Such a socket is closed once its FIN is out; `now` closes it at once
 * (a deadline), whatever is still queued.
 */
export function resetSocket(socket: Socket, now = false): void {
  if (socket.destroyed) return;
  // A reset needs a connection; one still connecting is simply abandoned.
  if (socket.connecting) {
    socket.destroy();
    return;
  }
  if (socket.writableEnded) {
    if (now || socket.writableFinished) socket.destroy();
    else socket.once('finish', () => socket.destroy());
    return;
  }
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}
