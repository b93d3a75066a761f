/**
 * Every private Node API keepwire uses, in one file. Each is resolved once,
 * when this module loads, and has a fallback (or a named error) where a Node
 * release takes it away; `nodeInternals()` says which are available, and
 * `keepwire selfcheck` prints it, so a Node upgrade that changes one breaks
 * here and says so.
 *
 * | internal                               | used by                          | without it                                        |
 * | -------------------------------------- | -------------------------------- | ------------------------------------------------- |
 * | `socket._handle`, `_handle.fd`         | kernel/fd (keepalive, probe)     | NoFileDescriptorError: no per-socket options      |
 * | `tlsSocket._parent`                    | kernel/fd (keepalive on TLS)     | the TLSSocket's own handle fd (TLSWrap proxies it) |
 * | net's `kBuffer`, `kBufferCb`, `kBufferGen` symbols, `_handle.useUserBuffer` | proxy/reads (onread on accepted sockets) | 'data' events |
 * | `process.binding('stream_wrap')`: `WriteWrap`, `streamBaseState`, `kLastWriteWasAsync`; `_handle.writeBuffer`/`writeLatin1String` | proxy/writes | `socket.write` |
 * | `streamBaseState[kReadBytesOrError]`, `_handle.onread`, the handle's `owner_symbol`, `new Socket({ handle })` | proxy/http/parked (idle connections held as their TCP handle) | idle connections stay `net.Socket`s |
 */
import { Socket } from 'node:net';

/** A libuv stream handle as net.Socket holds it in `_handle`. */
export interface NodeHandle {
  fd?: number;
  useUserBuffer?: (buf: Uint8Array) => void;
  writeBuffer?: (req: unknown, data: Buffer) => number;
  writeLatin1String?: (req: unknown, data: string) => number;
}

interface Internal {
  _handle?: NodeHandle | null;
  _parent?: unknown;
}

/** `socket._handle`: the libuv handle (TCP, or TLSWrap over one), null before connect and after close. */
export function handleOf(socket: Socket): NodeHandle | null {
  return (socket as unknown as Internal)._handle ?? null;
}

/** `socket._handle.fd`: the kernel descriptor, or undefined/-1 when the handle has none. */
export function handleFd(socket: Socket): number | undefined {
  return (socket as unknown as Internal)._handle?.fd;
}

/**
 * The net.Socket that owns the descriptor: a TLSSocket made over a net.Socket
 * (server side, `tls.connect({ socket })`, `new TLSSocket(socket)`) keeps it
 * in `_parent`; `tls.connect()` without one has a TLSWrap over its own TCP
 * handle, whose fd and setKeepAlive reach that handle.
 */
export function tcpSocketOf(socket: Socket): Socket {
  const parent = (socket as unknown as Internal)._parent;
  return parent instanceof Socket ? tcpSocketOf(parent) : socket;
}

// ---- onread on accepted sockets (proxy/reads.ts) ----

/** The three per-socket fields net's Socket constructor sets for the `onread` option. */
export interface OnreadFields {
  buffer: symbol;
  callback: symbol;
  generator: symbol;
}

function findOnreadFields(): OnreadFields | null {
  const byName = new Map<string | undefined, symbol>();
  // The constructor sets them on every socket, with or without `onread`.
  for (const s of Object.getOwnPropertySymbols(new Socket())) byName.set(s.description, s);
  const buffer = byName.get('kBuffer');
  const callback = byName.get('kBufferCb');
  const generator = byName.get('kBufferGen');
  if (buffer === undefined || callback === undefined || generator === undefined) return null;
  return { buffer, callback, generator };
}

/** Resolved once at load; null where this Node has other fields (reads fall back to 'data' events). */
export const onreadFields: OnreadFields | null = findOnreadFields();

// ---- writes handed to the handle (proxy/writes.ts) ----

export interface WriteReq {
  handle: unknown;
  oncomplete: (this: WriteReq, status: number) => void;
  socket: Socket | undefined;
  buffer: Buffer | null;
  async: boolean;
}

/** What proxy/writes uses of `process.binding('stream_wrap')`. */
export interface StreamWrap {
  WriteWrap: new () => WriteReq;
  streamBaseState: Int32Array;
  kLastWriteWasAsync: number;
}

/** `process.binding('stream_wrap')`, read once for the writes and for parking; undefined where not exposed. */
const streamWrapBinding: Record<string, unknown> | undefined = (() => {
  try {
    return (process as unknown as { binding(name: string): Record<string, unknown> }).binding('stream_wrap');
  } catch {
    return undefined;
  }
})();

function loadStreamWrap(): StreamWrap | null {
  const b = streamWrapBinding;
  if (
    b !== undefined &&
    typeof b.WriteWrap === 'function' &&
    b.streamBaseState instanceof Int32Array &&
    typeof b.kLastWriteWasAsync === 'number'
  )
    return b as unknown as StreamWrap;
  // Not exposed on this Node: every write goes through the Writable.
  return null;
}

/** Resolved once at load; null where this Node does not expose it (writes use `socket.write`). */
export const streamWrap: StreamWrap | null = loadStreamWrap();

// ---- idle connections held as their TCP handle (proxy/http/parked.ts) ----

/**
 * An accepted TCP handle taken from its net.Socket: it keeps reading (into
 * the user buffer it was given), and its `onread` is called with `this` the
 * handle and the read's length in `readLength()`.
 */
export interface BareHandle {
  onread: (this: BareHandle) => void;
  close(cb?: () => void): void;
  reading?: boolean;
  useUserBuffer?: (buf: Uint8Array) => void;
  [key: symbol]: unknown;
}

/** What `detachHandle`/`socketOnHandle` need: the read length's slot and the handle's link to its socket. */
interface Bare {
  state: Int32Array;
  readBytes: number;
}

function loadBare(): Bare | null {
  const b = streamWrapBinding;
  if (b !== undefined && b.streamBaseState instanceof Int32Array && typeof b.kReadBytesOrError === 'number')
    return { state: b.streamBaseState, readBytes: b.kReadBytesOrError };
  // Not exposed: idle connections stay net.Sockets.
  return null;
}

const bare: Bare | null = loadBare();
/** net's `owner_symbol` on a handle (the handle's link to its socket), found on the first live handle. */
let ownerSymbol: symbol | null | undefined;

function ownerSymbolOf(handle: object): symbol | null {
  if (ownerSymbol === undefined)
    ownerSymbol = Object.getOwnPropertySymbols(handle).find((s) => s.description === 'owner_symbol') ?? null;
  return ownerSymbol;
}

/** Whether idle connections can be held as their TCP handle on this Node (a live socket settles `owner_symbol`). */
export function bareHandlesAvailable(): boolean {
  return bare !== null && ownerSymbol !== null;
}

/** The length (or negative libuv error, UV_EOF at end) of the read a bare handle's `onread` was called for. */
export function readLength(): number {
  return bare!.state[bare!.readBytes]!;
}

/**
 * Takes `socket`'s TCP handle from it, still reading, its reads going to
 * `onread` (`this` the handle), and destroys the socket without closing the
 * handle (its 'close' is emitted: remove your listeners first). Null (the
 * socket untouched) where this Node lacks what it takes or the socket has
 * no plain reading TCP handle.
 */
export function detachHandle(socket: Socket, onread: (this: BareHandle) => void): BareHandle | null {
  if (bare === null) return null;
  const internal = socket as unknown as Internal;
  const handle = internal._handle as unknown as BareHandle | null | undefined;
  if (
    handle === null ||
    handle === undefined ||
    handle.reading !== true ||
    typeof handle.close !== 'function'
  )
    return null;
  const owner = ownerSymbolOf(handle);
  if (owner === null || handle[owner] !== socket) return null;
  handle.onread = onread;
  // The handle no longer names the socket, which the collector may take now.
  handle[owner] = null;
  internal._handle = null;
  socket.destroy();
  return handle;
}

/**
 * A net.Socket made again over a handle `detachHandle` took: net links it
 * (owner_symbol, its own onread); the handle is still reading, so net does
 * not start it again (a second readStart would fail with EALREADY).
 */
export function socketOnHandle(handle: BareHandle, highWaterMark: number): Socket {
  return new Socket({
    handle,
    allowHalfOpen: true,
    readable: true,
    writable: true,
    readableHighWaterMark: highWaterMark,
    writableHighWaterMark: highWaterMark,
  } as ConstructorParameters<typeof Socket>[0]);
}

// ---- the self-check ----

export interface InternalStatus {
  name: string;
  usedBy: string;
  available: boolean;
  /** What keepwire does without it. */
  fallback: string;
  /** What was checked and, when unavailable, what was found. */
  detail: string;
}

/**
 * A connected TCP socket to check the handle-level internals on (the ones
 * only a live socket has). Without it, those are reported from Node's
 * prototypes alone.
 */
export interface LiveSample {
  connected: Socket;
}

/**
 * The state of every private Node API keepwire uses, on this Node. The
 * module-level ones were resolved at load; with a live socket, the
 * handle-level ones are checked on it (and on a TLSSocket made over a fresh
 * net.Socket for `_parent`, never over the live one).
 */
export function nodeInternals(sample?: LiveSample): InternalStatus[] {
  const out: InternalStatus[] = [];
  const live = sample?.connected;
  const handle = live ? handleOf(live) : null;
  const fd = live ? handleFd(live) : undefined;
  out.push({
    name: '_handle.fd',
    usedBy: 'kernel/fd: per-socket keepalive, probe, selfcheck',
    available: live ? typeof fd === 'number' && fd >= 0 : '_handle' in new Socket(),
    fallback: 'none: per-socket options fail with NoFileDescriptorError',
    detail: live ? `fd of a connected socket: ${String(fd)}` : 'no live socket given: `_handle` field only',
  });
  out.push(parentStatus());
  out.push({
    name: 'kBuffer/kBufferCb/kBufferGen + _handle.useUserBuffer',
    usedBy: 'proxy/reads: onread on accepted sockets',
    available: onreadFields !== null && (!live || typeof handle?.useUserBuffer === 'function'),
    fallback: "'data' events (same bytes, slower)",
    detail:
      onreadFields === null
        ? 'net.Socket has no kBuffer/kBufferCb/kBufferGen symbols'
        : live && typeof handle?.useUserBuffer !== 'function'
          ? 'the TCP handle has no useUserBuffer'
          : 'symbols found on net.Socket',
  });
  out.push({
    name: "process.binding('stream_wrap').WriteWrap + _handle.writeBuffer",
    usedBy: 'proxy/writes: writes handed to the handle',
    available:
      streamWrap !== null &&
      (!live ||
        (typeof handle?.writeBuffer === 'function' && typeof handle.writeLatin1String === 'function')),
    fallback: 'socket.write (same bytes, slower)',
    detail:
      streamWrap === null ? 'stream_wrap binding missing or changed' : 'WriteWrap, streamBaseState found',
  });
  const owner = handle !== null ? ownerSymbolOf(handle) : ownerSymbol;
  out.push({
    name: 'streamBaseState[kReadBytesOrError] + _handle.onread + owner_symbol + new Socket({ handle })',
    usedBy: 'proxy/http/parked: idle keep-alive connections held as their TCP handle',
    available: bare !== null && owner !== null,
    fallback: 'idle connections stay net.Sockets (same behaviour, more memory)',
    detail:
      bare === null
        ? 'stream_wrap has no streamBaseState/kReadBytesOrError'
        : owner === null
          ? 'the TCP handle has no owner_symbol'
          : owner === undefined
            ? 'kReadBytesOrError found; owner_symbol is checked on the first live handle'
            : 'kReadBytesOrError and owner_symbol found',
  });
  return out;
}

function parentStatus(): InternalStatus {
  const status = {
    name: 'TLSSocket._parent',
    usedBy: 'kernel/fd: keepalive on a TLS socket goes on its TCP socket',
    fallback: "the TLSSocket's own handle fd",
  };
  try {
    // Loaded here, not at start-up: a program that never uses TLS does not pay for node:tls.
    const { TLSSocket } = process.getBuiltinModule('node:tls');
    const tcp = new Socket();
    const tls = new TLSSocket(tcp);
    const ok = tcpSocketOf(tls) === tcp;
    tls.destroy();
    tcp.destroy();
    return {
      ...status,
      available: ok,
      detail: ok ? 'a TLSSocket over a net.Socket names it' : '_parent is not the net.Socket',
    };
  } catch (error) {
    return { ...status, available: false, detail: (error as Error).message };
  }
}
