/**
 * Peers for the standing hardening suite (issue #22): a raw backend that
 * records every byte it receives and parses it the way a lenient app server
 * would, real nginx on loopback with a temporary prefix, `keepwire serve`
 * as a child process, and a raw client that reads whatever comes back.
 * Every wait is bounded.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { nginxTestConf } from '../proxy/http/nginx-peer.js';
import { type Cleanup, closedPort, type ServeCli, serveCli } from '../support.js';

export const NGINX = '/usr/sbin/nginx';

/** nginx is there, or the test skips (fails under CI=true, where it must be). */
export function requireNginx(t: TestContext): boolean {
  if (existsSync(NGINX)) return true;
  if (process.env.CI === 'true')
    throw new Error(`${NGINX} is missing (scripts/system-deps.sh installs nginx)`);
  t.skip(`${NGINX} is missing: run scripts/system-deps.sh`);
  return false;
}

// ---- the recording backend -----------------------------------------------------

/** One request as the backend framed it. */
export interface SeenRequest {
  /** `METHOD target`, then ` +N` for a body of N bytes, ` [_]` when a header name had an underscore. */
  line: string;
  method: string;
  target: string;
  headers: [string, string][];
  body: Buffer;
}

export interface RecordingBackend {
  port: number;
  /** Every request framed so far, across connections, in arrival order. */
  requests: SeenRequest[];
  /** Every byte received, per connection. */
  raw: Buffer[];
  /** Connections accepted. */
  connections: number;
  /** Forgets what was recorded (between cases). */
  reset(): void;
  /**
   * Resolves once the backend's event loop has read everything already in
   * its sockets' receive queues: a fresh connection is accepted and echoed
   * in a later loop turn than the reads of data queued before it.
   */
  barrier(): Promise<void>;
  close(): Promise<void>;
}

const FIXED_OK = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
/** An upstream that refuses every upgrade: what makes smuggled bytes after it visible. */
const REFUSE_UPGRADE = 'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n';
const BARRIER = 'BARRIER\n';

/**
 * Parses as many requests as `buf` holds, leniently (bare LF accepted,
 * Transfer-Encoding chunked wins over Content-Length, as naive servers do),
 * so that anything a proxy lets through shows up as a request here.
 * Returns the requests and the offset reached; `garbage` when the bytes can
 * never frame a request.
 */
export function frameRequests(buf: Buffer): { requests: SeenRequest[]; used: number; garbage: boolean } {
  const requests: SeenRequest[] = [];
  let at = 0;
  for (;;) {
    // Blank lines between requests are skipped, as servers do.
    while (buf[at] === 13 || buf[at] === 10) at++;
    if (at >= buf.length) return { requests, used: at, garbage: false };
    const crlf = buf.indexOf('\r\n\r\n', at);
    const lf = buf.indexOf('\n\n', at);
    let headEnd: number;
    let bodyAt: number;
    if (crlf >= 0 && (lf < 0 || crlf < lf)) {
      headEnd = crlf;
      bodyAt = crlf + 4;
    } else if (lf >= 0) {
      headEnd = lf;
      bodyAt = lf + 2;
    } else {
      return { requests, used: at, garbage: buf.length - at > 64 * 1024 };
    }
    const lines = buf.toString('latin1', at, headEnd).split(/\r?\n/);
    const parts = (lines[0] ?? '').split(/[ \t]+/);
    const method = parts[0] ?? '';
    const target = parts[1] ?? '';
    if (!/^[A-Za-z_-]+$/.test(method) || !/^HTTP\/\d\.\d$/.test(parts[2] ?? '')) {
      requests.push({
        line: `GARBAGE ${JSON.stringify(lines[0]?.slice(0, 40))}`,
        method: '',
        target: '',
        headers: [],
        body: Buffer.alloc(0),
      });
      return { requests, used: buf.length, garbage: true };
    }
    const headers: [string, string][] = [];
    for (const l of lines.slice(1)) {
      const c = l.indexOf(':');
      if (c > 0) headers.push([l.slice(0, c).trim().toLowerCase(), l.slice(c + 1).trim()]);
    }
    // Framed by the real names only: an underscored alias is marked (` [_]`)
    // rather than obeyed, so a forwarded one shows without stalling the run.
    const te = headers.filter(([n]) => n === 'transfer-encoding');
    const cl = headers.find(([n]) => n === 'content-length');
    let body: Buffer;
    let next: number;
    if (te.some(([, v]) => /chunked/i.test(v))) {
      const parts: Buffer[] = [];
      let p = bodyAt;
      for (;;) {
        const nl = buf.indexOf('\n', p);
        if (nl < 0) return { requests, used: at, garbage: false };
        const size = Number.parseInt(buf.toString('latin1', p, nl).trim(), 16);
        if (Number.isNaN(size)) {
          requests.push({
            line: 'GARBAGE chunk size',
            method: '',
            target: '',
            headers,
            body: Buffer.alloc(0),
          });
          return { requests, used: buf.length, garbage: true };
        }
        p = nl + 1;
        if (size === 0) {
          // Trailers up to an empty line.
          for (;;) {
            const e = buf.indexOf('\n', p);
            if (e < 0) return { requests, used: at, garbage: false };
            const empty = buf.toString('latin1', p, e).replace(/\r$/, '') === '';
            p = e + 1;
            if (empty) break;
          }
          break;
        }
        if (buf.length < p + size) return { requests, used: at, garbage: false };
        parts.push(buf.subarray(p, p + size));
        p += size;
        if (buf[p] === 13) p++;
        if (buf[p] === 10) p++;
        else if (p >= buf.length) return { requests, used: at, garbage: false };
      }
      body = Buffer.concat(parts);
      next = p;
    } else {
      const n = cl === undefined ? 0 : Number.parseInt(cl[1], 10) || 0;
      if (buf.length < bodyAt + n) return { requests, used: at, garbage: false };
      body = buf.subarray(bodyAt, bodyAt + n);
      next = bodyAt + n;
    }
    const underscore = headers.some(([n]) => n.includes('_'));
    requests.push({
      line: `${method} ${target}${body.length > 0 ? ` +${body.length}` : ''}${underscore ? ' [_]' : ''}`,
      method,
      target,
      headers,
      body,
    });
    at = next;
  }
}

/**
 * A raw TCP backend: records every byte, frames requests leniently, answers
 * each with a fixed 200 and refuses every upgrade with a 400 while keeping
 * the connection open, so that bytes smuggled after a refused upgrade are
 * read as the next request.
 */
export async function recordingBackend(): Promise<RecordingBackend> {
  const sockets = new Set<Socket>();
  const state = {
    requests: [] as SeenRequest[],
    raw: [] as Buffer[],
    connections: 0,
  };
  const srv: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    state.connections++;
    const slot = state.raw.length;
    state.raw.push(Buffer.alloc(0));
    let pending = Buffer.alloc(0);
    let dead = false;
    socket.on('data', (d: Buffer) => {
      if (pending.length === 0 && d.toString('latin1') === BARRIER) {
        socket.end(BARRIER);
        return;
      }
      if (state.raw[slot] !== undefined) state.raw[slot] = Buffer.concat([state.raw[slot]!, d]);
      if (dead) return;
      pending = Buffer.concat([pending, d]);
      const { requests, used, garbage } = frameRequests(pending);
      pending = pending.subarray(used);
      for (const r of requests) {
        state.requests.push(r);
        if (r.method === '') continue;
        const upgrade = r.headers.some(([n]) => n === 'upgrade');
        socket.write(upgrade ? REFUSE_UPGRADE : FIXED_OK);
      }
      if (garbage) dead = true;
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as AddressInfo).port;
  const backend: RecordingBackend = {
    port,
    get requests() {
      return state.requests;
    },
    get raw() {
      return state.raw;
    },
    get connections() {
      return state.connections;
    },
    reset() {
      state.requests = [];
      // Keep the slots of open connections, emptied.
      state.raw = state.raw.map(() => Buffer.alloc(0));
    },
    async barrier() {
      await new Promise<void>((resolve, reject) => {
        const s = connect({ host: '127.0.0.1', port });
        const timer = setTimeout(() => {
          s.destroy();
          reject(new Error('backend barrier: no answer within 5 s'));
        }, 5_000);
        s.on('error', reject);
        s.on('data', () => {});
        s.on('close', () => {
          clearTimeout(timer);
          resolve();
        });
        s.write(BARRIER);
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        srv.close(() => resolve());
      }),
  };
  return backend;
}

// ---- the two proxies ------------------------------------------------------------

/** The shared part of both proxies' configuration: the inside of one `server { }` block. */
export interface BlockTimeouts {
  clientHeader: string;
  clientBody: string;
  keepalive: string;
  proxyRead: string;
}

export const DIFFERENTIAL_TIMEOUTS: BlockTimeouts = {
  clientHeader: '2s',
  clientBody: '2s',
  keepalive: '3s',
  proxyRead: '3s',
};

export function serverBlock(port: number, backendPort: number, t = DIFFERENTIAL_TIMEOUTS): string {
  return `
    listen 127.0.0.1:${port};
    client_header_timeout ${t.clientHeader};
    client_body_timeout ${t.clientBody};
    send_timeout ${t.proxyRead};
    keepalive_timeout ${t.keepalive};
    client_max_body_size 1m;

    location / {
      proxy_pass http://127.0.0.1:${backendPort};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout ${t.proxyRead};
    }

    location /admin {
      return 403;
    }

    location /healthz {
      return 200 "ok\\n";
    }
`;
}

export interface ProxyProcess {
  name: 'keepwire' | 'nginx';
  port: number;
  /** The process id (for /proc/PID). */
  pid: number;
  /** What the process wrote on stderr so far. */
  stderr(): string;
  alive(): boolean;
  stop(): Promise<void>;
}

/** Waits until something accepts TCP connections on `port` (bounded). */
export async function listening(port: number, timeoutMs = 10_000, alive: () => boolean = () => true) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!alive()) throw new Error(`the process on :${port} exited before listening`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listening on :${port} after ${timeoutMs} ms`);
}

/**
 * Debian's nginx on 127.0.0.1 with its own temporary prefix: foreground,
 * single process, error log in the prefix (`-e`, so nothing is written to
 * /var/log/nginx).
 */
export async function startNginx(t: Cleanup, server: (port: number) => string): Promise<ProxyProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'keepwire-hardening-nginx-'));
  const port = await closedPort();
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, nginxTestConf(dir, `server {\n${server(port)}\n  }`, 1024));
  const check = spawnSync(NGINX, ['-t', '-p', dir, '-e', join(dir, 'error.log'), '-c', conf], {
    encoding: 'utf8',
  });
  if (check.status !== 0) throw new Error(`nginx -t failed: ${check.stderr}`);
  const child = spawn(NGINX, ['-p', dir, '-e', join(dir, 'error.log'), '-c', conf], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const alive = () => child.exitCode === null && child.signalCode === null;
  const stop = async () => {
    if (alive()) {
      child.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  t.after(stop);
  await listening(port, 10_000, alive).catch((e: Error) => {
    throw new Error(`${e.message}; nginx stderr: ${err}; error.log: ${readLog(join(dir, 'error.log'))}`);
  });
  return { name: 'nginx', port, pid: child.pid!, stderr: () => err, alive, stop };
}

function readLog(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** `keepwire serve -c` on the same server block, with `events`/`http` around it. */
export async function startKeepwire(
  t: Cleanup,
  server: (port: number) => string,
  workerConnections = 1024,
): Promise<ProxyProcess & { serve: ServeCli }> {
  const port = await closedPort();
  const serve = serveCli(
    t,
    `events { worker_connections ${workerConnections}; }\nhttp {\n  access_log off;\n  server {\n${server(port)}\n  }\n}\n`,
  );
  const alive = () => serve.child.exitCode === null && serve.child.signalCode === null;
  await listening(port, 15_000, alive).catch((e: Error) => {
    throw new Error(`${e.message}; keepwire stderr: ${serve.stderr()}`);
  });
  return {
    name: 'keepwire',
    port,
    pid: serve.child.pid!,
    stderr: serve.stderr,
    alive,
    serve,
    async stop() {
      if (alive()) {
        serve.child.kill('SIGKILL');
        await serve.exited;
      }
    },
  };
}

// ---- the raw client ----------------------------------------------------------------

export interface Exchange {
  /** The status of every response read, in order. */
  statuses: number[];
  /** The connection was closed by the proxy (FIN or RST) within the bound. */
  closed: boolean;
  /** Milliseconds from the first byte sent to the close (or to giving up). */
  ms: number;
  /** All bytes received. */
  received: Buffer;
}

/** Splits `buf` into complete responses (status codes); stops at an incomplete one. */
export function parseResponses(buf: Buffer, eof: boolean): number[] {
  const statuses: number[] = [];
  let at = 0;
  while (at < buf.length) {
    const end = buf.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const head = buf.toString('latin1', at, end);
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
    if (!m) break;
    const status = Number(m[1]);
    let p = end + 4;
    const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    if (status === 101 || status === 204 || status === 304 || (status >= 100 && status < 200)) {
      // No body.
    } else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
      for (;;) {
        const nl = buf.indexOf('\r\n', p);
        if (nl < 0) return statuses;
        const size = Number.parseInt(buf.toString('latin1', p, nl), 16);
        p = nl + 2;
        if (size === 0) {
          const fin = buf.indexOf('\r\n', p);
          if (fin < 0) return statuses;
          p = fin + 2;
          break;
        }
        p += size + 2;
        if (p > buf.length) return statuses;
      }
    } else if (cl) {
      p += Number(cl[1]);
      if (p > buf.length) break;
    } else {
      if (!eof) break;
      p = buf.length;
    }
    statuses.push(status);
    at = p;
  }
  return statuses;
}

/**
 * Sends `raw` on a fresh connection, reads responses until `expected` of
 * them arrived or the proxy closed the connection, then sends FIN and waits
 * for the proxy to close too. Everything is bounded by `timeoutMs`.
 */
export async function exchange(
  port: number,
  raw: Buffer,
  expected: number,
  timeoutMs = 6_000,
): Promise<Exchange> {
  const started = Date.now();
  return await new Promise<Exchange>((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    let received = Buffer.alloc(0);
    let finSent = false;
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ statuses: parseResponses(received, closed), closed, ms: Date.now() - started, received });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    s.on('data', (d: Buffer) => {
      received = Buffer.concat([received, d]);
      if (!finSent && parseResponses(received, false).length >= expected) {
        finSent = true;
        s.end();
      }
    });
    s.on('error', () => finish(true));
    s.on('end', () => finish(true));
    s.on('close', () => finish(true));
    s.once('connect', () => {
      s.write(raw);
      if (expected === 0) {
        finSent = true;
        s.end();
      }
    });
  });
}

// ---- process resources ------------------------------------------------------------

/** Open file descriptors of `pid` (Linux /proc). */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Resident set size of `pid` in bytes (Linux /proc). */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/**
 * Waits (bounded) until `pid` holds at most `limit` fds, the closes of the
 * connections just ended having run; returns the last count seen.
 */
export async function settleFds(pid: number, limit: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const n = fdCount(pid);
    if (n <= limit || Date.now() >= deadline) return n;
    await new Promise((r) => setTimeout(r, 25));
  }
}

// ---- seeded randomness ---------------------------------------------------------------

/** mulberry32: a seeded generator, so a failing run replays from its seed. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed of a fuzz run: `env[name]` when set (replay), else fresh. */
export function fuzzSeed(name: string): number {
  const given = process.env[name];
  return given !== undefined && given !== '' ? Number(given) >>> 0 : (Date.now() ^ (process.pid << 16)) >>> 0;
}
