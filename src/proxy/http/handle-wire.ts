/**
 * A plain-TCP connection of the HTTP proxy on a bare libuv TCP handle: a
 * client connection the listening handle accepted (listener.ts
 * `handleHandler`), or an upstream connection connected with a
 * TCPConnectWrap (transport.ts). No net.Socket is made for it (see wire.ts
 * for why and for the behaviour kept). The internals are those of
 * proxy/stream-handles.ts, through src/kernel/node-internals.ts.
 */
import type { Socket } from 'node:net';
import { constants } from 'node:os';
import {
  socketOverTcpHandle,
  type TcpConnectReq,
  type TcpHandle,
  type TcpHandles,
  type TcpShutdownReq,
  type WriteReq,
} from '../../kernel/node-internals.js';
import { handleView, nameOf } from '../handle-view.js';
import { READ_BUFFER } from '../reads.js';
import { Shut, UV_EOF } from '../stream-handles.js';
import { heldByLibuv, releaseWriteReq, takeWriteReq } from '../write-requests.js';
import type { ClientWire } from './wire.js';

/** What a HandleWire tells its connection. */
export interface WireUser {
  /** `n` bytes were read into READ_BUFFER. */
  handleRead(n: number): void;
  /** The client sent FIN. */
  onEnd(): void;
  /** The last write libuv held is done. */
  onDrain(): void;
  /** The handle is closed. */
  onClose(): void;
  /**
   * A read or write failed with the libuv `status` (a negative errno); the
   * handle is closed right after (then onClose). For a user that names the
   * error (the upstream leg: `read ECONNRESET`); a client connection needs
   * only the close.
   */
  onError?(status: number, syscall: 'read' | 'write'): void;
}

interface WireHandle extends TcpHandle {
  wire?: HandleWire;
  writeLatin1String?: (req: WriteReq, data: string) => number;
}

let binding: TcpHandles;

const EMPTY = Buffer.alloc(0);
/** libuv's ECONNRESET: the negative errno. */
const UV_ECONNRESET = -constants.errno.ECONNRESET;

function onRead(this: WireHandle): void {
  const wire = this.wire;
  if (wire === undefined || wire.closed) return;
  const n = binding.state[binding.readBytes]!;
  if (n > 0) {
    wire.bytesRead += n;
    wire.user.handleRead(n);
  } else if (n === UV_EOF) {
    wire.eof = true;
    wire.reading = false;
    wire.user.onEnd();
  } else if (n < 0) wire.fail(n, 'read');
}

function writeDone(this: WriteReq<HandleWire>, status: number): void {
  const wire = this.owner!;
  this.owner = undefined;
  this.buffer = null;
  this.handle = null;
  wire.pending--;
  if (wire.closed) return;
  if (status < 0) {
    wire.fail(status, 'write');
    return;
  }
  if (wire.pending === 0) wire.drained();
}

function shutDone(this: TcpShutdownReq, status: number): void {
  const wire = this.wire as HandleWire;
  this.wire = undefined;
  this.handle = null;
  wire.shut = Shut.Done;
  if (wire.closed) return;
  if (status < 0 || wire.closeAfterShut) wire.destroy();
}

function handleClosed(this: WireHandle): void {
  const wire = this.wire!;
  this.wire = undefined;
  if (!wire.handedOver) wire.user.onClose();
}

/** A WireUser that connects (`connectWire`): told once the connect completes. */
export interface ConnectingUser extends WireUser {
  /** The connect completed with `status`: 0, or a negative errno (the wire is still to be closed). */
  onConnect(status: number): void;
}

function connectDone(this: TcpConnectReq, status: number): void {
  const wire = this.wire as HandleWire;
  this.wire = undefined;
  if (!wire.closed) (wire.user as ConnectingUser).onConnect(status);
}

/**
 * A HandleWire on a new TCP handle connecting to `address`:`port` (an IP
 * literal) with a TCPConnectWrap, as net's connect does: `user.onConnect`
 * once it completes, then `start` reads. Writes made before that wait in
 * libuv's queue and go out once connected. `error` is the connect call's
 * own failure (a negative errno; 0 when asked); the descriptor exists once
 * asked (keepalive can go on it at once).
 */
export function connectWire(
  handles: TcpHandles,
  user: ConnectingUser,
  address: string,
  port: number,
): { wire: HandleWire; error: number } {
  const handle = handles.newSocket();
  // Kept by libuv until the descriptor exists.
  handle.setNoDelay(true);
  const wire = new HandleWire(handle, user, handles);
  const req = new handles.ConnectWrap();
  req.oncomplete = connectDone;
  req.wire = wire;
  // An IP literal: a colon is IPv6.
  const error = address.includes(':')
    ? handle.connect6(req, address, port)
    : handle.connect(req, address, port);
  return { wire, error };
}

export class HandleWire implements ClientWire {
  /** Writes libuv still holds (the kernel took part). */
  pending = 0;
  private waiters: (() => void)[] | undefined;
  reading = false;
  eof = false;
  shut = Shut.None;
  closeAfterShut = false;
  closed = false;
  /** A net.Socket was made over the handle (`handOver`): it is the socket's now. */
  handedOver = false;
  bytesRead = 0;
  bytesWritten = 0;
  readonly plain = true;

  constructor(
    readonly handle: WireHandle,
    readonly user: WireUser,
    handles: TcpHandles,
  ) {
    binding = handles;
    handle.wire = this;
  }

  /** Starts reading into the shared buffer (`false`: the handle refused, it is closed). */
  start(): boolean {
    const h = this.handle;
    h.onread = onRead;
    h.useUserBuffer(READ_BUFFER);
    this.reading = true;
    if (h.readStart() === 0) return true;
    this.reading = false;
    this.destroy();
    return false;
  }

  get destroyed(): boolean {
    return this.closed;
  }

  get writable(): boolean {
    return !this.closed && this.shut === Shut.None;
  }

  send(data: string | Buffer): void {
    if (!this.writable) return;
    const h = this.handle;
    const req = takeWriteReq(h, writeDone, this);
    this.bytesWritten += data.length;
    // What libuv must keep alive if it holds the write (Node's StreamBase copies a string's rest).
    let bytes: Buffer | null = null;
    let err: number;
    if (typeof data !== 'string') {
      bytes = data;
      err = h.writeBuffer(req, bytes);
    } else if (h.writeLatin1String !== undefined) err = h.writeLatin1String(req, data);
    else {
      bytes = Buffer.from(data, 'latin1');
      err = h.writeBuffer(req, bytes);
    }
    if (err !== 0) {
      releaseWriteReq(req);
      this.fail(err, 'write');
      return;
    }
    if (heldByLibuv(req, bytes)) this.pending++;
  }

  /** @internal a read or write failed: the user hears why, then the handle closes. */
  fail(status: number, syscall: 'read' | 'write'): void {
    if (this.closed) return;
    this.user.onError?.(status, syscall);
    this.destroy();
  }

  /**
   * After the peer's EOF: was it a reset? The zero-byte write of writes.ts
   * `resetBehindEnd` (libuv reports data then RST as EOF): the negative
   * errno of ECONNRESET, or 0 (a FIN, or can't tell while writes are held).
   */
  resetBehindEof(): number {
    if (this.closed || this.shut !== Shut.None || this.pending > 0) return 0;
    const req = takeWriteReq(this.handle, writeDone, this);
    const err = this.handle.writeBuffer(req, EMPTY);
    if (err !== 0) {
      releaseWriteReq(req);
      return err === UV_ECONNRESET ? err : 0;
    }
    // Queued (nothing learned): completes as any write.
    if (heldByLibuv(req, null)) this.pending++;
    return 0;
  }

  sendParts(parts: readonly (string | Buffer)[]): void {
    // libuv queues each behind the one before: the order is kept.
    for (const p of parts) this.send(p);
  }

  get blocked(): boolean {
    return this.pending > 0;
  }

  get allSent(): boolean {
    return this.pending === 0;
  }

  flushed(cb: () => void): void {
    if (this.pending > 0 && !this.closed) {
      if (this.waiters === undefined) this.waiters = [cb];
      else this.waiters.push(cb);
      return;
    }
    cb();
  }

  /** @internal every held write is done: 'drain', then the flush waiters. */
  drained(): void {
    const waiters = this.waiters;
    this.waiters = undefined;
    this.user.onDrain();
    if (waiters !== undefined) for (const w of waiters) if (!this.closed) w();
  }

  pause(): void {
    if (!this.reading || this.closed) return;
    this.reading = false;
    this.handle.readStop();
  }

  resume(): void {
    if (this.reading || this.closed || this.eof) return;
    this.reading = true;
    if (this.handle.readStart() !== 0) this.destroy();
  }

  end(last?: string): void {
    if (!this.writable) return;
    if (last !== undefined) this.send(last);
    if (this.closed) return;
    // After what was written: libuv sends the FIN once its queue is empty.
    const req = new binding.ShutdownWrap();
    req.handle = this.handle;
    req.oncomplete = shutDone;
    req.wire = this;
    this.shut = Shut.Asked;
    if (this.handle.shutdown(req) !== 0) {
      this.shut = Shut.Done;
      this.destroy();
    }
  }

  destroySoon(): void {
    if (this.closed) return;
    this.closeAfterShut = true;
    if (this.shut === Shut.None) this.end();
    else if (this.shut === Shut.Done) this.destroy();
  }

  /** Nothing is read, written or waited for from here on (every way the handle ends). */
  private markClosed(): void {
    this.closed = true;
    this.reading = false;
    this.waiters = undefined;
  }

  destroy(): void {
    if (this.closed) return;
    this.markClosed();
    // Held writes are cancelled (their callbacks see `closed`).
    this.handle.close(handleClosed);
  }

  /**
   * Closes without a close callback, and the connection hears of it before
   * this returns: libuv closes the descriptor in uv_close, and the callback
   * Node would make into JavaScript for it (MakeCallback, the per-callback
   * scope) is the last per-session cost the stream legs shed too
   * (stream-handles.ts). Only where nothing is in flight (connection.ts
   * `close`): a synchronous onClose inside a write or at accept would reach
   * the connection's owner before it expects it.
   */
  close(): void {
    if (this.closed) return;
    this.markClosed();
    // No callback comes: nothing reads `handle.wire` again (onRead stops with the close).
    this.handle.close();
    this.user.onClose();
  }

  reset(): void {
    if (this.closed) return;
    if (this.shut !== Shut.None) {
      // uv_tcp_close_reset refuses once a shutdown is asked: closed instead.
      this.destroy();
      return;
    }
    this.markClosed();
    if (this.handle.reset(handleClosed) !== 0) this.handle.close(handleClosed);
  }

  /**
   * Gives the handle up to a net.Socket made over it (an Upgrade tunnel,
   * HTTP/2): nothing here reads, writes or closes it again. Writes libuv
   * still holds go out before the socket's (libuv keeps one queue).
   */
  handOver(highWaterMark: number): Socket {
    this.handedOver = true;
    this.closed = true;
    this.waiters = undefined;
    const h = this.handle;
    h.wire = undefined;
    // Not started again while reading, nor after the client's FIN (the tunnel is told of the end).
    return socketOverTcpHandle(h, this.reading || this.eof, highWaterMark);
  }

  /** What the status page reads of a connection as of a Socket. */
  view(): Socket {
    return handleView(this);
  }

  /** The client's address, read once at accept (getpeername). */
  peer(): { address: string; port: number } {
    // Into the one reused out object (handle-view.ts: Node's C++ only stores into its fields).
    const at = nameOf(this.handle, true);
    return at === undefined ? { address: '', port: 0 } : { address: at.address, port: at.port };
  }
}
