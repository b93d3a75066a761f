/**
 * A connection kept as its bare TCP handle (a stream session's leg,
 * stream-handles.ts; a plain HTTP client connection, http/handle-wire.ts)
 * as the status page and `hash` read a Socket: addresses (getpeername or
 * getsockname when asked), byte counts and, through `_handle`, the
 * descriptor for its kernel readings (kernel/fd `fdOf`). No net.Socket is
 * made for it.
 */
import type { Socket } from 'node:net';
import type { TcpHandle } from '../kernel/node-internals.js';

/** What a view reads of the connection under it. */
export interface HandleViewed {
  readonly closed: boolean;
  readonly handle: TcpHandle;
  /** Bytes read from the peer (the handle's own counters are not kept for reads into a user buffer). */
  readonly bytesRead: number;
  /** Bytes handed to libuv for the peer. */
  readonly bytesWritten: number;
}

/**
 * getpeername's and getsockname's out object, one for every call: Node's
 * C++ sets `address`, `family` and `port` on the object it is given, and on
 * a fresh `{}` each of those was a property added in the runtime (a map
 * transition found by a lookup up the prototype chain, then a copy), about
 * 1,400 instructions each, three per short stream session. Here they are
 * already there and stay of one shape: each set only stores.
 */
const NAME = { address: '', family: '', port: 0 };

/**
 * The peer's (getpeername) or the local (getsockname) address of `handle`,
 * in one reused object: read it before the next call. Undefined when the
 * kernel has none (not connected, or closed).
 */
export function nameOf(handle: TcpHandle, peer: boolean): Readonly<typeof NAME> | undefined {
  const out = NAME as unknown as Record<string, unknown>;
  return (peer ? handle.getpeername(out) : handle.getsockname(out)) === 0 ? NAME : undefined;
}

class HandleView {
  readonly connecting = false;
  readonly pending = false;
  constructor(private readonly of: HandleViewed) {}
  get destroyed(): boolean {
    return this.of.closed;
  }
  get _handle(): TcpHandle | null {
    return this.of.closed ? null : this.of.handle;
  }
  private name(peer: boolean): Readonly<typeof NAME> | undefined {
    return this.of.closed ? undefined : nameOf(this.of.handle, peer);
  }
  get remoteAddress(): string | undefined {
    return this.name(true)?.address;
  }
  get remotePort(): number | undefined {
    return this.name(true)?.port;
  }
  get localAddress(): string | undefined {
    return this.name(false)?.address;
  }
  get localPort(): number | undefined {
    return this.name(false)?.port;
  }
  /** The bytes libuv holds for this connection (nothing is kept beyond them). */
  get writableLength(): number {
    return this.of.closed ? 0 : this.of.handle.writeQueueSize;
  }
  get bytesRead(): number {
    return this.of.bytesRead;
  }
  get bytesWritten(): number {
    return this.of.bytesWritten;
  }
}

/** `of` as the Socket the status page and `hash` read. */
export function handleView(of: HandleViewed): Socket {
  return new HandleView(of) as unknown as Socket;
}
