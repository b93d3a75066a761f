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
  client.on('end', () => {
    events.onEnd(true);
    upstream.end();
  });
  upstream.on('end', () => {
    events.onEnd(false);
    client.end();
  });
  client.resume();
  upstream.resume();
}
