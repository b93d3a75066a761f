/**
 * Floor (d) of bench/http.ts and bench/instructions.ts: the least *correct*
 * HTTP/1.1 proxy on keepwire's own I/O path (#20 item 1). Floor (c)
 * (`runHandleFloor`) finds where a head ends and reads one Content-Length;
 * it validates nothing, so a proxy built like it would pass smuggled
 * requests on. This one does the HTTP work no correct proxy can skip, and
 * nothing more:
 *   - every byte of both heads checked in one pass (method and header names
 *     are tokens, values have no CTL, lines end in CRLF: no bare CR, LF or
 *     NUL, no whitespace before a colon, no obs-fold), head size and header
 *     count limits;
 *   - the framing headers read and cross-checked (Content-Length digits,
 *     duplicates, Transfer-Encoding, Host present once on HTTP/1.1), and
 *     the hop-by-hop headers (Connection, Keep-Alive, TE, Trailer, Upgrade,
 *     Proxy-*) dropped both ways;
 *   - an upstream connection taken from a keep-alive pool per request and
 *     given back after a response that ends where its framing says (a pool
 *     of up to 64, as the bench's proxies; not one per client connection),
 *     pipelined requests held until the response before them is out,
 *     `Connection: close` both ways, close-delimited responses, 1xx/204/304
 *     and HEAD without a body;
 *   - timeouts as a clock read per I/O callback and a sweep once a second
 *     (keepalive_timeout 75 s, proxy_read_timeout 60 s: 504), the way
 *     keepwire's `Deadline` and nginx's cached time do it;
 *   - a truncated response never looks complete: an upstream that closes
 *     mid-body resets the client; before the head, 502.
 * What it refuses rather than does (the bench sends none of it): request
 * bodies (501), chunked responses and 1xx (502), Connection-nominated
 * headers (501). Everything it accepts it handles as a proxy must.
 * No routing beyond an origin-form target, no X-Forwarded-*, no logging or
 * metrics: what it costs over floor (c) is the HTTP work itself.
 *
 * The client leg is keepwire's `HandleWire` on the accepted TCP handle; the
 * upstream a `HandleWire` too, connected with `connectWire`, as
 * src/proxy/http/transport.ts does. Heads are checked and copied as bytes
 * (no strings): a loop copies a head's kept lines into the one Buffer
 * written per response (head and body together).
 * Not a proxy anyone should run.
 */
import net, { type Server } from 'node:net';
import { acceptHandles, type TcpHandle, tcpHandles } from '../src/kernel/node-internals.js';
import { type ConnectingUser, connectWire, HandleWire } from '../src/proxy/http/handle-wire.js';
import { READ_BUFFER } from '../src/proxy/reads.js';

const TOKEN = 1;
const FIELD = 2;
/** Byte classes: tchar (RFC 9110 §5.6.2); field-vchar, obs-text, SP and HTAB (§5.5). */
const CLASS = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  if (/[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(String.fromCharCode(c))) CLASS[c] = TOKEN;
  if ((c >= 0x21 && c <= 0x7e) || c >= 0x80 || c === 0x20 || c === 0x09) CLASS[c] = CLASS[c]! | FIELD;
}
const CR = 13;
const LF = 10;
const SP = 32;
const HT = 9;
const MAX_HEAD = 8192;
const MAX_HEADERS = 100;
const MAX_PIPELINE = 64 * 1024;

const lower = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const HOST = lower('host');
const CONTENT_LENGTH = lower('content-length');
const TRANSFER_ENCODING = lower('transfer-encoding');
const CONNECTION = lower('connection');
const KEEP_ALIVE = lower('keep-alive');
const TE = lower('te');
const TRAILER = lower('trailer');
const UPGRADE = lower('upgrade');
const EXPECT = lower('expect');
const PROXY_ = lower('proxy-');
const CLOSE = lower('close');

/** `buf[at, at + name.length)` is `name`, any case (`name` lower-case letters and '-'). */
function nameIs(buf: Buffer, at: number, len: number, name: Uint8Array): boolean {
  if (len < name.length) return false;
  for (let k = 0; k < name.length; k++) if ((buf[at + k]! | 0x20) !== name[k]) return false;
  return true;
}

/** What one pass over a head found; one per leg, refilled per head. */
class Head {
  contentLength = -1;
  te = false;
  close = false;
  hosts = 0;
  minor = 1;
  status = 0;
  head = false;
  /** Pairs [from, to) of header lines not forwarded, `dropped` of them (no array resized per head). */
  readonly drops = new Int32Array(2 * MAX_HEADERS);
  dropped = 0;
  /** The status of the answer refusing the head (0: none). */
  refuse = 0;

  reset(): void {
    this.contentLength = -1;
    this.te = false;
    this.close = false;
    this.hosts = 0;
    this.minor = 1;
    this.status = 0;
    this.head = false;
    this.dropped = 0;
    this.refuse = 0;
  }
}

/** Header lines after the start line at `i`; the head's end, 0 while incomplete, -1 refused (`h.refuse`). */
function headerLines(buf: Buffer, i: number, to: number, h: Head, request: boolean): number {
  let count = 0;
  for (;;) {
    if (i + 1 >= to) return 0;
    if (buf[i] === CR) {
      if (buf[i + 1] !== LF) return refuse(h, 400);
      return i + 2;
    }
    const line = i;
    while (i < to && (CLASS[buf[i]!]! & TOKEN) !== 0) i++;
    if (i >= to) return 0;
    // No name, whitespace before the colon, obs-fold: never forwarded (RFC 9112 §5.1, §5.2).
    if (buf[i] !== 58 || i === line) return refuse(h, request ? 400 : 502);
    const nameLen = i - line;
    i++;
    while (i < to && (buf[i] === SP || buf[i] === HT)) i++;
    const value = i;
    while (i < to && (CLASS[buf[i]!]! & FIELD) !== 0) i++;
    if (i + 1 >= to) return 0;
    // A CR not before LF, a bare LF, a NUL or any other CTL in a value.
    if (buf[i] !== CR || buf[i + 1] !== LF) return refuse(h, request ? 400 : 502);
    let valueEnd = i;
    while (valueEnd > value && (buf[valueEnd - 1] === SP || buf[valueEnd - 1] === HT)) valueEnd--;
    i += 2;
    if (++count > MAX_HEADERS) return refuse(h, request ? 431 : 502);
    if (!field(buf, line, nameLen, value, valueEnd, i, h, request)) return -1;
  }
}

/** One header line `[line, next)`: false when it refuses the head. */
function field(
  buf: Buffer,
  line: number,
  nameLen: number,
  value: number,
  valueEnd: number,
  next: number,
  h: Head,
  request: boolean,
): boolean {
  let hop = false;
  switch (nameLen) {
    case 2:
      hop = nameIs(buf, line, 2, TE);
      break;
    case 4:
      if (request && nameIs(buf, line, 4, HOST)) {
        if (++h.hosts > 1 || valueEnd === value) return refuse(h, 400) === 0;
        for (let k = value; k < valueEnd; k++) if (buf[k] === 47) return refuse(h, 400) === 0;
      }
      break;
    case 6:
      // Expect only matters with a body, which the floor refuses.
      hop = request && nameIs(buf, line, 6, EXPECT);
      break;
    case 7:
      hop = nameIs(buf, line, 7, UPGRADE) || nameIs(buf, line, 7, TRAILER);
      break;
    case 10:
      if (nameIs(buf, line, 10, KEEP_ALIVE)) hop = true;
      else if (nameIs(buf, line, 10, CONNECTION)) {
        hop = true;
        if (!connection(buf, value, valueEnd, h)) return false;
      }
      break;
    case 14:
      if (nameIs(buf, line, 14, CONTENT_LENGTH)) {
        let n = 0;
        if (valueEnd === value || valueEnd - value > 15) return refuse(h, request ? 400 : 502) === 0;
        for (let k = value; k < valueEnd; k++) {
          const d = buf[k]! - 48;
          if (d < 0 || d > 9) return refuse(h, request ? 400 : 502) === 0;
          n = n * 10 + d;
        }
        if (h.contentLength >= 0 && h.contentLength !== n) return refuse(h, request ? 400 : 502) === 0;
        h.contentLength = n;
      }
      break;
    case 17:
      if (nameIs(buf, line, 17, TRANSFER_ENCODING)) {
        h.te = true;
        hop = true;
      }
      break;
  }
  if (!hop && nameLen > 6 && nameIs(buf, line, 6, PROXY_)) hop = true;
  if (hop) {
    h.drops[h.dropped++] = line;
    h.drops[h.dropped++] = next;
  }
  return true;
}

/** Connection's tokens: `close` and `keep-alive` known, any other name refused (the floor drops no nominated header). */
function connection(buf: Buffer, at: number, end: number, h: Head): boolean {
  while (at < end) {
    while (at < end && (buf[at] === SP || buf[at] === HT || buf[at] === 44)) at++;
    const t = at;
    while (at < end && buf[at] !== 44 && buf[at] !== SP && buf[at] !== HT) at++;
    const len = at - t;
    if (len === 5 && nameIs(buf, t, 5, CLOSE)) h.close = true;
    else if (len === 10 && nameIs(buf, t, 10, KEEP_ALIVE)) h.close = false;
    else if (len > 0) return refuse(h, 501) === 0;
  }
  return true;
}

function refuse(h: Head, status: number): number {
  h.refuse = status;
  return -1;
}

/** A request head from `from`: its end, 0 while incomplete, -1 refused. */
function requestHead(buf: Buffer, from: number, to: number, h: Head): number {
  h.reset();
  let i = from;
  while (i < to && (CLASS[buf[i]!]! & TOKEN) !== 0) i++;
  if (i >= to) return to - from > MAX_HEAD ? refuse(h, 414) : 0;
  if (buf[i] !== SP || i === from) return refuse(h, 400);
  h.head =
    i - from === 4 &&
    buf[from] === 72 &&
    buf[from + 1] === 69 &&
    buf[from + 2] === 65 &&
    buf[from + 3] === 68;
  i++;
  // Origin-form only (location /): no absolute-form, no CONNECT or OPTIONS *.
  if (i < to && buf[i] !== 47) return refuse(h, 400);
  while (i < to && buf[i]! > SP && buf[i] !== 0x7f) i++;
  if (i + 10 > to) return to - from > MAX_HEAD ? refuse(h, 414) : 0;
  if (
    buf[i] !== SP ||
    buf[i + 1] !== 72 ||
    buf[i + 2] !== 84 ||
    buf[i + 3] !== 84 ||
    buf[i + 4] !== 80 ||
    buf[i + 5] !== 47 ||
    buf[i + 6] !== 49 ||
    buf[i + 7] !== 46 ||
    buf[i + 9] !== CR ||
    buf[i + 10] !== LF
  )
    return refuse(h, 400);
  const minor = buf[i + 8]! - 48;
  if (minor < 0 || minor > 9) return refuse(h, 400);
  h.minor = minor === 0 ? 0 : 1;
  const end = headerLines(buf, i + 11, to, h, true);
  // An HTTP/1.0 client's connection closes after its response (no `Connection: keep-alive` is sent back).
  if (h.minor === 0) h.close = true;
  if (end === 0 && to - from > MAX_HEAD) return refuse(h, 431);
  if (end > 0 && end - from > MAX_HEAD) return refuse(h, 431);
  if (end > 0 && h.minor === 1 && h.hosts === 0) return refuse(h, 400);
  if (end > 0 && (h.te || h.contentLength > 0)) return refuse(h, 501);
  return end;
}

/** A response head from `from`: its end, 0 while incomplete, -1 refused (502). */
function responseHead(buf: Buffer, from: number, to: number, h: Head): number {
  h.reset();
  if (from + 14 > to) return 0;
  if (
    buf[from] !== 72 ||
    buf[from + 1] !== 84 ||
    buf[from + 2] !== 84 ||
    buf[from + 3] !== 80 ||
    buf[from + 4] !== 47 ||
    buf[from + 5] !== 49 ||
    buf[from + 6] !== 46 ||
    buf[from + 8] !== SP ||
    buf[from + 12] !== SP
  )
    return refuse(h, 502);
  let status = 0;
  for (let k = from + 9; k < from + 12; k++) {
    const d = buf[k]! - 48;
    if (d < 0 || d > 9) return refuse(h, 502);
    status = status * 10 + d;
  }
  h.status = status;
  h.close = buf[from + 7] === 48;
  let i = from + 13;
  while (i < to && (CLASS[buf[i]!]! & FIELD) !== 0) i++;
  if (i + 1 >= to) return to - from > MAX_HEAD ? refuse(h, 502) : 0;
  if (buf[i] !== CR || buf[i + 1] !== LF) return refuse(h, 502);
  const end = headerLines(buf, i + 2, to, h, false);
  if ((end === 0 && to - from > MAX_HEAD) || (end > 0 && end - from > MAX_HEAD)) return refuse(h, 502);
  // The floor has no chunked decoder and no interim responses: refused, never passed on unframed.
  if (end > 0 && (h.te || status < 200)) return refuse(h, 502);
  return end;
}

/**
 * `buf[from, to)` minus `drops` (sorted pairs inside it), then `extra`
 * (latin1, maybe empty), then the empty line's CRLF when `from, to` ends
 * before it, then `body` bytes `buf[bodyFrom, bodyTo)`: one Buffer, copied
 * by a loop (a head is a few hundred bytes: a Buffer view per line and a
 * native copy each would cost more).
 */
function assemble(
  buf: Buffer,
  from: number,
  to: number,
  h: Head,
  extra: string,
  bodyFrom: number,
  bodyTo: number,
): Buffer {
  const drops = h.drops;
  const dropped = h.dropped;
  let size = to - from + extra.length + (bodyTo - bodyFrom);
  for (let d = 0; d < dropped; d += 2) size -= drops[d + 1]! - drops[d]!;
  const out = Buffer.allocUnsafe(size);
  let p = 0;
  let at = from;
  for (let d = 0; d <= dropped; d += 2) {
    const stop = d < dropped ? drops[d]! : to - 2;
    p = copyRun(buf, at, stop, out, p);
    if (d < dropped) at = drops[d + 1]!;
  }
  for (let k = 0; k < extra.length; k++) out[p++] = extra.charCodeAt(k);
  out[p++] = CR;
  out[p++] = LF;
  copyRun(buf, bodyFrom, bodyTo, out, p);
  return out;
}

/**
 * `buf[from, to)` into `out` at `p`; where the copy ends. A short run by a
 * loop, a longer one natively: the native copy makes a Uint8Array view
 * first, worth it from a few dozen bytes (a JS copy loop here costs about 20
 * instructions a byte, counted with bench/instructions.ts).
 */
function copyRun(buf: Buffer, from: number, to: number, out: Buffer, p: number): number {
  if (to - from >= 32) {
    buf.copy(out, p, from, to);
    return p + to - from;
  }
  for (let k = from; k < to; k++) out[p++] = buf[k]!;
  return p;
}

function copyOf(buf: Buffer, from: number, to: number): Buffer {
  const out = Buffer.allocUnsafe(to - from);
  copyRun(buf, from, to, out, 0);
  return out;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  414: 'URI Too Long',
  431: 'Request Header Fields Too Large',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  504: 'Gateway Timeout',
};

function answer(status: number): string {
  return `HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`;
}

/** Listens on 127.0.0.1:`listenPort` (0: any) and proxies to 127.0.0.1:`target`; resolves with the server once listening. */
export async function runCorrectFloor(listenPort: number, target: number): Promise<Server> {
  if (tcpHandles === null)
    throw new Error('bench/correct-floor: this Node has no tcp_wrap handles (keepwire would use net.Socket)');
  const handles = tcpHandles;
  let now = Date.now();
  const clients = new Set<Client>();
  const idle: Upstream[] = [];

  class Upstream implements ConnectingUser {
    client: Client | undefined;
    readonly h = new Head();
    /** Bytes of a head not whole yet. */
    partial: Buffer | undefined;
    /** Body bytes still to come; -1 close-delimited, -2 reading a head. */
    left = -2;
    reusable = true;
    closed = false;
    lastActive = now;
    readonly wire: HandleWire;

    constructor() {
      const { wire, error } = connectWire(handles, this, '127.0.0.1', target);
      this.wire = wire;
      if (error !== 0) queueMicrotask(() => this.onEnd());
    }

    onConnect(status: number): void {
      if (status < 0 || !this.wire.start()) this.onEnd();
    }

    handleRead(n: number): void {
      this.onRead(READ_BUFFER.subarray(0, n));
    }

    onDrain(): void {}

    onClose(): void {
      this.onEnd();
    }

    onRead(chunk: Buffer): void {
      now = Date.now();
      this.lastActive = now;
      const c = this.client;
      if (c === undefined) {
        // Bytes on an idle pooled connection: it can never be trusted again.
        this.wire.destroy();
        return;
      }
      if (this.left !== -2) {
        this.body(c, chunk, 0);
        return;
      }
      let buf = chunk;
      if (this.partial !== undefined) {
        buf = Buffer.concat([this.partial, chunk]);
        this.partial = undefined;
      }
      const h = this.h;
      const end = responseHead(buf, 0, buf.length, h);
      if (end === 0) {
        this.partial = copyOf(buf, 0, buf.length);
        return;
      }
      if (end < 0) {
        this.reusable = false;
        this.wire.destroy();
        c.failed(502);
        return;
      }
      const noBody = c.h.head || h.status === 204 || h.status === 304;
      const length = noBody ? 0 : h.contentLength;
      if (h.close || length < 0) this.reusable = false;
      if (length < 0) c.closeAfter = true;
      const extra = c.closeAfter ? 'Connection: close\r\n' : '';
      const take = length < 0 ? buf.length - end : Math.min(length, buf.length - end);
      // A head written through the status line's end up to its last header line's CRLF.
      c.respond(assemble(buf, 0, end, h, extra, end, end + take));
      this.left = length < 0 ? -1 : length - take;
      // Bytes past the response: the upstream cannot be reused.
      if (length >= 0 && buf.length - end > take) this.reusable = false;
      if (this.left === 0) this.done(c);
    }

    private body(c: Client, buf: Buffer, at: number): void {
      const take = this.left < 0 ? buf.length - at : Math.min(this.left, buf.length - at);
      c.respond(copyOf(buf, at, at + take));
      if (this.left < 0) return;
      this.left -= take;
      if (at + take < buf.length) this.reusable = false;
      if (this.left === 0) this.done(c);
    }

    private done(c: Client): void {
      this.client = undefined;
      this.left = -2;
      if (this.reusable && !this.closed) idle.push(this);
      else this.wire.destroy();
      c.responseDone();
    }

    onEnd(): void {
      if (this.closed) return;
      this.closed = true;
      this.wire.destroy();
      const at = idle.indexOf(this);
      if (at >= 0) idle.splice(at, 1);
      const c = this.client;
      this.client = undefined;
      if (c === undefined) return;
      if (this.left === -1) c.responseDone();
      else if (this.left === -2 && !c.headSent) c.failed(502);
      // Mid-body: the client must not read a truncated response as whole.
      else c.wire.reset();
    }
  }

  class Client {
    readonly wire: HandleWire;
    readonly h = new Head();
    /** Bytes read and not yet taken: a partial head, or requests pipelined behind one in flight. */
    held: Buffer | undefined;
    up: Upstream | undefined;
    busy = false;
    headSent = false;
    closeAfter = false;
    lastActive = now;

    constructor(handle: TcpHandle) {
      this.wire = new HandleWire(handle, this, handles);
      clients.add(this);
    }

    handleRead(n: number): void {
      now = Date.now();
      this.lastActive = now;
      if (this.busy || this.held !== undefined) {
        const held = this.held;
        this.held =
          held === undefined ? copyOf(READ_BUFFER, 0, n) : Buffer.concat([held, READ_BUFFER.subarray(0, n)]);
        if (this.held.length > MAX_PIPELINE) this.wire.destroy();
        else if (!this.busy) this.next();
        return;
      }
      this.request(READ_BUFFER, n, true);
    }

    private next(): void {
      const held = this.held;
      if (held === undefined) return;
      this.held = undefined;
      this.request(held, held.length, false);
    }

    /** A request head at the start of `buf[0, n)`; `view`: `buf` is READ_BUFFER (copied if kept). */
    private request(buf: Buffer, n: number, view: boolean): void {
      const h = this.h;
      const end = requestHead(buf, 0, n, h);
      if (end === 0) {
        this.held = view ? copyOf(buf, 0, n) : buf;
        return;
      }
      if (end < 0) {
        this.failed(h.refuse);
        return;
      }
      if (h.close) this.closeAfter = true;
      let up = idle.pop();
      while (up?.closed) up = idle.pop();
      up ??= new Upstream();
      up.client = this;
      up.reusable = true;
      up.lastActive = now;
      this.up = up;
      this.busy = true;
      this.headSent = false;
      up.wire.send(assemble(buf, 0, end, h, '', 0, 0));
      if (end < n) this.held = view ? copyOf(buf, end, n) : buf.subarray(end);
    }

    respond(bytes: Buffer): void {
      this.headSent = true;
      this.wire.send(bytes);
    }

    responseDone(): void {
      this.busy = false;
      this.up = undefined;
      if (this.closeAfter) {
        this.wire.destroySoon();
        return;
      }
      this.next();
    }

    failed(status: number): void {
      this.busy = false;
      this.up = undefined;
      this.held = undefined;
      if (this.headSent) this.wire.reset();
      else this.wire.end(answer(status));
      this.wire.destroySoon();
    }

    onEnd(): void {
      if (!this.busy) this.wire.destroy();
      else this.closeAfter = true;
    }

    onDrain(): void {}

    onClose(): void {
      clients.delete(this);
      const up = this.up;
      this.up = undefined;
      // The response in flight is abandoned: its upstream cannot be reused.
      if (up !== undefined) {
        up.client = undefined;
        up.wire.destroy();
      }
    }
  }

  // The timeouts: keepalive_timeout 75 s between requests, proxy_read_timeout 60 s for a response.
  const sweep = setInterval(() => {
    now = Date.now();
    for (const c of clients) {
      const up = c.up;
      if (c.busy && up !== undefined && now - up.lastActive > 60_000) {
        up.client = undefined;
        up.reusable = false;
        up.wire.destroy();
        c.failed(504);
      } else if (!c.busy && now - c.lastActive > 75_000) c.wire.destroy();
    }
  }, 1000).unref();

  const server = net.createServer({ pauseOnConnect: true }, (socket) => socket.destroy());
  server.on('close', () => {
    clearInterval(sweep);
    for (const up of idle.splice(0)) up.wire.destroy();
    for (const c of clients) c.wire.destroy();
  });
  await new Promise<void>((resolve) => server.listen(listenPort, '127.0.0.1', resolve));
  const hooked = acceptHandles(server, (handle) => {
    handle.setNoDelay(true);
    return new Client(handle).wire.start();
  });
  if (!hooked) throw new Error('bench/correct-floor: no onconnection on the listening handle');
  return server;
}
