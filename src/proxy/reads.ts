/**
 * Socket reads without the Readable stream machinery.
 *
 * Node's `onread` option (a caller-owned buffer and a callback per read)
 * skips a `push`, a 'data' event and stream bookkeeping per read: on the
 * HTTP proxy's request path that was the largest share of its JavaScript
 * time. `net.connect` takes the option; `net.Server` does not pass it to
 * accepted sockets, so `readsTo` sets the same three per-socket fields that
 * the Socket constructor sets for it (net's private symbols, resolved once in
 * src/kernel/node-internals.ts), and tells the handle to read into the
 * shared buffer. Where a Node version
 * does not have them, it falls back to 'data' events: same bytes, same
 * order, only slower (`test/proxy/reads.test.ts` checks both paths).
 *
 * TLS sockets take the same path: their handle, OpenSSL's TLSWrap, is a
 * stream handle with `useUserBuffer` too and hands over decrypted bytes
 * (test/proxy/tls/tls-socket-io.test.ts runs both paths on TLS). Writes do
 * not (see writes.ts).
 *
 * `socket.pause()`/`resume()` keep working: net's Socket stops and starts
 * the handle's reads itself when these fields are set. End of stream and
 * errors still arrive as 'end' and 'error'.
 */
import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import { handleOf, type OnreadFields, onreadFields } from '../kernel/node-internals.js';
import { hold, release } from './clock.js';

/**
 * One read buffer shared by every socket read this way. Each read is handed
 * on before the next can land (reads come only from the event loop, never
 * nested), and `readsTo` copies it out first, so nothing keeps a view of it.
 */
export const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** READ_BUFFER's memory: views of it are compared against this, never a `buffer` getter per call. */
const READ_STORE = READ_BUFFER.buffer;
const READ_OFFSET = READ_BUFFER.byteOffset;

/**
 * A Buffer view of READ_BUFFER, made the way Node makes its own (FastBuffer:
 * a Uint8Array whose prototype chain runs through Buffer.prototype), from
 * the memory it already knows. `Buffer#subarray` asks the source for its
 * `buffer` first, a call into C++ (about 140 instructions on Node 20); two
 * reads per proxied request each made one.
 */
class ReadView extends Uint8Array {}
Object.setPrototypeOf(ReadView.prototype, Buffer.prototype);

/** The last view `readView` made: `bodyView` knows it without asking it for its memory. */
let lastView: Buffer | null = null;

/** READ_BUFFER's first `n` bytes as a Buffer. */
function readView(n: number): Buffer {
  const view = new ReadView(READ_STORE, READ_OFFSET, n) as unknown as Buffer;
  lastView = view;
  return view;
}

/**
 * `data.subarray(start, end)`, made as `readView` makes its views when
 * `data` is the read being handed on: a response body that came in the same
 * read as its head (proxy/http/parser.ts) is a view of that view, and `subarray` would ask `data`
 * for its `buffer` and `byteOffset` (a call into C++ and a generic property
 * load each). Any other Buffer gets `subarray`. Valid as long as `data` is.
 */
export function bodyView(data: Buffer, start: number, end: number): Buffer {
  if (data === lastView)
    return new ReadView(READ_STORE, READ_OFFSET + start, end - start) as unknown as Buffer;
  return data.subarray(start, end);
}

export type ReadSink<T = unknown> = (this: T, chunk: Buffer) => void;

const SINK = Symbol('keepwire.readSink');
const RECEIVER = Symbol('keepwire.readReceiver');
const VIEW = Symbol('keepwire.readView');

interface Tapped {
  [SINK]?: ReadSink;
  [RECEIVER]?: unknown;
  /** `readsViewTo`: the sink takes a view of READ_BUFFER, not a copy. */
  [VIEW]?: boolean;
  [key: symbol]: unknown;
}

let fields: OnreadFields | null = onreadFields;

/** Whether accepted sockets can be read through `onread` on this Node. */
export function onreadAvailable(): boolean {
  return fields !== null;
}

/** For tests: force the 'data' event path (true) or go back to what this Node has (false). */
export function forceDataEvents(on: boolean): void {
  fields = on ? null : onreadFields;
}

/** The `onread` callback of every socket read this way (`this` is the socket). */
function onRead(this: Tapped, n: number, buf: Uint8Array): boolean {
  if (this[VIEW] === true) handTo(this[SINK]!, this[RECEIVER], readView(n));
  else handRead(n, buf, this[SINK]!, this[RECEIVER]);
  return true;
}

/** Calls `sink` with `chunk`, the request path's clock held for all the read sets off (clock.ts). */
function handTo<T>(sink: ReadSink<T>, receiver: T, chunk: Buffer): void {
  hold();
  try {
    sink.call(receiver, chunk);
  } finally {
    release();
  }
}

/**
 * Hands the `n` bytes an `onread` read put in `buf` (READ_BUFFER) to `sink`
 * as a Buffer of their own, with the request path's clock held for all the
 * read sets off (clock.ts). Also the upstream connections' `onread` callback.
 */
export function handRead<T>(n: number, buf: Uint8Array, sink: ReadSink<T>, receiver: T): void {
  const chunk = Buffer.allocUnsafe(n);
  chunk.set(buf.subarray(0, n));
  handTo(sink, receiver, chunk);
}

/**
 * Hands the `n` bytes an `onread` read put in READ_BUFFER to `sink` as a
 * view, valid only during the call (the next read overwrites it): for
 * sinks that turn most reads into strings or copies at once and keep a
 * view of nothing (`owned` copies what they keep). Saves a Buffer and a
 * copy per read (issue #20: the request and the response of a proxied
 * request are usually one read each).
 */
export function handView<T>(n: number, sink: ReadSink<T>, receiver: T): void {
  handTo(sink, receiver, readView(n));
}

/** Whether `chunk` is a view of READ_BUFFER (`readsViewTo`, `handView`): valid only until the next read. */
export function isReadView(chunk: Buffer): boolean {
  return chunk.buffer === READ_STORE;
}

/** `chunk` when it has memory of its own; a copy when it is a view of READ_BUFFER. */
export function owned(chunk: Buffer): Buffer {
  if (chunk.buffer !== READ_STORE) return chunk;
  const copy = Buffer.allocUnsafe(chunk.length);
  copy.set(chunk);
  return copy;
}

/**
 * Sends every read of `socket` to `sink` (called on `receiver`), each as a
 * Buffer of its own. Call it again to hand the reads to someone else (an
 * upgraded connection's tunnel); a new sink sees only reads that land after
 * the call. With a receiver, a connection needs no closure per socket.
 * `handleReadsToBuffer`: the handle already reads into READ_BUFFER (a socket
 * made again over a parked connection's handle): each `useUserBuffer` call
 * adds a listener to the handle for as long as it lives.
 */
export function readsTo<T>(
  socket: Socket,
  sink: ReadSink<T>,
  receiver?: T,
  handleReadsToBuffer = false,
): void {
  tap(socket, sink, receiver, false, handleReadsToBuffer);
}

/**
 * `readsTo` without the copy: `sink` gets each read as a view that is valid
 * only during the call (of the shared READ_BUFFER on the `onread` path), and
 * must copy what it keeps. The byte pump (pump.ts) copies into write buffers
 * it reuses: a Buffer of its own per read is fresh memory each time, and
 * first touching fresh pages (a page fault each 4 KiB, costly on a VM) was
 * most of a bulk transfer's CPU.
 */
export function readsViewTo<T>(
  socket: Socket,
  sink: ReadSink<T>,
  receiver?: T,
  handleReadsToBuffer = false,
): void {
  tap(socket, sink, receiver, true, handleReadsToBuffer);
}

function tap<T>(
  socket: Socket,
  sink: ReadSink<T>,
  receiver: T | undefined,
  view: boolean,
  handleReadsToBuffer: boolean,
): void {
  const tapped = socket as unknown as Tapped;
  const installed = tapped[SINK] !== undefined;
  tapped[SINK] = sink as ReadSink;
  tapped[RECEIVER] = receiver;
  tapped[VIEW] = view;
  if (installed) return;
  const handle = handleOf(socket);
  if (fields !== null && handle !== null && typeof handle.useUserBuffer === 'function') {
    tapped[fields.buffer] = READ_BUFFER;
    tapped[fields.generator] = null;
    tapped[fields.callback] = onRead;
    if (!handleReadsToBuffer) handle.useUserBuffer(READ_BUFFER);
    // Bytes the stream already took in (if it was reading before) come first.
    if (socket.readableLength > 0) sink.call(receiver as T, socket.read() as Buffer);
    return;
  }
  socket.on('data', function (this: Tapped, chunk: Buffer) {
    this[SINK]!.call(this[RECEIVER], chunk);
  });
}
