/**
 * Process plumbing the benches share: argument parsing, free ports, waiting
 * for a listener, a working directory with the processes started in it
 * (stopped and removed at the end or on Ctrl-C), wrk output parsing, version
 * banners. Nothing here measures anything.
 */
import { type ChildProcess, type StdioOptions, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built CLI entry point (`keepwire`). */
export const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

/** `--name N` from argv, or `fallback`. */
export function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

/** A port on 127.0.0.1 with nothing listening on it (bound then released). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

/** Resolves once 127.0.0.1:`port` accepts a connection; gives up after about 5 s. */
export async function waitListening(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listening on ${port}`);
}

/** First line of a version banner; nginx prints it on stderr. */
export function version(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0]!.trim();
}

/**
 * A temporary working directory (configs, pid files, logs) and the processes
 * a bench starts. `stop()` sends SIGTERM to each, waits for it to exit
 * (SIGKILL after 5 s), then removes the directory. SIGTERM, not SIGKILL: a
 * killed nginx master leaves its workers running. Ctrl-C stops everything too.
 */
export class Workspace {
  readonly dir: string;
  private readonly procs: ChildProcess[] = [];
  private stopping: Promise<void> | undefined;
  private readonly onSignal = () => {
    void this.stop().finally(() => process.exit(130));
  };

  constructor(prefix: string) {
    this.dir = mkdtempSync(join(tmpdir(), prefix));
    process.once('SIGINT', this.onSignal);
  }

  /** Writes `text` to `name` in the directory; returns its path. */
  write(name: string, text: string): string {
    const file = join(this.dir, name);
    writeFileSync(file, text);
    return file;
  }

  /** Starts a process that `stop()` ends; stdout ignored and stderr inherited unless `stdio` says otherwise. */
  spawn(cmd: string, args: string[], stdio: StdioOptions = ['ignore', 'ignore', 'inherit']): ChildProcess {
    const child = spawn(cmd, args, { stdio });
    this.procs.push(child);
    return child;
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      process.removeListener('SIGINT', this.onSignal);
      await Promise.all(this.procs.map(end));
      rmSync(this.dir, { recursive: true, force: true });
    })();
    return this.stopping;
  }
}

async function end(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), 5000);
  });
  if (await Promise.race([exited.then(() => false), late])) {
    child.kill('SIGKILL');
    await exited;
  }
  clearTimeout(timer);
}

export interface WrkResult {
  name: string;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** wrk's error lines as printed (socket errors, non-2xx), empty when none. */
  errors: string;
  /** Socket errors plus non-2xx/3xx responses, summed. */
  errorCount: number;
  /** Requests completed in the run. */
  requests: number;
  /** CPU time of the target's process tree per request, in µs (when `cpuOf` was given). */
  cpuUsPerReq: number;
  /** The user-space part of `cpuUsPerReq` (the rest is the kernel's: system calls, network stack). */
  userUsPerReq: number;
}

/** wrk's latency column (`812.00us`, `1.20ms`, `2.01s`) in milliseconds. */
export function toMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(text.trim());
  if (!m) return Number.NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
}

const TICK_US = 1e6 / Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100);

/** Each live process's parent and CPU ticks (user + system, and user alone), from /proc/PID/stat. */
function procTable(): Map<number, { ppid: number; ticks: number; user: number }> {
  const stats = new Map<number, { ppid: number; ticks: number; user: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let text: string;
    try {
      text = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    // The command name (field 2) may hold spaces and parentheses: fields count from the last ')'.
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    stats.set(Number(entry), {
      ppid: Number(f[1]),
      ticks: Number(f[11]) + Number(f[12]),
      user: Number(f[11]),
    });
  }
  return stats;
}

/** `root` and every live descendant (an nginx master's workers, a keepwire master's workers). */
function tree(root: number, stats = procTable()): Set<number> {
  const pids = new Set([root]);
  for (let grown = true; grown; ) {
    grown = false;
    for (const [pid, s] of stats)
      if (!pids.has(pid) && pids.has(s.ppid)) {
        pids.add(pid);
        grown = true;
      }
  }
  return pids;
}

/**
 * CPU time (user + system, µs) used so far by process `root` and every live
 * descendant, from /proc/PID/stat. Threads are counted in their process.
 */
export function treeCpuUs(root: number): number {
  return treeCpu(root).total;
}

/** `treeCpuUs` and its user-space part (µs). */
export function treeCpu(root: number): { total: number; user: number } {
  const stats = procTable();
  let ticks = 0;
  let user = 0;
  for (const pid of tree(root, stats)) {
    const s = stats.get(pid);
    if (s === undefined) continue;
    ticks += s.ticks;
    user += s.user;
  }
  return { total: ticks * TICK_US, user: user * TICK_US };
}

/**
 * Pins process `root`, its threads and its descendants to `cpus` (taskset's
 * list, e.g. `1` or `0,1`). On a 2-CPU machine a proxy alone on one CPU and
 * the load generator and backend on the other measure the proxy's cost per
 * request several times more steadily than all of them sharing both.
 * Processes started later by a pinned process inherit its CPUs.
 */
export function pin(root: number, cpus: string): void {
  for (const pid of tree(root))
    spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}

/**
 * One wrk run (`threads` threads, default 1; `connections` keep-alive
 * connections) against 127.0.0.1:`port`/ (`scheme` https: over TLS, wrk
 * verifying nothing; `headers` added to each request, e.g. `Connection:
 * close`). With `cpuOf`, the CPU time that process tree spent during the
 * run is divided by the requests served.
 */
export async function wrk(
  name: string,
  port: number,
  seconds: number,
  connections: number,
  opts: { threads?: number; cpuOf?: number; scheme?: 'http' | 'https'; headers?: string[] } = {},
): Promise<WrkResult> {
  const cpuBefore = opts.cpuOf === undefined ? undefined : treeCpu(opts.cpuOf);
  const child = spawn(
    'wrk',
    [
      `-t${opts.threads ?? 1}`,
      `-c${connections}`,
      `-d${seconds}s`,
      '--latency',
      ...(opts.headers ?? []).flatMap((h) => ['-H', h]),
      `${opts.scheme ?? 'http'}://127.0.0.1:${port}/`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  await new Promise((resolve) => child.once('close', resolve));
  const cpuAfter = opts.cpuOf === undefined ? undefined : treeCpu(opts.cpuOf);
  const cpu = cpuAfter && cpuBefore ? cpuAfter.total - cpuBefore.total : Number.NaN;
  const user = cpuAfter && cpuBefore ? cpuAfter.user - cpuBefore.user : Number.NaN;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? Number.NaN);
  const p50 = toMs(/\s50%\s+(\S+)/.exec(out)?.[1] ?? '');
  const p99 = toMs(/\s99%\s+(\S+)/.exec(out)?.[1] ?? '');
  const errorLines = out.match(/Socket errors:.*|Non-2xx.*/g) ?? [];
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const errorCount = (socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0) + non2xx;
  return {
    name,
    rps,
    p50Ms: p50,
    p99Ms: p99,
    errors: errorLines.join('; '),
    errorCount,
    requests,
    cpuUsPerReq: cpu / requests,
    userUsPerReq: user / requests,
  };
}

/**
 * Writes `NAME.conf` (foreground master with one worker, or `workers`; pid file and error log
 * named after NAME in the workspace) and starts nginx with it. `blocks` are
 * the top-level blocks after `events`; `preamble` goes first (load_module).
 */
export function startNginx(
  ws: Workspace,
  name: string,
  blocks: string,
  opts: { workerConnections?: number; preamble?: string; workers?: number } = {},
): ChildProcess {
  const conf = ws.write(
    `${name}.conf`,
    `${opts.preamble ?? ''}daemon off;
worker_processes ${opts.workers ?? 1};
pid ${ws.dir}/${name}.pid;
error_log ${ws.dir}/${name}-error.log;
events { worker_connections ${opts.workerConnections ?? 4096}; }
${blocks}`,
  );
  return ws.spawn('nginx', ['-c', conf, '-p', ws.dir]);
}

/** What every bench backend answers: 97 bytes and a newline. */
export const BODY = 'x'.repeat(97);

/**
 * nginx's `http {}` for the benches' backend: 200 with BODY on
 * 127.0.0.1:`port`, up to 100000 requests per connection; `keepaliveTimeout`
 * (e.g. `600s`) when idle connections must outlive nginx's 75 s default.
 */
export function nginxBackendHttp(port: number, keepaliveTimeout?: string): string {
  const idle = keepaliveTimeout ? ` keepalive_timeout ${keepaliveTimeout};` : '';
  return `http {
    access_log off;
    server { listen 127.0.0.1:${port}; keepalive_requests 100000;${idle} location / { return 200 "${BODY}\\n"; } }
}
`;
}

/**
 * nginx's `http {}` for nginx as the proxy under test: 127.0.0.1:`port` →
 * the backend on `backendPort` through a keep-alive pool of `pool`
 * connections, as nginx's docs configure upstream keep-alive.
 */
export function nginxProxyHttp(opts: {
  port: number;
  backendPort: number;
  pool: number;
  /** `off`, or a file for one line per request. */
  accessLog: string;
  /** Both legs' keep-alive timeout (e.g. `600s`); nginx's defaults without it. */
  keepaliveTimeout?: string;
}): string {
  const idle = (indent: string) =>
    opts.keepaliveTimeout ? `${indent}keepalive_timeout ${opts.keepaliveTimeout};` : '';
  return `http {
    access_log ${opts.accessLog};
    upstream app { server 127.0.0.1:${opts.backendPort}; keepalive ${opts.pool};${idle(' ')} }
    server {
        listen 127.0.0.1:${opts.port};
        keepalive_requests 100000;${idle('\n        ')}
        location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
}
`;
}

// ---- libuv handles straight from Node's bindings (bench floors only) ----

/**
 * A libuv TCP handle as `process.binding('tcp_wrap').TCP` makes it: the
 * floors beneath `net.Socket` in bench/stream.ts and bench/short.ts.
 * keepwire itself reaches Node's internals only through
 * src/kernel/node-internals.ts. `Self` is the bench's own handle type
 * (the fields it adds).
 */
export interface RawTcpHandle<Self> {
  onread: ((this: Self, ab: ArrayBuffer | undefined) => void) | null;
  onconnection?: (err: number, client: Self) => void;
  readStart(): number;
  readStop(): number;
  setNoDelay(on: boolean): number;
  writeBuffer(req: object, buf: Buffer): number;
  shutdown(req: object): number;
  connect(req: object, host: string, port: number): number;
  bind(host: string, port: number): number;
  listen(backlog: number): number;
  close(cb: () => void): void;
}

/** What the floors use of `process.binding('stream_wrap')`. */
export interface RawStreamBindings {
  WriteWrap: new () => Record<string, unknown>;
  ShutdownWrap: new () => Record<string, unknown>;
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kArrayBufferOffset: number;
  kLastWriteWasAsync: number;
}

/** `n` keep-alive GETs over `conns` connections, one in flight on each; resolves when all are answered. */
export function keepAliveGets(port: number, n: number, conns: number): Promise<void> {
  const req = Buffer.from(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`, 'latin1');
  let sent = 0;
  let done = 0;
  return new Promise((resolve, reject) => {
    for (let c = 0; c < conns; c++) {
      const s = connect(port, '127.0.0.1');
      let held = '';
      const next = () => {
        if (sent < n) {
          sent++;
          s.write(req);
        } else s.end();
      };
      s.on('connect', next);
      s.on('error', reject);
      s.on('data', (d: Buffer) => {
        held += d.toString('latin1');
        for (;;) {
          const end = held.indexOf('\r\n\r\n');
          if (end < 0) return;
          const m = /\r\ncontent-length: *(\d+)/i.exec(held.slice(0, end));
          const total = end + 4 + (m ? Number(m[1]) : 0);
          if (held.length < total) return;
          if (!held.startsWith('HTTP/1.1 200 ')) reject(new Error(`unexpected answer: ${held.slice(0, 40)}`));
          held = held.slice(total);
          if (++done === n) resolve();
          next();
        }
      });
    }
  });
}
