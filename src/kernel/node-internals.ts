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
 * | `process.binding('stream_wrap')`: `WriteWrap`, `streamBaseState`, `kLastWriteWasAsync`; `_handle.writeBuffer`/`writeLatin1String` | proxy/write-requests (the requests of proxy/writes, stream-handles, http/handle-wire) | `socket.write` |
 * | `streamBaseState[kReadBytesOrError]`, `_handle.onread`, the handle's `owner_symbol`, `new Socket({ handle })` | proxy/http/parked (idle connections held as their TCP handle) | idle connections stay `net.Socket`s |
 * | `process.binding('tcp_wrap')`: `TCP`, `TCPConnectWrap`; stream_wrap `ShutdownWrap`; `server._handle.onconnection` | proxy/stream-handles, proxy/listener, proxy/http/handle-wire, proxy/http/transport (plain-TCP stream sessions, plain HTTP client and upstream connections on handles) | sessions and connections on `net.Socket` |
 * | `Buffer.prototype.latin1Slice`, `latin1Write` (undocumented; what `toString`/`write` call for 'latin1') | proxy/http (request and response heads in and out) | `buf.toString('latin1', …)`, `buf.write(…, 'latin1')` |
 */
import { Buffer } from 'node:buffer';
import { type Server, Socket } from 'node:net';

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

// ---- writes handed to the handle (proxy/write-requests.ts, for proxy/writes, stream-handles, http/handle-wire) ----

/**
 * A `WriteWrap` as keepwire fills it (proxy/write-requests.ts): the request
 * a handle's `writeBuffer`/`writeLatin1String` takes; libuv calls
 * `oncomplete` with a status (0 or a negative errno) when a write it held
 * is done. `handle` keeps the handle alive while libuv holds the request,
 * `buffer` the bytes; `owner` is the caller's (a socket, a stream leg, a
 * client wire).
 */
export interface WriteReq<Owner = unknown> {
  handle: object | null;
  // A method, so that a WriteReq<Leg> is a WriteReq (a handle takes any).
  oncomplete(this: WriteReq<Owner>, status: number): void;
  owner: Owner | undefined;
  buffer: Buffer | null;
  async: boolean;
}

/** What proxy/write-requests uses of `process.binding('stream_wrap')`. */
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

// ---- Latin-1 heads in and out (proxy/http: parser, request, connection) ----

/**
 * `Buffer.prototype.latin1Slice`/`latin1Write`: the C++ methods that
 * `buf.toString('latin1', a, b)` and `buf.write(s, at, 'latin1')` end in.
 * Called directly, with the function held here, a head costs no method
 * lookups on the Buffer: TurboFan left the Buffer method loads measured on
 * the request path (`toString`, `subarray`, `buffer`/`byteOffset`) as generic
 * LoadICs (perf under wrk: 2.6 % of the proxy's cycles), and `toString` adds its own encoding switch and bounds checks
 * (microbench, Node 20: 879 instructions against 726 for the slice).
 * Callers pass positions they found in the Buffer: `latin1Slice` throws
 * ERR_OUT_OF_RANGE for an end past it, where `toString` would clamp.
 * `latin1Write` cuts a string at the end of the Buffer, as `write` does.
 */
type Latin1Slice = (this: Uint8Array, start: number, end: number) => string;
type Latin1Write = (this: Uint8Array, text: string, offset: number) => number;
const bufferProto = Buffer.prototype as unknown as { latin1Slice?: unknown; latin1Write?: unknown };
const latin1SliceFn =
  typeof bufferProto.latin1Slice === 'function' ? (bufferProto.latin1Slice as Latin1Slice) : null;
const latin1WriteFn =
  typeof bufferProto.latin1Write === 'function' ? (bufferProto.latin1Write as Latin1Write) : null;

/** `buf`'s bytes `start`..`end` as a Latin-1 string: `buf.toString('latin1', start, end)`. */
export const latin1Slice: (buf: Buffer, start: number, end: number) => string =
  latin1SliceFn !== null
    ? (buf, start, end) => latin1SliceFn.call(buf, start, end)
    : (buf, start, end) => buf.toString('latin1', start, end);

/** Writes `text` as Latin-1 into `buf` at `offset`; the bytes written: `buf.write(text, offset, 'latin1')`. */
export const latin1Write: (buf: Buffer, text: string, offset: number) => number =
  latin1WriteFn !== null
    ? (buf, text, offset) => latin1WriteFn.call(buf, text, offset)
    : (buf, text, offset) => buf.write(text, offset, 'latin1');

function latin1Status(): InternalStatus {
  const missing = [latin1SliceFn === null && 'latin1Slice', latin1WriteFn === null && 'latin1Write'].filter(
    Boolean,
  );
  return {
    name: 'Buffer.prototype.latin1Slice + latin1Write',
    usedBy: 'proxy/http: request and response heads read and written as Latin-1',
    available: missing.length === 0,
    fallback: "buf.toString('latin1') / buf.write(s, at, 'latin1') (same bytes, slower)",
    detail:
      missing.length === 0
        ? 'both found on Buffer.prototype'
        : `Buffer.prototype has no ${missing.join(', ')}`,
  };
}

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
  out.push(tcpHandlesStatus());
  out.push(latin1Status());
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

// ---- stream sessions on TCP handles (proxy/stream-handles.ts, proxy/listener.ts) ----

/**
 * A libuv TCP handle from `process.binding('tcp_wrap')`, used without a
 * net.Socket: what the stream proxy accepts and connects for a plain-TCP
 * session. Reads land in the buffer given to `useUserBuffer`, `onread` is
 * called with `this` the handle and the length in `readLength()`; the
 * requests (`TcpConnectReq`, `TcpShutdownReq`, `WriteReq`) call their
 * `oncomplete` with a libuv status (0 or a negative errno).
 */
export interface TcpHandle {
  onread: (this: TcpHandle) => void;
  readStart(): number;
  readStop(): number;
  useUserBuffer(buf: Uint8Array): void;
  writeBuffer(req: WriteReq, data: Buffer): number;
  shutdown(req: TcpShutdownReq): number;
  /**
   * uv_tcp_close_reset: closes with a RST (the descriptor at once); `cb` once
   * libuv's closing phase is done. Non-zero: not done (e.g. EINVAL during a shutdown).
   */
  reset(cb?: (this: TcpHandle) => void): number;
  /** uv_close: the descriptor is closed at once; `cb` (stored on the handle by Node) once libuv's closing phase is done. */
  close(cb?: (this: TcpHandle) => void): void;
  connect(req: TcpConnectReq, address: string, port: number): number;
  connect6(req: TcpConnectReq, address: string, port: number): number;
  getpeername(out: Record<string, unknown>): number;
  getsockname(out: Record<string, unknown>): number;
  setNoDelay(on: boolean): number;
  readonly fd: number;
  /** Bytes of writes libuv still holds (uv_stream_t write_queue_size). */
  readonly writeQueueSize: number;
}

export interface TcpConnectReq {
  oncomplete: (this: TcpConnectReq, status: number) => void;
  [key: string]: unknown;
}
export interface TcpShutdownReq {
  handle: TcpHandle | null;
  oncomplete: (this: TcpShutdownReq, status: number) => void;
  [key: string]: unknown;
}
/** What a stream session on handles takes from `tcp_wrap` and `stream_wrap`. */
export interface TcpHandles {
  newSocket(): TcpHandle;
  ConnectWrap: new () => TcpConnectReq;
  ShutdownWrap: new () => TcpShutdownReq;
  /** `streamBaseState`: `[readBytes]` the last read's length (writes: proxy/write-requests.ts). */
  state: Int32Array;
  readBytes: number;
}

const TCP_HANDLE_METHODS = [
  'readStart',
  'readStop',
  'useUserBuffer',
  'writeBuffer',
  'shutdown',
  'reset',
  'close',
  'connect',
  'connect6',
  'getpeername',
  'getsockname',
  'setNoDelay',
] as const;

/** Why the handle path is not available on this Node (undefined when it is). */
let tcpHandlesMissing: string | undefined;

function loadTcpHandles(): TcpHandles | null {
  const sw = streamWrapBinding;
  let tw: Record<string, unknown>;
  try {
    tw = (process as unknown as { binding(name: string): Record<string, unknown> }).binding('tcp_wrap');
  } catch (error) {
    tcpHandlesMissing = `tcp_wrap binding: ${(error as Error).message}`;
    return null;
  }
  const TCP = tw.TCP as (new (kind: number) => TcpHandle) | undefined;
  const constants = tw.constants as { SOCKET?: number } | undefined;
  if (
    typeof TCP !== 'function' ||
    typeof tw.TCPConnectWrap !== 'function' ||
    typeof constants?.SOCKET !== 'number' ||
    sw === undefined ||
    typeof sw.ShutdownWrap !== 'function' ||
    // Their writes are proxy/write-requests', on the stream_wrap resolved above.
    streamWrap === null ||
    !(sw.streamBaseState instanceof Int32Array) ||
    typeof sw.kReadBytesOrError !== 'number'
  ) {
    tcpHandlesMissing =
      'tcp_wrap TCP/TCPConnectWrap or stream_wrap ShutdownWrap/WriteWrap/streamBaseState missing';
    return null;
  }
  // The start-up check: a handle (no descriptor until bind or connect) with every method used.
  const probe = new TCP(constants.SOCKET);
  const missing = TCP_HANDLE_METHODS.filter(
    (m) => typeof (probe as unknown as Record<string, unknown>)[m] !== 'function',
  );
  probe.close();
  if (missing.length > 0) {
    tcpHandlesMissing = `the TCP handle has no ${missing.join(', ')}`;
    return null;
  }
  const kind = constants.SOCKET;
  return {
    newSocket: () => new TCP(kind),
    ConnectWrap: tw.TCPConnectWrap as new () => TcpConnectReq,
    ShutdownWrap: sw.ShutdownWrap as new () => TcpShutdownReq,
    state: sw.streamBaseState,
    readBytes: sw.kReadBytesOrError,
  };
}

/** Resolved once at load; null where this Node lacks any part (stream sessions stay on net.Socket). */
export const tcpHandles: TcpHandles | null = loadTcpHandles();

interface ServerInternal {
  _handle?: { onconnection?: (this: unknown, err: number, client: TcpHandle | undefined) => void } | null;
}

/** Whether the last `acceptHandles` found net's `onconnection` on a listening handle (undefined: none tried yet). */
let acceptHookFound: boolean | undefined;

/**
 * Lets `take` have each connection `server` accepts as its bare TCP handle,
 * before net makes a Socket for it: net's own `onconnection` (the listening
 * handle's callback) runs only for the connections `take` declines (returns
 * false), so those get their net.Socket, 'connection' event and options as
 * before. False (nothing changed) where the server has no such handle
 * (not listening, or this Node names it otherwise).
 */
export function acceptHandles(server: Server, take: (client: TcpHandle) => boolean): boolean {
  const handle = (server as unknown as ServerInternal)._handle;
  const netOnConnection = handle?.onconnection;
  acceptHookFound = typeof netOnConnection === 'function';
  if (handle === null || handle === undefined || typeof netOnConnection !== 'function') return false;
  handle.onconnection = function (this: unknown, err: number, client: TcpHandle | undefined) {
    if (err === 0 && client !== undefined && take(client)) return;
    netOnConnection.call(this, err, client);
  };
  return true;
}

function tcpHandlesStatus(): InternalStatus {
  return {
    name: "process.binding('tcp_wrap') TCP + TCPConnectWrap, stream_wrap ShutdownWrap, net.Server _handle.onconnection",
    usedBy:
      'proxy/stream-handles, proxy/http/handle-wire: plain-TCP stream sessions, plain HTTP client and upstream connections on TCP handles (no net.Socket)',
    available: tcpHandles !== null && acceptHookFound !== false,
    fallback:
      'stream sessions and plain HTTP connections on net.Socket (same behaviour, more CPU per session)',
    detail:
      tcpHandles === null
        ? (tcpHandlesMissing ?? 'unavailable')
        : acceptHookFound === false
          ? 'a listening net.Server has no _handle.onconnection'
          : acceptHookFound === undefined
            ? 'TCP handle methods found; onconnection is checked on the first listener'
            : 'TCP handle methods and onconnection found',
  };
}

// ---- plain HTTP connections on TCP handles (proxy/http/handle-wire.ts) ----

/**
 * A net.Socket made over a bare TCP handle a plain HTTP connection ran on
 * (an Upgrade tunnel or HTTP/2 takes it over). `reading`: whether the
 * handle is reading now, or must not be started again (after the client's
 * FIN); net reads its own `reading` flag on the handle to decide whether to
 * start it (a second readStart fails with EALREADY and destroys the socket).
 * The internals are those of `socketOnHandle` and the tcp_wrap handles above.
 */
export function socketOverTcpHandle(handle: TcpHandle, reading: boolean, highWaterMark: number): Socket {
  (handle as unknown as BareHandle).reading = reading;
  return socketOnHandle(handle as unknown as BareHandle, highWaterMark);
}
