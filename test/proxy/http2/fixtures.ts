/**
 * Peers for the HTTP/2 client-leg tests: keepwire started from config text,
 * Node's http2 client, curl, and a raw HTTP/2 speaker that writes frames by
 * hand (for clients no library would be: one that resets streams as fast as
 * it opens them, one that never answers a PING). Every wait is bounded.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { type ClientHttp2Session, connect as h2connect, type IncomingHttpHeaders } from 'node:http2';
import { connect, type Socket } from 'node:net';
import { parseConfigText } from '../../../src/config/index.js';
import { type RunningHttp, startHttp } from '../http/fixtures.js';

export async function startFromText(text: string): Promise<RunningHttp> {
  const parsed = parseConfigText(text, 'h2.conf');
  assert.deepEqual(parsed.diagnostics, []);
  return startHttp(parsed.config!);
}

export interface H2Response {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  trailers: IncomingHttpHeaders | undefined;
}

/** A Node http2 client session, resolved once the server's SETTINGS arrived. */
export function h2session(port: number): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = h2connect(`http://127.0.0.1:${port}`);
    s.once('remoteSettings', () => resolve(s));
    s.once('error', reject);
  });
}

/** One request on `session`; `body` sent and ended (none: END_STREAM on HEADERS). */
export function h2request(
  session: ClientHttp2Session,
  headers: Record<string, string | string[]>,
  body?: Buffer | Buffer[],
  timeoutMs = 20_000,
): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no response to ${headers[':path']} in ${timeoutMs} ms`)),
      timeoutMs,
    );
    const stream = session.request(headers, { endStream: body === undefined });
    const chunks: Buffer[] = [];
    let head: IncomingHttpHeaders | undefined;
    let trailers: IncomingHttpHeaders | undefined;
    stream.on('response', (h) => {
      head = h;
    });
    stream.on('trailers', (t) => {
      trailers = t;
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      clearTimeout(timer);
      resolve({
        status: Number(head?.[':status'] ?? 0),
        headers: head ?? {},
        body: Buffer.concat(chunks),
        trailers,
      });
    });
    stream.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    if (body !== undefined) {
      for (const b of Array.isArray(body) ? body : [body]) stream.write(b);
      stream.end();
    }
  });
}

export interface CurlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function curl(args: string[], timeoutMs = 20_000): Promise<CurlResult> {
  return new Promise((resolve) => {
    execFile(
      'curl',
      ['-sS', '--max-time', String(timeoutMs / 1000), ...args],
      { timeout: timeoutMs + 5_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

// ---- raw frames ----------------------------------------------------------------

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const FRAME = {
  DATA: 0,
  HEADERS: 1,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
} as const;

export function frame(
  type: number,
  flags: number,
  stream: number,
  payload: Buffer = Buffer.alloc(0),
): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** A GET / header block in HPACK without the dynamic table: static indices and one literal (RFC 7541 §6.2.2). */
export function getHeaderBlock(authority: string): Buffer {
  const a = Buffer.from(authority, 'latin1');
  // :method GET (2), :scheme http (6), :path / (4), :authority literal without indexing, name index 1.
  return Buffer.concat([Buffer.from([0x82, 0x86, 0x84, 0x01, a.length]), a]);
}

export interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

/** A TCP client speaking HTTP/2 frame by frame; frames read are kept in order. */
export class RawH2 {
  readonly frames: Frame[] = [];
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 9) {
        const len = this.buf.readUIntBE(0, 3);
        if (this.buf.length < 9 + len) break;
        this.frames.push({
          type: this.buf[3]!,
          flags: this.buf[4]!,
          stream: this.buf.readUInt32BE(5) & 0x7fffffff,
          payload: this.buf.subarray(9, 9 + len),
        });
        this.buf = this.buf.subarray(9 + len);
      }
      this.wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** `allowHalfOpen`: the client does not close when the server does (a client that ignores GOAWAY). */
  static open(port: number, allowHalfOpen = false): Promise<RawH2> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host: '127.0.0.1', allowHalfOpen }, () => resolve(new RawH2(s)));
      s.once('error', reject);
    });
  }

  write(b: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(b);
  }

  /** The client preface with an empty SETTINGS frame. */
  hello(): void {
    this.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0)]));
  }

  /** Resolves with the first frame (from `from` on) that `match` accepts, or rejects after `ms`. */
  async waitFor(match: (f: Frame) => boolean, ms: number, what: string, from = 0): Promise<Frame> {
    const deadline = Date.now() + ms;
    for (;;) {
      const f = this.frames.slice(from).find(match);
      if (f !== undefined) return f;
      if (this.closed) throw new Error(`connection closed before ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Resolves once the server closed the connection (bounded). */
  async waitClosed(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for the server to close');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.socket.destroy();
  }
}
