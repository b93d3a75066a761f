/**
 * Models (their settings parsed from config text by the real parser, see
 * test/model-text.ts) and real peers on 127.0.0.1 for the HTTP proxy
 * tests. Every wait is bounded: a hung proxy fails a test instead of
 * hanging the run.
 */
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import type {
  Config,
  HttpLocation,
  HttpServer,
  HttpUpstreamGroup,
  Listen,
  UpstreamServer,
} from '../../../src/config/model.js';
import type { HttpLogRecord, RequestRecord, RetryRecord } from '../../../src/proxy/http/index.js';
import { forceSocketConnections } from '../../../src/proxy/http/server.js';
import { Runtime } from '../../../src/serve/index.js';
import {
  CLIENT_FIELDS,
  httpGroupSettings,
  httpServerSettings,
  locationSettings,
  mainSettings,
} from '../../model-text.js';
import { Arrivals } from '../../support.js';
import { address, bothPaths, listen, type SessionPath, SRC, server } from '../fixtures.js';

export { closedPort, sleep, until, within } from '../../support.js';
export { address, listen, SRC, server };

/**
 * The two ways a plain HTTP client connection runs: on the bare TCP handle
 * the listener accepted (what Node 20 and 26 give: http/handle-wire.ts) and
 * on net.Socket (the fallback, and the path of TLS connections).
 * `KEEPWIRE_HTTP_CONNECTIONS=sockets` runs a whole test file on sockets:
 *   KEEPWIRE_HTTP_CONNECTIONS=sockets node --test dist/test/proxy/http/x.test.js
 * `onBothHttpPaths` runs a behaviour test once on each; the path is fixed
 * when the test's frontend starts.
 */
export type ConnectionPath = SessionPath;

const socketsByEnv = () => process.env.KEEPWIRE_HTTP_CONNECTIONS === 'sockets';
if (socketsByEnv()) forceSocketConnections(true);

export const onBothHttpPaths = bothPaths(forceSocketConnections, socketsByEnv);

/**
 * A location with the usual proxy settings; its client-leg fields are left
 * to httpServer(), which gives it its server's, as a location block that sets
 * none of its own inherits them.
 */
export function location(opts: Partial<HttpLocation> = {}): HttpLocation {
  return { prefix: '/', ...locationSettings(), source: SRC, ...opts } as HttpLocation;
}

export function passToGroup(name: string): HttpLocation['proxyPass'] {
  return { scheme: 'http', target: { kind: 'group', name }, text: `http://${name}` };
}

export function passToPort(port: number): HttpLocation['proxyPass'] {
  return {
    scheme: 'http',
    target: { kind: 'address', address: address(port) },
    text: `http://127.0.0.1:${port}`,
  };
}

export function httpServer(opts: Partial<HttpServer> = {}): HttpServer {
  const server: HttpServer = {
    listens: [listen(0)],
    ...httpServerSettings(),
    locations: [location({ proxyPass: passToGroup('app') })],
    source: SRC,
    ...opts,
  };
  for (const l of server.locations) {
    const own = l as unknown as Record<string, unknown>;
    for (const field of CLIENT_FIELDS) {
      if (own[field] === undefined && server[field] !== undefined) own[field] = server[field];
    }
  }
  return server;
}

export function httpGroup(
  name: string,
  servers: UpstreamServer[],
  opts: Partial<HttpUpstreamGroup> = {},
): HttpUpstreamGroup {
  return {
    name,
    servers,
    balancing: { kind: 'round_robin' },
    source: SRC,
    ...httpGroupSettings(),
    ...opts,
  };
}

export function httpConfig(
  servers: HttpServer[],
  groups: HttpUpstreamGroup[] = [],
  extra: Partial<Config> = {},
): Config {
  return {
    file: 'test.conf',
    ...mainSettings(),
    http: { upstreams: new Map(groups.map((g) => [g.name, g])), servers },
    ...extra,
  };
}

export interface RunningHttp {
  runtime: Runtime;
  records: HttpLogRecord[];
  requests(): RequestRecord[];
  retries(): RetryRecord[];
  port: number;
  ports: number[];
  /** Resolves once `n` request records exist (bounded). */
  waitForRequests(n: number, timeoutMs?: number): Promise<RequestRecord[]>;
  close(): Promise<void>;
}

export async function startHttp(cfg: Config): Promise<RunningHttp> {
  const log = new Arrivals<HttpLogRecord>();
  const runtime = new Runtime({ sessionLog: () => {}, httpLog: (r) => log.push(r) });
  await runtime.apply(cfg);
  const ports = runtime.boundPorts();
  const requests = () => log.items.filter((r): r is RequestRecord => r.msg === 'request');
  return {
    runtime,
    records: log.items,
    requests,
    retries: () => log.items.filter((r): r is RetryRecord => r.msg === 'upstream_retry'),
    port: ports[0]!,
    ports,
    waitForRequests: (n, timeoutMs = 10_000) =>
      log.until(() => (requests().length >= n ? requests() : undefined), timeoutMs, `${n} request records`),
    async close() {
      await runtime.shutdown(0);
    },
  };
}

// ---- a raw HTTP/1.1 upstream whose every byte the test controls ------------

export interface RawRequest {
  method: string;
  url: string;
  version: string;
  headers: Record<string, string>;
  rawHead: string;
  body: Buffer;
  socket: Socket;
  /** Index of this request on its connection (0 for the first). */
  index: number;
}

export interface RawUpstream {
  port: number;
  server: Server;
  sockets: Set<Socket>;
  /** Connections accepted so far. */
  accepted: number;
  requests: RawRequest[];
  close(): Promise<void>;
}

export type RawHandler = (req: RawRequest, respond: (raw: string | Buffer) => void) => void;

export function okResponse(body = 'ok', extra = ''): string {
  return `HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
}

/**
 * An HTTP/1.1 upstream parsing requests by hand (Content-Length or chunked
 * bodies). `idleCloseMs` closes a connection exactly that long after its
 * last response, without announcing it, as an app server's keep-alive
 * timeout does.
 */
export async function rawUpstream(
  handler: RawHandler,
  opts: {
    idleCloseMs?: number;
    /**
     * Resets the connection on the first byte of its request number `index`
     * (0-based), before reading it: a server that dropped a kept-alive
     * connection just as the next request arrived.
     */
    resetBeforeRequest?: (index: number) => boolean;
  } = {},
): Promise<RawUpstream> {
  const sockets = new Set<Socket>();
  const state: RawUpstream = {
    port: 0,
    server: undefined as unknown as Server,
    sockets,
    accepted: 0,
    requests: [],
    close: async () => {},
  };
  const srv = createServer((socket) => {
    state.accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buf = Buffer.alloc(0);
    let index = 0;
    let idle: NodeJS.Timeout | undefined;
    let busy = false;
    const pump = () => {
      while (!busy) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const rawHead = buf.subarray(0, end).toString('latin1');
        const [line, ...lines] = rawHead.split('\r\n');
        const [method = '', url = '', version = ''] = (line ?? '').split(' ');
        const headers: Record<string, string> = {};
        for (const l of lines) {
          const c = l.indexOf(':');
          const k = l.slice(0, c).trim().toLowerCase();
          headers[k] =
            headers[k] === undefined ? l.slice(c + 1).trim() : `${headers[k]}, ${l.slice(c + 1).trim()}`;
        }
        let at = end + 4;
        let body: Buffer;
        if (headers['transfer-encoding']?.includes('chunked')) {
          const parts: Buffer[] = [];
          for (;;) {
            const nl = buf.indexOf('\r\n', at);
            if (nl < 0) return;
            const size = Number.parseInt(buf.subarray(at, nl).toString('latin1'), 16);
            if (size === 0) {
              const fin = buf.indexOf('\r\n\r\n', Math.max(at, nl - 2));
              if (fin < 0) return;
              at = fin + 4;
              break;
            }
            if (buf.length < nl + 2 + size + 2) return;
            parts.push(buf.subarray(nl + 2, nl + 2 + size));
            at = nl + 2 + size + 2;
          }
          body = Buffer.concat(parts);
        } else {
          const n = Number(headers['content-length'] ?? 0);
          if (buf.length < at + n) return;
          body = buf.subarray(at, at + n);
          at += n;
        }
        buf = buf.subarray(at);
        clearTimeout(idle);
        busy = true;
        const req: RawRequest = { method, url, version, headers, rawHead, body, socket, index: index++ };
        state.requests.push(req);
        handler(req, (raw) => {
          busy = false;
          if (socket.destroyed) return;
          socket.write(raw);
          if (opts.idleCloseMs !== undefined) idle = setTimeout(() => socket.destroy(), opts.idleCloseMs);
          pump();
        });
      }
    };
    socket.on('data', (d: Buffer) => {
      if (buf.length === 0 && !busy && opts.resetBeforeRequest?.(index)) {
        socket.resetAndDestroy();
        return;
      }
      buf = Buffer.concat([buf, d]);
      pump();
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  state.server = srv;
  state.port = (srv.address() as AddressInfo).port;
  state.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      srv.close(() => resolve());
    });
  return state;
}

// ---- a raw client -----------------------------------------------------------

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  rawHead: string;
  body: Buffer;
}

/**
 * Reads one response from `socket` (Content-Length, chunked or until close),
 * keeping what follows for the next call. Rejects if the connection ends
 * before the response is complete: a truncated response is an error here.
 */
export class RawClient {
  // Chunks are kept apart until read: concatenating on every 'data' event is
  // quadratic, which made a 32 MiB body take tens of seconds on a loaded host.
  private flat: Buffer = Buffer.alloc(0);
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private get buf(): Buffer {
    if (this.pending.length > 0) {
      this.flat = Buffer.concat([this.flat, ...this.pending]);
      this.pending = [];
      this.pendingBytes = 0;
    }
    return this.flat;
  }
  private set buf(b: Buffer) {
    this.flat = b;
  }
  /** Bytes received and not yet read, without joining them. */
  private get size(): number {
    return this.flat.length + this.pendingBytes;
  }
  private ended = false;
  private error: Error | undefined;
  private wake: (() => void) | undefined;
  readonly socket: Socket;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.pending.push(d);
      this.pendingBytes += d.length;
      this.wake?.();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake?.();
    });
    socket.on('error', (e) => {
      this.error = e;
      this.ended = true;
      this.wake?.();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake?.();
    });
  }

  static open(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  get closed(): boolean {
    return this.ended;
  }

  send(raw: string | Buffer): void {
    this.socket.write(raw);
  }

  private async more(deadline: number): Promise<void> {
    if (this.ended) throw this.error ?? new Error('connection closed');
    const left = deadline - Date.now();
    if (left <= 0) throw new Error('timed out reading the response');
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, left);
      this.wake = () => {
        clearTimeout(t);
        this.wake = undefined;
        resolve();
      };
    });
  }

  /** Resolves when the peer closed the connection (bounded). */
  async waitClosed(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      if (Date.now() > deadline) throw new Error('connection not closed in time');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  async response(opts: { timeoutMs?: number; head?: boolean } = {}): Promise<RawResponse> {
    const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
    for (;;) {
      let end = this.buf.indexOf('\r\n\r\n');
      while (end < 0) {
        await this.more(deadline);
        end = this.buf.indexOf('\r\n\r\n');
      }
      const rawHead = this.buf.subarray(0, end).toString('latin1');
      const [line, ...lines] = rawHead.split('\r\n');
      const status = Number((line ?? '').split(' ')[1]);
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const c = l.indexOf(':');
        headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
      }
      this.buf = this.buf.subarray(end + 4);
      if (status >= 100 && status < 200 && status !== 101) {
        if (status === 100) return { status, headers, rawHead, body: Buffer.alloc(0) };
        continue;
      }
      if (opts.head || status === 204 || status === 304 || status === 101)
        return { status, headers, rawHead, body: Buffer.alloc(0) };
      if (headers['transfer-encoding'] === 'chunked') {
        const parts: Buffer[] = [];
        for (;;) {
          let nl = this.buf.indexOf('\r\n');
          while (nl < 0) {
            await this.more(deadline);
            nl = this.buf.indexOf('\r\n');
          }
          const size = Number.parseInt(this.buf.subarray(0, nl).toString('latin1'), 16);
          if (size === 0) {
            let fin = this.buf.indexOf('\r\n\r\n');
            while (fin < 0) {
              await this.more(deadline);
              fin = this.buf.indexOf('\r\n\r\n');
            }
            const trailerText = this.buf.subarray(nl + 2, fin).toString('latin1');
            for (const l of trailerText.split('\r\n').filter(Boolean)) {
              const c = l.indexOf(':');
              headers[`trailer:${l.slice(0, c).trim().toLowerCase()}`] = l.slice(c + 1).trim();
            }
            this.buf = this.buf.subarray(fin + 4);
            return { status, headers, rawHead, body: Buffer.concat(parts) };
          }
          while (this.size < nl + 2 + size + 2) await this.more(deadline);
          parts.push(this.buf.subarray(nl + 2, nl + 2 + size));
          this.buf = this.buf.subarray(nl + 2 + size + 2);
        }
      }
      if (headers['content-length'] !== undefined) {
        const n = Number(headers['content-length']);
        while (this.size < n) await this.more(deadline);
        const body = this.buf.subarray(0, n);
        this.buf = this.buf.subarray(n);
        return { status, headers, rawHead, body };
      }
      while (!this.ended) await this.more(deadline).catch(() => {});
      const body = this.buf;
      this.buf = Buffer.alloc(0);
      return { status, headers, rawHead, body };
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

/** One request on a fresh connection. */
export async function fetchRaw(port: number, raw: string | Buffer, timeoutMs = 10_000): Promise<RawResponse> {
  const c = await RawClient.open(port);
  try {
    c.send(raw);
    return await c.response({ timeoutMs });
  } finally {
    c.close();
  }
}

export function get(path: string, extra = '', host = 'test'): string {
  return `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}\r\n`;
}

export type { Listen };
