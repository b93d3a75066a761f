/**
 * Models (their settings parsed from config text by the real parser, see
 * test/model-text.ts) and real peers on 127.0.0.1 for the stream proxy tests.
 * Every wait is bounded: a hung proxy fails a test instead of hanging the run.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { type TestContext, type TestOptions, test } from 'node:test';
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
import { tcpHandles } from '../../src/kernel/node-internals.js';
import { forceSocketSessions, type SessionRecord } from '../../src/proxy/stream.js';
import { Runtime } from '../../src/serve/index.js';
import { mainSettings, streamServerSettings, upstreamServerSettings } from '../model-text.js';
import { Arrivals, sleep } from '../support.js';

export {
  ask,
  backend,
  closedPort,
  dial,
  type Ending,
  echo,
  ending,
  namedBackend,
  type Peer,
  sha256,
  sleep,
  within,
} from '../support.js';

/**
 * The two ways a plain-TCP stream session or plain HTTP connection runs: on
 * bare TCP handles (what Node 20 and 26 give: proxy/stream-handles.ts,
 * proxy/http/handle-wire.ts) and on net.Socket (the fallback, and the path
 * of TLS). `onBothPaths` runs a behaviour test once on each; the path is
 * fixed when the test's stream block starts.
 */
export type SessionPath = 'handles' | 'sockets';

/**
 * A runner of behaviour tests on both paths of one switch: `force(true)`
 * puts the frontends started from then on on sockets; after each test the
 * switch goes back to `sockets()`.
 */
export function bothPaths(force: (sockets: boolean) => void, sockets: () => boolean = () => false) {
  return (
    name: string,
    fn: (t: TestContext, path: SessionPath) => Promise<void>,
    options: TestOptions = {},
  ): void => {
    for (const path of ['handles', 'sockets'] as const)
      test(`${name} [${path}]`, options, async (t) => {
        if (path === 'handles' && tcpHandles === null) {
          // A Node without the handle internals runs everything on sockets.
          if (process.env.CI === 'true') assert.fail('this Node has no TCP handle internals (tcp_wrap)');
          t.skip('this Node has no TCP handle internals (tcp_wrap)');
          return;
        }
        force(path === 'sockets');
        try {
          await fn(t, path);
        } finally {
          force(sockets());
        }
      });
  };
}

export const onBothPaths = bothPaths(forceSocketSessions);

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
  return { address: address(port), ...upstreamServerSettings(), source: SRC, ...opts };
}

export function group(
  name: string,
  servers: UpstreamServer[],
  balancing: Balancing = { kind: 'round_robin' },
): UpstreamGroup {
  return { name, servers, balancing, source: SRC };
}

export function streamServer(opts: Partial<StreamServer> & Pick<StreamServer, 'proxyPass'>): StreamServer {
  return { listens: [listen()], ...streamServerSettings(), source: SRC, ...opts };
}

export function config(
  servers: StreamServer[],
  groups: UpstreamGroup[] = [],
  extra: Partial<Config> = {},
): Config {
  return {
    file: 'test.conf',
    ...mainSettings(),
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
  const records = new Arrivals<SessionRecord>();
  const runtime = new Runtime({ sessionLog: (r) => records.push(r) });
  await runtime.apply(cfg);
  return {
    runtime,
    records: records.items,
    ports: runtime.boundPorts(),
    waitForRecords: (n, timeoutMs = 10_000) =>
      records.until((rs) => (rs.length >= n ? rs.slice(0, n) : undefined), timeoutMs, `${n} session records`),
    async close() {
      await runtime.shutdown(0);
    },
  };
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

/** `proxy_pass 127.0.0.1:PORT;` */
export function passTo(port: number): { kind: 'address'; address: Address } {
  return { kind: 'address', address: address(port) };
}
