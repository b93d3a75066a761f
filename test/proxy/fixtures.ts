/**
 * Models built in code and real peers on 127.0.0.1 for the stream proxy tests.
 * Every wait is bounded: a hung proxy fails a test instead of hanging the run.
 */
import { createHash, randomBytes } from 'node:crypto';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import type {
  Address,
  Balancing,
  Config,
  Listen,
  SourceRef,
  StreamServer,
  UpstreamGroup,
  UpstreamServer,
} from '../../src/config/model.js';
import type { KeepaliveSpec } from '../../src/keepalive/spec.js';
import type { SessionRecord } from '../../src/proxy/stream.js';
import { Runtime } from '../../src/serve/index.js';

export const SRC: SourceRef = { file: 'test.conf', line: 1, col: 1 };

export function address(port: number, host = '127.0.0.1'): Address {
  return { host, port, text: `${host}:${port}` };
}

export function listen(port = 0, soKeepalive?: KeepaliveSpec): Listen {
  const l: Listen = { address: address(port), backlog: 511, reuseport: false, source: SRC };
  if (soKeepalive) l.soKeepalive = soKeepalive;
  return l;
}

export function server(port: number, opts: Partial<UpstreamServer> = {}): UpstreamServer {
  return {
    address: address(port),
    weight: 1,
    maxFails: 1,
    failTimeoutMs: 10_000,
    maxConns: 0,
    backup: false,
    down: false,
    source: SRC,
    ...opts,
  };
}

export function group(
  name: string,
  servers: UpstreamServer[],
  balancing: Balancing = { kind: 'round_robin' },
): UpstreamGroup {
  return { name, servers, balancing, source: SRC };
}

export function streamServer(opts: Partial<StreamServer> & Pick<StreamServer, 'proxyPass'>): StreamServer {
  return {
    listens: [listen()],
    proxyTimeoutMs: 600_000,
    proxyConnectTimeoutMs: 60_000,
    proxySocketKeepalive: { enable: false },
    proxyNextUpstream: true,
    proxyNextUpstreamTries: 0,
    proxyNextUpstreamTimeoutMs: 0,
    resetTimedoutConnection: false,
    source: SRC,
    ...opts,
  };
}

export function config(
  servers: StreamServer[],
  groups: UpstreamGroup[] = [],
  extra: Partial<Config> = {},
): Config {
  return {
    file: 'test.conf',
    workerConnections: 1024,
    shutdownTimeoutMs: 5_000,
    stream: { upstreams: new Map(groups.map((g) => [g.name, g])), servers },
    ...extra,
  };
}

export interface Running {
  runtime: Runtime;
  records: SessionRecord[];
  /** Bound ports in listen order. */
  ports: number[];
  /** Resolves with the next `n`-th session record (bounded). */
  waitForRecords(n: number, timeoutMs?: number): Promise<SessionRecord[]>;
  close(): Promise<void>;
}

export async function start(cfg: Config): Promise<Running> {
  const records: SessionRecord[] = [];
  const waiters: (() => void)[] = [];
  const runtime = new Runtime({
    sessionLog: (r) => {
      records.push(r);
      for (const w of waiters.splice(0)) w();
    },
  });
  await runtime.apply(cfg);
  return {
    runtime,
    records,
    ports: runtime.boundPorts(),
    async waitForRecords(n, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (records.length < n) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`timed out waiting for ${n} session records, have ${records.length}`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(t);
            resolve();
          });
        });
      }
      return records.slice(0, n);
    },
    async close() {
      await runtime.shutdown(0);
    },
  };
}

export interface Peer {
  server: Server;
  port: number;
  /** Sockets accepted so far. */
  accepted: Socket[];
  close(): Promise<void>;
}

/** A backend; `onSocket` decides what it does with each connection (default: echo, FIN after the client's FIN). */
export async function backend(onSocket: (s: Socket) => void = echo): Promise<Peer> {
  const accepted: Socket[] = [];
  const srv = createServer({ allowHalfOpen: true }, (s) => {
    accepted.push(s);
    s.on('error', () => {});
    onSocket(s);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    server: srv,
    port: (srv.address() as AddressInfo).port,
    accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of accepted) s.destroy();
        srv.close(() => resolve());
      }),
  };
}

export function echo(s: Socket): void {
  s.pipe(s);
}

/** A port with nothing listening on it (bound then released). */
export async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

export function dial(port: number, opts: { allowHalfOpen?: boolean } = {}): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, allowHalfOpen: opts.allowHalfOpen ?? false });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

export type Ending = { kind: 'end' } | { kind: 'error'; code: string | undefined } | { kind: 'close' };

/** How the peer ended a socket: FIN ('end' then close), RST (ECONNRESET) or a bare close. Bounded. */
export function ending(s: Socket, timeoutMs = 10_000): Promise<Ending> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('socket did not end in time')), timeoutMs);
    const done = (e: Ending) => {
      clearTimeout(t);
      resolve(e);
    };
    s.on('data', () => {});
    s.once('end', () => done({ kind: 'end' }));
    s.once('error', (e: NodeJS.ErrnoException) => done({ kind: 'error', code: e.code }));
    s.once('close', () => done({ kind: 'close' }));
  });
}

export function sha256(chunks: Buffer[]): string {
  const h = createHash('sha256');
  for (const c of chunks) h.update(c);
  return h.digest('hex');
}

export function randomChunks(totalBytes: number, maxChunk: number): Buffer[] {
  const data = randomBytes(totalBytes);
  const chunks: Buffer[] = [];
  for (let off = 0; off < totalBytes; ) {
    const n = Math.min(totalBytes - off, 1 + Math.floor(Math.random() * maxChunk));
    chunks.push(data.subarray(off, off + n));
    off += n;
  }
  return chunks;
}

/** Writes chunks honouring backpressure, with random short pauses, then ends the socket. */
export async function writeAll(s: Socket, chunks: Buffer[], pauseEvery = 0): Promise<void> {
  let i = 0;
  for (const c of chunks) {
    if (!s.write(c)) await new Promise<void>((resolve) => s.once('drain', resolve));
    if (pauseEvery > 0 && ++i % pauseEvery === 0) await sleep(Math.floor(Math.random() * 5));
  }
  s.end();
}

/** Collects everything until the peer's FIN. */
export function readAll(s: Socket, timeoutMs = 30_000): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const t = setTimeout(() => reject(new Error('readAll timed out')), timeoutMs);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.once('end', () => {
      clearTimeout(t);
      resolve(chunks);
    });
    s.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
    }),
  ]);
}

/** `proxy_pass 127.0.0.1:PORT;` */
export function passTo(port: number): { kind: 'address'; address: Address } {
  return { kind: 'address', address: address(port) };
}
