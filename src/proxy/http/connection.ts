/**
 * One client connection of the HTTP proxy, on a raw `net.Socket` or the bare
 * TCP handle of a plain connection (through a ClientWire, wire.ts): reads
 * requests one at a time (a pipelined request waits in the buffer until the
 * response before it has left, so responses go out in order), frames
 * responses, and applies the connection's timers:
 *   - client_header_timeout from accept (first request) or from the first
 *     byte of a later one: 408 and close;
 *   - keepalive_timeout while idle between requests: silent close;
 *   - a lingering close (nginx's lingering_timeout) when a response that
 *     closes the connection leaves request bytes unread, so the client reads
 *     the answer instead of a reset.
 * Response bytes are queued and leave in one write per upstream read (head,
 * body and end of a small response are one `write`), never one per header.
 */
import { Buffer } from 'node:buffer';
import { Socket } from 'node:net';
import {
  type BareHandle,
  detachHandle,
  latin1Write,
  onreadFields,
  readLength,
  socketOnHandle,
  type TcpHandle,
  tcpHandles,
} from '../../kernel/node-internals.js';
import { Deadline } from '../deadline.js';
import { SOCKET_HIGH_WATER_MARK } from '../listener.js';
import { handView, isReadView, owned, READ_BUFFER, readsTo, readsViewTo } from '../reads.js';
import { allSent, flattened } from '../writes.js';
import type { ClientSide } from './client-side.js';
import { HandleWire } from './handle-wire.js';
import { headerLines } from './headers.js';
import type { ClientLimits } from './limits.js';
import { parkingAllowed, parkingCounts } from './parked.js';
import {
  BodyReader,
  type BodySink,
  type ClientRequest,
  checkIncompleteHead,
  findHeadEnd,
  type HeadRules,
  leadingEmptyLines,
  MAX_REQUEST_HEAD,
  parseRequestHead,
  RequestError,
} from './request.js';
import { type ClientWire, SocketWire } from './wire.js';

/** What a request in flight (an exchange, or a local answer) hears from its connection. */
export interface ClientUser extends BodySink {
  /** The socket took the bytes that were waiting: reads from the upstream may go on. */
  onClientDrain(): void;
  /** The response was handed to the kernel whole (true), or the connection closed first (false). */
  onClientDone(complete: boolean): void;
  /** The request body turned out malformed. */
  onClientBodyError(error: RequestError): void;
}

/** What the connection needs from its frontend. */
export interface ConnectionOwner {
  /** From the address's default server: a head is read before its Host is known. */
  readonly clientHeaderTimeoutMs: number;
  /** The default server's settings, until a request is routed. */
  readonly defaultLimits: ClientLimits;
  /** How heads are read (the default server's header settings). */
  readonly headRules: HeadRules;
  /** Whether the response to this request may leave the connection open. */
  mayKeepAlive(conn: ClientConnection): boolean;
  onRequest(conn: ClientConnection, req: ClientRequest): void;
  /** A request that could not be parsed, or a header timeout (status 408). */
  onClientError(conn: ClientConnection, error: RequestError, req: ClientRequest | undefined): void;
  /** True while draining: responses say `Connection: close`. */
  readonly draining: boolean;
  /**
   * Cutting everything (stop): idle connections close at once. Never while
   * draining (reload or graceful stop): a connection closes only after a
   * response that said `Connection: close`, or at keepalive_timeout; closing
   * one the client may be sending its next request on resets that request.
   */
  readonly closeIdle: boolean;
  /** The socket closed, whoever had it last (also after an Upgrade). */
  connectionClosed(conn: ClientConnection): void;
  /** keepalive_timeout passed on an idle connection, which is closed now (metrics). */
  idleTimedOut(conn: ClientConnection): void;

  /**
   * `http2 on` (the default server's): a connection that starts with the
   * HTTP/2 client preface is handed over whole (`held`: the bytes read so
   * far, the preface included), as nginx's h2c with prior knowledge.
   */
  readonly http2: ((conn: ClientConnection, held: Buffer) => void) | undefined;
}

/** RFC 9113 §3.4: the client connection preface of HTTP/2. */
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** 1: `buf` starts with the whole preface; 0: with a part of it (wait for more); -1: not HTTP/2. */
function prefaceMatch(buf: Buffer): number {
  const n = Math.min(buf.length, H2_PREFACE.length);
  if (buf.compare(H2_PREFACE, 0, n, 0, n) !== 0) return -1;
  return n === H2_PREFACE.length ? 1 : 0;
}

/** How long unread request bytes are drained after a closing response (nginx's lingering_timeout). */
export const LINGER_MS = 5_000;
/** Pipelined bytes kept while a response is in progress before reading pauses. */
const PIPELINE_LIMIT = 64 * 1024;
/** Queued response bytes copied into one buffer (one write) rather than written as a vector. */
const COALESCE_LIMIT = 16 * 1024;
/**
 * `Uint8Array#set`, held here: `item.copy(buf, at)` is Buffer#copy's
 * argument checks and a generic method load on every call (TurboFan leaves
 * Buffer method loads in this path as LoadICs); the copy is the same memcpy.
 */
const setBytes = Uint8Array.prototype.set;
/** The framing and connection lines after a head passed on as bytes (startResponse). */
const CHUNKED_LINE = Buffer.from('Transfer-Encoding: chunked\r\n', 'latin1');
const CLOSE_LINES = Buffer.from('Connection: close\r\n\r\n', 'latin1');

export enum BodyKind {
  /** No body (HEAD, 1xx, 204, 304, or the upstream said so). */
  None,
  /** Framed by the Content-Length among the headers given. */
  Length,
  /** Length unknown: chunked to an HTTP/1.1 client, close-delimited to HTTP/1.0. */
  Stream,
}

enum Phase {
  /** Waiting for (or reading) a request head. */
  Head,
  /** Reading a request body. */
  Body,
  /** The request was read whole; its response is under way. */
  After,
  /** Ending: nothing more is parsed. */
  Closed,
}

enum Timer {
  None,
  Idle,
  Header,
  Linger,
  /** Dropping the rest of a body whose response is out: client_body_timeout between reads. */
  Discard,
}

export class ClientConnection implements ClientSide {
  readonly remoteAddr: string;
  readonly remotePort: number;
  readonly acceptedAt = Date.now();
  /** When the connection last became idle (accept, or the end of a response): for metrics and the status page. */
  idleSince = this.acceptedAt;
  /** The socket belongs to an Upgrade tunnel now. */
  tunnelled = false;
  /** Requests started on this connection. */
  requests = 0;
  req: ClientRequest | undefined;
  user: ClientUser | undefined;
  /** Status of the response under way, 0 before its head. */
  status = 0;
  /** Response body bytes queued (after framing is removed). */
  bodyBytes = 0;
  /**
   * The settings of the server and location the current (or last) request
   * was routed to, set by the frontend: keep-alive rules, client_body_timeout,
   * send_timeout, body limits.
   */
  limits: ClientLimits;

  private buf: Buffer | undefined;
  /** Storage `buf` may be a view of, filled up to `storeEnd`. */
  private store: Buffer | undefined;
  private storeEnd = 0;
  /** How much of an incomplete head in `buf` was already searched. */
  private scanned = 0;
  private phase = Phase.Head;
  /** Made for a request with a body, dropped once the connection is idle again: most requests never need one. */
  private bodyReader: BodyReader | undefined;
  private responding = false;
  private awaitingFlush = false;
  private chunked = false;
  private noBody = false;
  private keep = false;
  private peerEnded = false;
  private pumping = false;
  private pausedForPipeline = false;
  /**
   * Response bytes queued, in order: the first three pieces in fields of
   * their own (most responses are a head, or a proxied head in two pieces,
   * and one body read: no array per response), any further ones in `out`,
   * made only for them. Dropped once written (an idle connection holds no array).
   */
  private out1: string | Buffer | undefined;
  private out2: string | Buffer | undefined;
  private out3: string | Buffer | undefined;
  private out: (string | Buffer)[] | undefined;
  private outBytes = 0;
  private timerKind = Timer.Header;
  /** One deadline per connection for every client-side wait (header, keep-alive, linger, discard). */
  private readonly timer = new Deadline<ClientConnection>(this, this.onTimer);

  /** The socket; undefined while parked (held as `parked`, its bare TCP handle: parked.ts). */
  private sock: Socket | undefined;
  private parked: BareHandle | undefined = undefined;
  /** What reads and writes go through (wire.ts): over `sock` or `hw`; undefined while parked. */
  private wire: ClientWire | undefined;
  /** A plain connection on its bare TCP handle (handle-wire.ts), until a hand-over makes a socket over it. */
  private hw: HandleWire | undefined;
  /** A handle connection counted as parked (idle a while; it holds no socket anyway). */
  private handleParked = false;

  /**
   * `client`: an accepted net.Socket (a TLS one past its handshake), or the
   * bare TCP handle of a plain connection (listener.ts `handleHandler`),
   * read and written without a net.Socket (handle-wire.ts).
   */
  constructor(
    private readonly owner: ConnectionOwner,
    client: Socket | TcpHandle,
    /** A plain HTTP client on an `ssl` address: its request is answered 400 and the connection closed. */
    readonly plainOnTlsPort = false,
  ) {
    this.limits = owner.defaultLimits;
    if (client instanceof Socket) {
      this.remoteAddr = client.remoteAddress ?? '';
      this.remotePort = client.remotePort ?? 0;
      this.attach(client);
    } else {
      const hw = new HandleWire(client, this, tcpHandles!);
      // getpeername once, at accept (every log line has the address).
      const peer = hw.peer();
      this.remoteAddr = peer.address;
      this.remotePort = peer.port;
      this.hw = hw;
      this.wire = hw;
      // A handle that cannot read is closed (onClose follows, from libuv).
      hw.start();
    }
    // nginx's client_header_timeout runs from accept for the first request.
    this.setTimer(Timer.Header, owner.clientHeaderTimeoutMs);
  }

  /**
   * The connection's socket. A parked connection gets one made again over
   * its handle first (a status page reading it, say): it parks again at the
   * next sweep if still idle.
   */
  get socket(): Socket {
    if (this.sock !== undefined) return this.sock;
    // A handle connection: what the status page reads of a socket (no socket is made for it).
    if (this.hw !== undefined) return this.hw.view();
    return this.unpark();
  }

  /**
   * A net.Socket for a hand-over (an Upgrade tunnel, HTTP/2): a handle
   * connection gets one made over its handle now (as `unpark` does), read
   * and heard as a socket connection's from here on.
   */
  private ownSocket(): Socket {
    const hw = this.hw;
    if (hw === undefined || this.sock !== undefined) return this.socket;
    this.hw = undefined;
    const s = hw.handOver(SOCKET_HIGH_WATER_MARK);
    this.attach(s, true);
    return s;
  }

  /** @internal the handle read `n` bytes (into READ_BUFFER). */
  handleRead(n: number): void {
    if (this.handleParked) {
      this.handleParked = false;
      parkingCounts.parked--;
      parkingCounts.unparks++;
    }
    handView(n, ClientConnection.prototype.onData, this);
  }

  /** The wire, made again over the handle first while parked. */
  private get w(): ClientWire {
    if (this.wire === undefined) {
      const s = this.unpark();
      // Closed while parked: a wire over a destroyed socket.
      if (this.wire === undefined) this.wire = new SocketWire(s);
    }
    return this.wire;
  }

  /** True while held as its TCP handle only (parked.ts). */
  get isParked(): boolean {
    return this.parked !== undefined || this.handleParked;
  }

  /** `rewrapped`: a socket made again over the parked handle, which reads into READ_BUFFER already. */
  private attach(socket: Socket, rewrapped = false): void {
    this.sock = socket;
    this.wire = new SocketWire(socket);
    // Shared listeners that find the connection on the socket: an idle
    // keep-alive connection costs no closures (memory per idle connection).
    (socket as Owned)[CONNECTION] = this;
    // Views of the shared read buffer: a request head is parsed into strings
    // at once; what is kept past the read is copied (`keepBuf`).
    readsViewTo(socket, ClientConnection.prototype.onData, this, rewrapped);
    socket.on('end', onSocketEnd);
    socket.on('drain', onSocketDrain);
    socket.on('close', onSocketClose);
    // Errors end in 'close', where the request in flight learns of them.
    socket.on('error', noop);
  }

  private unlisten(socket: Socket): void {
    socket.removeListener('end', onSocketEnd);
    socket.removeListener('drain', onSocketDrain);
    socket.removeListener('close', onSocketClose);
    socket.removeListener('error', noop);
  }

  // ---- parking (parked.ts) -------------------------------------------------

  /**
   * Holds an idle keep-alive connection as its TCP handle only: the
   * net.Socket is released and the handle keeps reading, so the next
   * request's first bytes (or the client's FIN) arrive at `onParkedRead`.
   * Only a connection idle between requests with nothing left to write or
   * read, on a plain TCP socket read through `onread` (a TLS connection's
   * handle is its TLSWrap); its keepalive_timeout deadline, request count
   * and age stay here. False when it cannot be parked (it stays as it is).
   * @internal (the frontend's sweep)
   */
  park(): boolean {
    if (
      this.isParked ||
      !parkingAllowed() ||
      this.phase !== Phase.Head ||
      this.responding ||
      this.buf !== undefined ||
      this.timerKind !== Timer.Idle ||
      this.tunnelled ||
      this.plainOnTlsPort ||
      this.peerEnded ||
      this.awaitingFlush ||
      this.pausedForPipeline ||
      this.owner.closeIdle
    )
      return false;
    const hw = this.hw;
    if (hw !== undefined) {
      // Already its handle only: it lets go of its read storage and is counted.
      if (hw.destroyed || !hw.allSent || !hw.reading) return false;
      this.handleParked = true;
      this.store = undefined;
      parkingCounts.parked++;
      parkingCounts.parks++;
      return true;
    }
    const s = this.sock;
    if (
      s === undefined ||
      s.destroyed ||
      (s as { encrypted?: boolean }).encrypted === true ||
      onreadFields === null ||
      (s as unknown as Record<symbol, unknown>)[onreadFields.buffer] !== READ_BUFFER ||
      s.readableLength !== 0 ||
      !allSent(s)
    )
      return false;
    this.unlisten(s);
    const handle = detachHandle(s, onParkedRead);
    if (handle === null) {
      this.attach(s);
      return false;
    }
    handle[PARKED] = this;
    (s as Partial<Owned>)[CONNECTION] = undefined;
    this.sock = undefined;
    this.wire = undefined;
    this.parked = handle;
    this.store = undefined;
    parkingCounts.parked++;
    parkingCounts.parks++;
    return true;
  }

  /** A socket again over the parked handle, read and written as before. */
  private unpark(): Socket {
    const handle = this.parked;
    if (handle === undefined) return closedSocket();
    this.parked = undefined;
    handle[PARKED] = undefined;
    parkingCounts.parked--;
    parkingCounts.unparks++;
    // The handle is still reading into READ_BUFFER: net does not start it again.
    const s = socketOnHandle(handle, SOCKET_HIGH_WATER_MARK);
    this.attach(s, true);
    s.resume();
    return s;
  }

  /** @internal a parked handle read `n` bytes (into READ_BUFFER): the next request, read as any other. */
  parkedData(n: number): void {
    this.unpark();
    handView(n, ClientConnection.prototype.onData, this);
  }

  /**
   * Closes the parked handle (the client's FIN or an error such as a reset,
   * keepalive_timeout, stop): accounted at once.
   * @internal (also the parked handle's end of reads)
   */
  closeParked(): void {
    const handle = this.parked!;
    this.parked = undefined;
    handle[PARKED] = undefined;
    handle.onread = noop;
    handle.close();
    parkingCounts.parked--;
    this.sock = closedSocket();
    this.wire = new SocketWire(this.sock);
    this.onClose();
  }

  private text: string | undefined;

  /** `address:port` of the client, made once per connection (every log line has it). */
  get clientText(): string {
    if (this.text === undefined) this.text = `${this.remoteAddr}:${this.remotePort}`;
    return this.text;
  }

  /** True between requests with nothing of the next one received. */
  get idle(): boolean {
    return this.phase === Phase.Head && !this.responding && this.buf === undefined;
  }

  /** nginx's connection states (stub_status): reading a head, writing (a request in progress, a tunnel), waiting (idle). */
  get state(): 'reading' | 'writing' | 'waiting' {
    if (this.tunnelled || this.responding || this.phase !== Phase.Head) return 'writing';
    return this.buf === undefined ? 'waiting' : 'reading';
  }

  // ---- reading -------------------------------------------------------------

  /** @internal */
  onData(chunk: Buffer): void {
    if (this.phase === Phase.Closed) return;
    if (this.timerKind === Timer.Discard) this.timer.arm(this.limits.clientBodyTimeoutMs);
    if (this.buf === undefined) this.buf = chunk;
    else this.append(chunk);
    this.pump();
    this.keepBuf();
  }

  /**
   * `buf` with memory of its own: a read arrives as a view of the shared
   * read buffer (reads.ts), which the next read overwrites. Called before
   * anything can keep the bytes past this read: the request's handler
   * (its body, an Upgrade's held bytes), HTTP/2, the end of the read.
   */
  private keepBuf(): void {
    const buf = this.buf;
    if (buf !== undefined && isReadView(buf)) this.buf = owned(buf);
  }

  /**
   * Adds a read to the unconsumed bytes in storage grown by doubling, so a
   * head sent a byte at a time costs linear copying, not quadratic.
   */
  private append(chunk: Buffer): void {
    const buf = this.buf!;
    const store = this.store;
    if (
      store !== undefined &&
      buf.buffer === store.buffer &&
      buf.byteOffset + buf.length === store.byteOffset + this.storeEnd &&
      this.storeEnd + chunk.length <= store.length
    ) {
      chunk.copy(store, this.storeEnd);
      const start = buf.byteOffset - store.byteOffset;
      this.storeEnd += chunk.length;
      this.buf = store.subarray(start, this.storeEnd);
      return;
    }
    const next = Buffer.allocUnsafeSlow(Math.max(4096, 2 * (buf.length + chunk.length)));
    buf.copy(next, 0);
    chunk.copy(next, buf.length);
    this.store = next;
    this.storeEnd = buf.length + chunk.length;
    this.buf = next.subarray(0, this.storeEnd);
  }

  private consume(n: number): void {
    const buf = this.buf!;
    this.scanned = 0;
    if (n >= buf.length) {
      this.buf = undefined;
      this.store = undefined;
    } else this.buf = buf.subarray(n);
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.buf !== undefined) {
        if (this.phase === Phase.Head) {
          if (this.responding) break;
          const buf = this.buf;
          if (this.requests === 0 && this.owner.http2 !== undefined) {
            const h2 = prefaceMatch(buf);
            if (h2 === 0) break;
            if (h2 === 1) {
              this.keepBuf();
              this.toHttp2();
              break;
            }
          }
          if (this.scanned === 0) {
            // Empty lines before a request line are skipped (RFC 9112 §2.2), as nginx does.
            const skip = leadingEmptyLines(buf);
            if (skip > 0) {
              this.consume(skip);
              if (this.timerKind === Timer.Idle)
                this.setTimer(Timer.Header, this.owner.clientHeaderTimeoutMs);
              continue;
            }
          }
          const rules = this.owner.headRules;
          // Bytes already searched are not searched again (3 back: a CRLFCRLF split across reads).
          let end = findHeadEnd(buf, Math.max(0, this.scanned - 3));
          if (end < 0) end = checkIncompleteHead(buf, this.scanned, rules);
          if (end < 0) {
            this.scanned = buf.length;
            if (this.timerKind === Timer.Idle) this.setTimer(Timer.Header, this.owner.clientHeaderTimeoutMs);
            break;
          }
          const req = parseRequestHead(buf, 0, end, rules);
          this.consume(req.headBytes);
          this.dispatch(req);
        } else if (this.phase === Phase.Body) {
          this.keepBuf();
          const buf = this.buf!;
          const body = this.bodyReader!;
          const at = body.execute(buf, 0);
          if (this.phase !== Phase.Body) break;
          this.consume(at);
          if (body.done) this.bodyFinished();
          else if (this.buf !== undefined) break;
        } else break;
      }
    } catch (error) {
      if (!(error instanceof RequestError)) throw error;
      this.requestError(error);
    } finally {
      this.pumping = false;
    }
    if (this.buf !== undefined && this.responding && this.phase !== Phase.Closed) {
      // A client pipelining faster than it reads gets no unbounded buffer.
      if (this.buf.length > PIPELINE_LIMIT && !this.pausedForPipeline) {
        this.pausedForPipeline = true;
        this.w.pause();
      }
    }
  }

  private dispatch(req: ClientRequest): void {
    this.requests++;
    this.req = req;
    this.responding = true;
    this.status = 0;
    this.bodyBytes = 0;
    this.timerKind = Timer.None;
    // An Upgrade request is an ordinary request until the upstream answers
    // 101 (RFC 9110 §7.8): its body framed by its own Content-Length or
    // Transfer-Encoding, and bytes pipelined after it held here like any
    // next request, never sent upstream before the 101 (`takeOver`).
    if (req.chunked || req.contentLength > 0) {
      this.bodyReader ??= new BodyReader();
      this.phase = this.bodyReader.start(req) ? Phase.Body : Phase.After;
      this.bodyReader.sink = undefined;
    } else this.phase = Phase.After;
    this.owner.onRequest(this, req);
  }

  /** Sends the request body (as it arrives) to `sink`; without one it is read and dropped. */
  readBody(sink: ClientUser): void {
    if (this.bodyReader !== undefined) this.bodyReader.sink = sink;
  }

  private bodyFinished(): void {
    if (this.phase === Phase.Closed) return;
    if (this.responding) this.phase = Phase.After;
    else this.nextRequest();
  }

  private requestError(error: RequestError): void {
    const user = this.user;
    if (this.responding && user !== undefined) {
      this.phase = Phase.Closed;
      this.buf = undefined;
      user.onClientBodyError(error);
      return;
    }
    this.phase = Phase.Closed;
    const req = this.responding ? this.req : undefined;
    this.owner.onClientError(this, error, req);
  }

  pauseBody(): void {
    this.w.pause();
  }

  resumeBody(): void {
    if (!this.pausedForPipeline) this.w.resume();
  }

  /** @internal */
  onEnd(): void {
    this.peerEnded = true;
    if (this.phase === Phase.Closed || this.idle) {
      this.w.destroy();
      return;
    }
    // A body cut short can never complete: the request is abandoned.
    if (this.phase === Phase.Body || (this.phase === Phase.Head && !this.responding)) this.w.destroy();
  }

  /** @internal */
  onClose(): void {
    if (this.handleParked) {
      this.handleParked = false;
      parkingCounts.parked--;
    }
    this.phase = Phase.Closed;
    this.timer.cancel();
    const user = this.user;
    this.user = undefined;
    if (this.bodyReader !== undefined) this.bodyReader.sink = undefined;
    if (this.responding) {
      this.responding = false;
      user?.onClientDone(false);
    }
    this.owner.connectionClosed(this);
  }

  /**
   * Hands the socket over to a tunnel after the upstream answered 101 to the
   * request in flight: the bytes the client sent past the request (held
   * until now, they belong to the tunnel) and whether it already sent FIN.
   * The connection stops listening to the socket but still counts it (its
   * 'close' frees the worker_connections slot).
   */
  takeOver(): { socket: Socket; held: Buffer | undefined; ended: boolean } {
    const held = this.buf;
    this.buf = undefined;
    this.store = undefined;
    this.status = 101;
    this.responding = false;
    this.user = undefined;
    if (this.bodyReader !== undefined) this.bodyReader.sink = undefined;
    this.pausedForPipeline = false;
    this.tunnelled = true;
    this.detach();
    return { socket: this.socket, held, ended: this.peerEnded };
  }

  /** The preface arrived: the socket and every byte read so far are HTTP/2's now. */
  private toHttp2(): void {
    const held = this.buf!;
    this.buf = undefined;
    this.store = undefined;
    this.detach();
    this.owner.http2!(this, held);
  }

  /** The connection stops listening to the socket. */
  private detach(): void {
    this.phase = Phase.Closed;
    this.timer.cancel();
    this.timerKind = Timer.None;
    const s = this.ownSocket();
    // Nothing more is read until the tunnel takes the reads over (and resumes).
    s.pause();
    readsTo(s, noop);
    s.removeListener('end', onSocketEnd);
    s.removeListener('drain', onSocketDrain);
    // 'close' stays: the frontend counts the connection until the socket is gone.
  }

  // ---- writing -------------------------------------------------------------

  /** Sends `100 Continue` (asked for with Expect). */
  writeContinue(): void {
    this.w.send('HTTP/1.1 100 Continue\r\n\r\n');
  }

  /** Response bytes wait for the client: the socket took less than was written. */
  get gone(): boolean {
    return this.w.destroyed;
  }

  get writeBlocked(): boolean {
    return this.w.blocked;
  }

  get headSent(): boolean {
    return this.status !== 0;
  }

  /**
   * Queues the response head. `headers` (name, value pairs, or header lines
   * ending in CRLF) must not carry Connection or Transfer-Encoding; framing
   * and the connection's fate are decided here. A Buffer is an upstream's
   * head as the client gets it (headers.ts `clientResponseHead`): the status
   * line and the header lines, maybe a view of the read it came in.
   */
  startResponse(
    status: number,
    message: string,
    headers: readonly string[] | string | Buffer,
    kind: BodyKind,
    close: boolean,
  ): void {
    const req = this.req!;
    this.status = status;
    this.noBody = kind === BodyKind.None || req.method === 'HEAD';
    this.chunked = !this.noBody && kind === BodyKind.Stream && req.minorVersion === 1;
    const closeDelimited = !this.noBody && kind === BodyKind.Stream && !this.chunked;
    this.keep =
      !close && !closeDelimited && !this.peerEnded && req.keepAlive && this.owner.mayKeepAlive(this);
    if (typeof headers !== 'string' && !Array.isArray(headers)) {
      // Bytes stay bytes: the head, then the lines of keepwire's own, copied together in `flush`.
      const lines = headers as Buffer;
      this.queue(lines);
      let size = lines.length;
      if (this.chunked) {
        this.queue(CHUNKED_LINE);
        size += CHUNKED_LINE.length;
      }
      const end = this.keep ? this.limits.keepAliveBytes : CLOSE_LINES;
      this.queue(end);
      this.outBytes += size + end.length;
      return;
    }
    let head = statusLine(status, message);
    head += typeof headers === 'string' ? headers : headerLines(headers as readonly string[]);
    if (this.chunked) head += 'Transfer-Encoding: chunked\r\n';
    head += this.keep ? this.limits.keepAliveLines : 'Connection: close\r\n\r\n';
    this.queue(head);
    this.outBytes += head.length;
  }

  /** Queues response body bytes. */
  writeBody(chunk: Buffer): void {
    if (this.noBody || chunk.length === 0) return;
    this.bodyBytes += chunk.length;
    if (this.chunked) {
      const size = `${chunk.length.toString(16)}\r\n`;
      this.queue(size);
      this.queue(chunk);
      this.queue('\r\n');
      this.outBytes += size.length + chunk.length + 2;
    } else {
      this.queue(chunk);
      this.outBytes += chunk.length;
    }
  }

  /** Queues one piece of the response (the caller counts its bytes in `outBytes`). */
  private queue(item: string | Buffer): void {
    if (this.out1 === undefined) this.out1 = item;
    else if (this.out2 === undefined) this.out2 = item;
    else if (this.out3 === undefined) this.out3 = item;
    else if (this.out === undefined) this.out = [item];
    else this.out.push(item);
  }

  /** Writes what is queued; true when the socket wants no more for now. */
  flush(): boolean {
    const first = this.out1;
    const wire = this.w;
    if (first === undefined) return wire.blocked;
    const second = this.out2;
    const third = this.out3;
    const rest = this.out;
    // Body bytes (and a proxied head) may be views of the shared read buffer
    // (an upstream read, http/transport.ts): what a write can keep past this
    // call is copied.
    if (second === undefined) wire.send(ownedPiece(first));
    else if (this.outBytes <= COALESCE_LIMIT) {
      const buf = Buffer.allocUnsafe(this.outBytes);
      let at = put(buf, first, 0);
      at = put(buf, second, at);
      if (third !== undefined) at = put(buf, third, at);
      if (rest !== undefined) for (let i = 0; i < rest.length; i++) at = put(buf, rest[i]!, at);
      wire.send(buf);
    } else {
      const parts: (string | Buffer)[] = [ownedPiece(first), ownedPiece(second)];
      if (third !== undefined) parts.push(ownedPiece(third));
      if (rest !== undefined) for (let i = 0; i < rest.length; i++) parts.push(ownedPiece(rest[i]!));
      wire.sendParts(parts);
    }
    // Dropped, not emptied: setting an array's length is a runtime call
    // (about 1 % of the request path's user time).
    this.out1 = this.out2 = this.out3 = this.out = undefined;
    this.outBytes = 0;
    return wire.blocked;
  }

  /** Ends the response (with trailers for a chunked one) and writes it out. */
  endResponse(trailers?: readonly string[]): void {
    if (this.chunked) {
      let last = '0\r\n';
      if (trailers !== undefined)
        for (let i = 0; i < trailers.length; i += 2) last += `${trailers[i]}: ${trailers[i + 1]}\r\n`;
      last += '\r\n';
      this.queue(last);
      this.outBytes += last.length;
    }
    this.flush();
    if (this.w.allSent) this.responseSent();
    else {
      // Done once the kernel has the last byte (send_timeout still applies until then).
      this.awaitingFlush = true;
      this.w.flushed(() => this.onFlushed());
    }
  }

  /** Answers with a whole response of keepwire's own (errors, `return`). */
  respond(status: number, message: string, headers: readonly string[], body: Buffer, close: boolean): void {
    this.startResponse(status, message, headers, BodyKind.Length, close);
    this.writeBody(body);
    this.endResponse();
  }

  /** Writes a refusal of keepwire's own (400, 408, 431...) and closes once it is out. */
  sendAndClose(raw: string): void {
    this.phase = Phase.Closed;
    this.buf = undefined;
    this.timer.cancel();
    const wire = this.w;
    if (wire.destroyed) return;
    if (wire.writable) wire.end(raw);
    wire.destroySoon();
  }

  /** Cuts the connection (a response that cannot be completed honestly). */
  abort(): void {
    this.w.destroy();
  }

  /** Cuts the connection with a RST (stop's deadline, a request in flight): its client cannot take a cut response for a whole one. */
  reset(): void {
    this.w.reset();
  }

  private onFlushed(): void {
    if (this.awaitingFlush) {
      this.awaitingFlush = false;
      this.responseSent();
    }
  }

  /** @internal */
  onDrain(): void {
    this.user?.onClientDrain();
  }

  private responseSent(): void {
    if (!this.responding) return;
    this.responding = false;
    const user = this.user;
    this.user = undefined;
    if (this.bodyReader !== undefined) this.bodyReader.sink = undefined;
    // A response that announced keep-alive leaves the connection open, even
    // once draining (reload, graceful stop): the client may already be
    // sending its next request, which gets `Connection: close`. Only stop
    // closes here.
    const keep = this.keep && !this.owner.closeIdle && !this.peerEnded;
    user?.onClientDone(true);
    if (this.phase === Phase.Closed) {
      // A malformed body: what the client still sends is read and dropped.
      this.linger();
      return;
    }
    if (!keep) {
      this.close();
      return;
    }
    if (this.phase === Phase.After) this.nextRequest();
    // The rest of the body is read and dropped, then the next request.
    else if (this.phase === Phase.Body && this.limits.clientBodyTimeoutMs > 0)
      this.setTimer(Timer.Discard, this.limits.clientBodyTimeoutMs);
  }

  private nextRequest(): void {
    this.phase = Phase.Head;
    this.req = undefined;
    // An idle connection holds no per-request objects: the response queue
    // (dropped by its last flush) and the body reader are made again when needed.
    this.bodyReader = undefined;
    if (this.pausedForPipeline) {
      this.pausedForPipeline = false;
      this.w.resume();
    }
    this.setTimer(this.buf === undefined ? Timer.Idle : Timer.Header, this.idleOrHeaderMs());
    // The clock read that armed the timer (no second read per request).
    this.idleSince = this.timer.armedAt;
    if (this.buf !== undefined && !this.pumping) this.pump();
  }

  private idleOrHeaderMs(): number {
    return this.buf === undefined ? this.limits.keepaliveTimeoutMs : this.owner.clientHeaderTimeoutMs;
  }

  /** Closes after what was written: at once when nothing is left unread, else after a lingering read. */
  close(): void {
    const unread = this.phase === Phase.Body || this.buf !== undefined;
    this.phase = Phase.Closed;
    this.buf = undefined;
    if (this.bodyReader !== undefined) this.bodyReader.sink = undefined;
    const wire = this.w;
    if (wire.destroyed) return;
    if (!unread || this.peerEnded) {
      // Everything with the kernel already (the usual case: responseSent
      // runs once the last byte is): close(2) sends the FIN after it, as
      // nginx closes without shutdown(2) when it knows of nothing unread.
      // shutdown first bought nothing but a system call and Node's end()
      // machinery (finish, afterShutdown), ≈5 % of a short session. TLS
      // still ends with its close_notify (end()).
      if (wire.allSent && wire.plain) wire.close();
      else wire.destroySoon();
      return;
    }
    this.linger();
  }

  private linger(): void {
    const wire = this.w;
    if (wire.destroyed) return;
    wire.end();
    wire.resume();
    this.setTimer(Timer.Linger, LINGER_MS);
  }

  /** Cutting (stop): an idle connection closes now, a busy one after its response. */
  drain(): void {
    if (this.parked !== undefined) this.closeParked();
    else if (this.idle) this.w.destroy();
  }

  // ---- timers --------------------------------------------------------------

  /**
   * A busy connection changes only the deadline per request, never the
   * timer itself (see Deadline).
   */
  private setTimer(kind: Timer, ms: number): void {
    this.timerKind = kind;
    this.timer.arm(ms);
  }

  /** @internal the deadline passed */
  onTimer(): void {
    const kind = this.timerKind;
    if (kind === Timer.None) return;
    if (this.parked !== undefined) {
      // keepalive_timeout on a parked connection (only idle ones are parked).
      this.timerKind = Timer.None;
      this.owner.idleTimedOut(this);
      this.closeParked();
      return;
    }
    const wire = this.w;
    if (wire.destroyed) return;
    this.timerKind = Timer.None;
    if (kind === Timer.Idle || kind === Timer.Linger || kind === Timer.Discard) {
      if (kind === Timer.Idle) this.owner.idleTimedOut(this);
      wire.destroy();
      return;
    }
    // Header timeout.
    this.phase = Phase.Closed;
    this.owner.onClientError(
      this,
      new RequestError(408, 'ERR_HTTP_REQUEST_TIMEOUT', 'client_header_timeout'),
      undefined,
    );
  }
}

function noop(): void {}

/** `item` copied into `buf` at `at`; where the copy ends. */
function put(buf: Buffer, item: string | Buffer, at: number): number {
  if (typeof item === 'string') return at + latin1Write(buf, item, at);
  setBytes.call(buf, item, at);
  return at + item.length;
}

/** A queued piece a write may keep past this call: strings as they are, read views copied. */
function ownedPiece(item: string | Buffer): string | Buffer {
  return typeof item === 'string' ? item : owned(item);
}

/** Status lines by code, for the first reason phrase seen with each: most responses reuse one. */
const STATUS_LINES: (string | undefined)[] = [];
const STATUS_MESSAGES: (string | undefined)[] = [];

/** `HTTP/1.1 status message` CRLF, made once per code and reason phrase seen first. */
function statusLine(status: number, message: string): string {
  if (STATUS_MESSAGES[status] === message) return STATUS_LINES[status]!;
  // Kept and written once per response: flat, or every write would flatten it again.
  const line = flattened(`HTTP/1.1 ${status} ${message}\r\n`);
  if (STATUS_MESSAGES[status] === undefined && status >= 100 && status <= 999) {
    STATUS_MESSAGES[status] = message;
    STATUS_LINES[status] = line;
  }
  return line;
}

const CONNECTION = Symbol('keepwire.clientConnection');
const PARKED = Symbol('keepwire.parkedConnection');

/** The `onread` of a parked handle (`this` is the handle). */
function onParkedRead(this: BareHandle): void {
  const conn = this[PARKED] as ClientConnection | undefined;
  if (conn === undefined) return;
  const n = readLength();
  if (n > 0) conn.parkedData(n);
  else if (n < 0) conn.closeParked();
}

let closed: Socket | undefined;

/** What `socket` answers once a parked connection was closed: a socket that is destroyed. */
function closedSocket(): Socket {
  if (closed === undefined) {
    closed = new Socket();
    closed.destroy();
  }
  return closed;
}

interface Owned extends Socket {
  [CONNECTION]: ClientConnection;
}

function onSocketEnd(this: Owned): void {
  this[CONNECTION].onEnd();
}

function onSocketDrain(this: Owned): void {
  this[CONNECTION].onDrain();
}

function onSocketClose(this: Owned): void {
  this[CONNECTION].onClose();
}

export { MAX_REQUEST_HEAD };
