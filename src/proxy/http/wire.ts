/**
 * What a client connection (connection.ts) needs of the connection under it:
 * writes in order (with whether libuv still holds some), pause and resume of
 * reads, a FIN after what was written (end), close (destroy), and a reset.
 * An upstream connection (transport.ts) writes, pauses, resumes and
 * destroys through the same interface. Two kinds:
 *
 * - `SocketWire`, a net.Socket (TLS connections, a plain one on a Node
 *   without the handle internals, an upstream named by a host name, or
 *   once a socket was made over a handle for an Upgrade tunnel or HTTP/2):
 *   writes through writes.ts, the socket's events heard by its owner
 *   (`attach`);
 * - `HandleWire` (handle-wire.ts), a bare libuv TCP handle: the one the
 *   listening handle accepted (listener.ts `handleHandler`), or an upstream
 *   connection's, connected with a TCPConnectWrap; no net.Socket made for
 *   it: reads into the shared READ_BUFFER (its `onread`), writes with
 *   WriteWrap requests, shutdown with a ShutdownWrap, close and reset on
 *   the handle. A short session spent about 30 % of its user-space time in
 *   net's Socket (constructor, _destroy, the end/finish chain:
 *   docs/performance.md, short sessions); stream sessions avoid it the same
 *   way (proxy/stream-handles.ts). On a kept-alive upstream connection the
 *   socket's read callback and Writable state were about 3 % of the
 *   proxy's user time (perf, 2026-12-02).
 *
 * Behaviour is the socket's: a client FIN is an end the connection decides
 * on (allowHalfOpen), a read or write error closes the connection (a
 * handle's owner is told the errno first, `WireUser.onError`), 'drain'
 * when the last held write completes, destroySoon is a FIN after what was
 * written and then close.
 */
import type { Socket } from 'node:net';
import { resetSocket } from '../pump.js';
import { allSent, blocked, flushed, send } from '../writes.js';

export interface ClientWire {
  /** Closed (or handed over): nothing more is read or written. */
  readonly destroyed: boolean;
  /** Writes are still taken (not ended, not closed). */
  readonly writable: boolean;
  /** Not TLS: close(2) alone ends it cleanly (a TLS connection ends with its close_notify). */
  readonly plain: boolean;
  /** Writes `data` (a string as latin1), in order with every other write. */
  send(data: string | Buffer): void;
  /** Writes the parts in order (Buffers with memory of their own). */
  sendParts(parts: readonly (string | Buffer)[]): void;
  /** Written bytes wait for the client: wait for the connection's onDrain. */
  readonly blocked: boolean;
  /** Every byte written so far is with the kernel. */
  readonly allSent: boolean;
  /** Calls `cb` once every byte written so far is with the kernel (or the connection is gone). */
  flushed(cb: () => void): void;
  pause(): void;
  resume(): void;
  /** A FIN after what was written (`last` first). */
  end(last?: string): void;
  /** `end`, then close once the FIN is out. */
  destroySoon(): void;
  /** Closes now (a FIN, or a RST when the client's bytes are unread, as close(2)). */
  destroy(): void;
  /**
   * `destroy` where the connection has nothing in flight (its response
   * written, nothing unread): a HandleWire tells the connection's onClose
   * before returning, a socket's 'close' comes later as after `destroy`.
   */
  close(): void;
  /** A RST (stop's deadline cutting a request in flight). */
  reset(): void;
}

/** `tls.TLSSocket#encrypted`: true on TLS sockets. */
interface Encrypted {
  encrypted?: boolean;
}

export class SocketWire implements ClientWire {
  constructor(readonly socket: Socket) {}
  get destroyed(): boolean {
    return this.socket.destroyed;
  }
  get writable(): boolean {
    return this.socket.writable;
  }
  get plain(): boolean {
    return (this.socket as Encrypted).encrypted !== true;
  }
  send(data: string | Buffer): void {
    send(this.socket, data);
  }
  sendParts(parts: readonly (string | Buffer)[]): void {
    const socket = this.socket;
    socket.cork();
    for (const p of parts) {
      if (typeof p === 'string') socket.write(p, 'latin1');
      else socket.write(p);
    }
    socket.uncork();
  }
  get blocked(): boolean {
    return blocked(this.socket);
  }
  get allSent(): boolean {
    return allSent(this.socket);
  }
  flushed(cb: () => void): void {
    flushed(this.socket, cb);
  }
  pause(): void {
    this.socket.pause();
  }
  resume(): void {
    this.socket.resume();
  }
  end(last?: string): void {
    if (last === undefined) this.socket.end();
    else this.socket.end(last, 'latin1');
  }
  destroySoon(): void {
    this.socket.destroySoon();
  }
  destroy(): void {
    this.socket.destroy();
  }
  close(): void {
    this.socket.destroy();
  }
  reset(): void {
    resetSocket(this.socket, true);
  }
}
