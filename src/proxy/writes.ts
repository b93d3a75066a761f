/**
 * Socket writes without the Writable stream machinery, when nothing is queued.
 *
 * A `socket.write` walks the Writable state machine (writeOrBuffer, _write,
 * a write request, then an afterWrite scheduled with nextTick) even when the
 * kernel takes every byte at once, which on the HTTP proxy's request path
 * is almost every write. `send` hands the bytes straight to the socket's
 * handle (the same write request Node's own net code makes, from the
 * `stream_wrap` binding) when the Writable has nothing buffered; libuv
 * writes at once and queues what the kernel did not take, in order, ahead
 * of any later write from either path, so mixing `send` with `socket.write`
 * (or `end`) keeps the byte order. While such a write is still queued,
 * `blocked` is true and 'drain' is emitted when it completes.
 *
 * Where the binding is not there (another Node), and on TLS sockets, `send`
 * is `socket.write`: a write request handed to a TLSWrap beside the ones
 * Node's tls code makes aborts the process (`Assertion failed:
 * !current_write_` in node::TLSWrap, Node 20), as
 * test/proxy/tls/tls-socket-io.test.ts shows when the check is removed.
 * The binding and the handle are Node internals, resolved once in
 * src/kernel/node-internals.ts; the write requests are write-requests.ts'.
 */
import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import { getSystemErrorName } from 'node:util';
import { handleOf, streamWrap, type WriteReq } from '../kernel/node-internals.js';
import { heldByLibuv, releaseWriteReq, takeWriteReq } from './write-requests.js';

interface Handle {
  writeBuffer(req: WriteReq, data: Buffer): number;
  writeLatin1String(req: WriteReq, data: string): number;
}

const PENDING = Symbol('keepwire.pendingWrites');
const WAITERS = Symbol('keepwire.flushWaiters');

interface Tracked {
  [PENDING]?: number;
  [WAITERS]?: (() => void)[];
}

/** Whether writes may go to the handle (this Node has the binding, and tests have not forced them off). */
let handleWrites = streamWrap !== null;

/** `tls.TLSSocket#encrypted`: true on TLS sockets. */
interface Encrypted {
  encrypted?: boolean;
}

/** Whether `send` can bypass the Writable on this Node. */
export function directWritesAvailable(): boolean {
  return handleWrites;
}

/** For tests: force every `send` through `socket.write` (true), or go back to what this Node has (false). */
export function forceStreamWrites(on: boolean): void {
  handleWrites = !on && streamWrap !== null;
}

function onComplete(this: WriteReq<Socket>, status: number): void {
  const socket = this.owner!;
  const tracked = socket as unknown as Tracked;
  this.buffer = null;
  tracked[PENDING] = (tracked[PENDING] ?? 1) - 1;
  if (status < 0 && !socket.destroyed) socket.destroy(uvError(status, 'write'));
  if (tracked[PENDING] !== 0) return;
  const waiters = tracked[WAITERS];
  tracked[WAITERS] = undefined;
  if (!socket.destroyed && !socket.writableNeedDrain) socket.emit('drain');
  if (waiters !== undefined) for (const w of waiters) flushed(socket, w);
}

/** The error Node makes of a failed libuv call (`write ECONNRESET`, code `ECONNRESET`). */
export function uvError(status: number, syscall: string): NodeJS.ErrnoException {
  let code: string;
  try {
    code = getSystemErrorName(status);
  } catch {
    code = String(status);
  }
  const e: NodeJS.ErrnoException = new Error(`${syscall} ${code}`);
  e.code = code;
  e.errno = status;
  e.syscall = syscall;
  return e;
}

/** Whether a `send` to `socket` now goes straight to its handle (else it is `socket.write`). */
function direct(socket: Socket, handle: Handle | null): handle is Handle {
  return !(
    !handleWrites ||
    !handle ||
    (socket as Encrypted).encrypted === true ||
    socket.writableLength !== 0 ||
    socket.writableCorked !== 0 ||
    socket.connecting ||
    !socket.writable
  );
}

/**
 * Whether a `send` to `socket` now goes straight to its handle: then the
 * bytes are with the kernel when it returns, unless `blocked(socket)` says
 * libuv holds them until 'drain'. Otherwise `send` is `socket.write`, which
 * keeps a reference to the Buffer until it is written.
 */
export function sendsDirect(socket: Socket): boolean {
  return direct(socket, handleOf(socket) as Handle | null);
}

/** Writes `data` (a string as latin1), in order with every other write on `socket`. */
export function send(socket: Socket, data: string | Buffer): void {
  const handle = handleOf(socket) as Handle | null;
  if (!direct(socket, handle)) {
    if (typeof data === 'string') socket.write(data, 'latin1');
    else socket.write(data);
    return;
  }
  const req = takeWriteReq(handle, onComplete, socket);
  const err = typeof data === 'string' ? handle.writeLatin1String(req, data) : handle.writeBuffer(req, data);
  if (err !== 0) {
    releaseWriteReq(req);
    socket.destroy(uvError(err, 'write'));
    return;
  }
  // The kernel took part: the rest waits in libuv, which needs a Buffer kept alive (Node copies a string's rest).
  if (heldByLibuv(req, typeof data === 'string' ? null : data)) {
    const tracked = socket as unknown as Tracked;
    tracked[PENDING] = (tracked[PENDING] ?? 0) + 1;
  }
}

/**
 * After 'end' on `socket`: was that end really a reset? libuv reports EOF
 * when the kernel flags the socket hung up (POLLHUP) after a short read,
 * without reading the error a RST left, so data then RST looks exactly like
 * data then FIN (a truncated stream presented as complete). A zero-byte
 * write asks the kernel: it fails with the pending ECONNRESET after a reset
 * (tcp_sendmsg returns sk_err), and succeeds after a plain FIN. After FIN
 * then RST the kernel keeps EPIPE instead, which is not a truncation: the
 * bytes before the FIN were complete. Answers only while the socket can
 * still be written without a queue (otherwise undefined: can't tell).
 */
export function resetBehindEnd(socket: Socket): NodeJS.ErrnoException | undefined {
  const handle = handleOf(socket) as Handle | null;
  if (
    !handleWrites ||
    !handle ||
    (socket as Encrypted).encrypted === true ||
    socket.destroyed ||
    socket.writableEnded ||
    socket.writableLength !== 0 ||
    ((socket as unknown as Tracked)[PENDING] ?? 0) > 0
  )
    return undefined;
  const req = takeWriteReq(handle, onComplete, socket);
  const err = handle.writeBuffer(req, EMPTY);
  if (heldByLibuv(req, null)) {
    // Queued behind a write libuv already holds: nothing learned, let it complete.
    const tracked = socket as unknown as Tracked;
    tracked[PENDING] = (tracked[PENDING] ?? 0) + 1;
    return undefined;
  }
  if (err === 0) return undefined;
  const e = uvError(err, 'write');
  return e.code === 'ECONNRESET' ? e : undefined;
}

/** Where `flattened` leaves its number: a store the compiler cannot drop as unused. */
let _flattenSink = 0;

/**
 * `text` made flat, once, for a string kept and written again and again (a
 * cached status line or header block). A string built by concatenation is a
 * V8 cons string, and each latin1 write of it (here, or Buffer#write)
 * flattens it again: a new string and a copy before the write's own copy,
 * 500–700 instructions for a head (bench/heads.ts, 2026-12-01). Read as a
 * number, a string is flattened in place, and stays flat.
 */
export function flattened(text: string): string {
  _flattenSink = Number(text);
  return text;
}

const EMPTY = Buffer.alloc(0);

/** True while written bytes wait for the socket (the caller should wait for 'drain'). */
export function blocked(socket: Socket): boolean {
  return ((socket as unknown as Tracked)[PENDING] ?? 0) > 0 || socket.writableNeedDrain;
}

/** True when every byte written so far is with the kernel. */
export function allSent(socket: Socket): boolean {
  return ((socket as unknown as Tracked)[PENDING] ?? 0) === 0 && socket.writableLength === 0;
}

/** Calls `cb` once every byte written so far is with the kernel (or the socket is gone). */
export function flushed(socket: Socket, cb: () => void): void {
  const tracked = socket as unknown as Tracked;
  if ((tracked[PENDING] ?? 0) > 0 && !socket.destroyed) {
    const waiters = tracked[WAITERS] ?? [];
    waiters.push(cb);
    tracked[WAITERS] = waiters;
    return;
  }
  if (socket.writableLength === 0) cb();
  else socket.write(Buffer.alloc(0), cb);
}
