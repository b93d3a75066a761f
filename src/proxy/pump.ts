/**
 * Two sockets joined byte for byte: the stream proxy's sessions and the
 * HTTP proxy's Upgrade (WebSocket) tunnels. What one side reads the other
 * writes, in order; a side stops reading while its peer's write buffer is
 * full and starts again on the peer's 'drain' (the bound on buffering per
 * session); a FIN from one side becomes a FIN to the other while the
 * opposite direction keeps flowing (half-close). Reads go through
 * `readsTo`, so no Readable stream machinery runs per chunk. Errors, close
 * and timers stay with the caller, which knows what they mean.
 */
import type { Socket } from 'node:net';
import { readsTo } from './reads.js';
import { resetBehindEnd } from './writes.js';

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

export function joinSockets(client: Socket, upstream: Socket, events: PumpEvents): void {
  readsTo(client, (chunk: Buffer) => {
    events.onBytes(true, chunk.length, chunk);
    if (!upstream.write(chunk)) client.pause();
  });
  readsTo(upstream, (chunk: Buffer) => {
    events.onBytes(false, chunk.length, chunk);
    if (!client.write(chunk)) upstream.pause();
  });
  upstream.on('drain', () => client.resume());
  client.on('drain', () => upstream.resume());
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
