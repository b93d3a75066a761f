/**
 * The write requests of keepwire's direct writes to libuv stream handles:
 * writes.ts (a net.Socket's handle when nothing is queued), stream-handles.ts
 * (a stream session's legs) and http/handle-wire.ts (a plain HTTP client
 * connection). Each takes a request, writes, and then asks `heldByLibuv`.
 *
 * A request is a `WriteWrap` (Node's C++-backed write request, the one its
 * net code makes per write). A write the kernel took whole, or one refused,
 * leaves Node holding nothing for the request, so the next write reuses it
 * (`spare`) rather than make one per write. A request libuv holds (the
 * kernel took part) is Node's until its `oncomplete` has run, and Node
 * releases its C++ half after that call: it is never reused, the collector
 * takes it.
 *
 * Every request gets its fields here, always the same ones in the same
 * order (one `owner` field whatever the caller), so V8 gives all of them
 * one shape and the three callers' accesses stay monomorphic. The binding
 * is Node's, resolved in src/kernel/node-internals.ts; callers write only
 * where it is there (writes.ts `directWritesAvailable`, `tcpHandles`).
 */
import { streamWrap, type WriteReq } from '../kernel/node-internals.js';

const WriteWrap = streamWrap?.WriteWrap;
/** `streamBaseState[kLastWriteWasAsync]`: whether libuv kept the last write (the kernel took part). */
const state = streamWrap?.streamBaseState ?? new Int32Array(1);
const LAST_WRITE_ASYNC = streamWrap?.kLastWriteWasAsync ?? 0;

let spare: WriteReq | undefined;

/** A write request to `handle` for `owner`, `oncomplete` called if libuv holds it. */
export function takeWriteReq<Owner>(
  handle: object,
  oncomplete: (this: WriteReq<Owner>, status: number) => void,
  owner: Owner,
): WriteReq<Owner> {
  const req = (spare ?? new (WriteWrap as new () => WriteReq)()) as WriteReq<Owner>;
  spare = undefined;
  req.handle = handle;
  req.oncomplete = oncomplete;
  req.owner = owner;
  req.buffer = null;
  req.async = false;
  return req;
}

/**
 * After a write of `req` that returned 0: whether libuv holds it (the
 * kernel took part; `buffer`, the bytes written if a Buffer, is kept alive
 * on it until `oncomplete`). If not, every byte is with the kernel and the
 * request is released for the next write.
 */
export function heldByLibuv(req: WriteReq, buffer: Buffer | null): boolean {
  if (state[LAST_WRITE_ASYNC] !== 0) {
    req.async = true;
    req.buffer = buffer;
    return true;
  }
  releaseWriteReq(req);
  return false;
}

/** `req`, written whole or refused, is free for the next write. */
export function releaseWriteReq(req: WriteReq): void {
  req.handle = null;
  req.owner = undefined;
  req.buffer = null;
  spare = req;
}
