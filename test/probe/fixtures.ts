/**
 * Shared set-up for the probe tests: a namespace topology with a server in the
 * backend, and the probe CLI run inside the client namespace as a user would.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type RunningNginx, startNginx as startLabNginx } from '../../src/lab/nginx.js';
import type { Expiry, Host } from '../../src/netns/index.js';
import type { ProbeReport } from '../../src/probe/report.js';
import { MAIN } from '../support.js';

export const CLI = MAIN;

const IDLE_SERVER = fileURLToPath(new URL('./idle-server.js', import.meta.url));
const HTTP_SERVER = fileURLToPath(new URL('./http-server.js', import.meta.url));

/**
 * Where a process runs: a namespace host, or `null` for this process's own
 * namespace (loopback tests that need no root). Processes started with `null`
 * are not killed by any topology: the caller stops them.
 */
export type Where = Host | null;

function spawnIn(where: Where, cmd: string, args: string[]): ChildProcess {
  return where ? where.spawn(cmd, args) : spawn(cmd, args, { stdio: 'pipe' });
}

export interface IdleServer {
  child: ChildProcess;
  port: number;
  /** Connections the server holds right now, from its last event line. */
  open(): number;
}

/** Starts test/probe/idle-server in `host`; mode `never` never closes idle connections; `listen` `::` takes IPv6 too. */
export async function startIdleServer(
  host: Host,
  port: number,
  idleMs: number,
  mode: 'fin' | 'rst' | 'never',
  listen = '0.0.0.0',
): Promise<IdleServer> {
  const child = host.spawn(process.execPath, [IDLE_SERVER, String(port), String(idleMs), mode, listen]);
  let open = 0;
  const listening = new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`idle server exited with ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const e = JSON.parse(line) as { ev: string; open: number; port?: number };
      open = e.open;
      if (e.ev === 'listening') resolve(e.port!);
    });
  });
  return { child, port: await listening, open: () => open };
}

export interface ProbeRun {
  code: number | null;
  stdout: string;
  stderr: string;
  report?: ProbeReport;
  wallMs: number;
}

/** Runs `keepwire probe ARGS` in `host` (its own namespace, or this one for null); parses stdout as JSON when --json is given. */
export function runProbeCli(
  host: Where,
  args: string[],
  opts: { timeoutMs?: number; onSpawn?: (child: ChildProcess) => void } = {},
): Promise<ProbeRun> {
  const started = performance.now();
  const child = spawnIn(host, process.execPath, [CLI, 'probe', ...args]);
  opts.onSpawn?.(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`probe did not finish within ${opts.timeoutMs ?? 60_000} ms; stderr: ${stderr}`));
    }, opts.timeoutMs ?? 60_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      const run: ProbeRun = { code, stdout, stderr, wallMs: performance.now() - started };
      if (args.includes('--json') && stdout.trim().startsWith('{')) {
        try {
          run.report = JSON.parse(stdout) as ProbeReport;
        } catch {
          // Left undefined: the test's assertion on report shows stdout.
        }
      }
      resolve(run);
    });
  });
}

/** A one-line summary of a report for assertion messages. */
export function summary(run: ProbeRun): string {
  const r = run.report;
  if (!r) return `exit ${run.code}; stdout: ${run.stdout}; stderr: ${run.stderr}`;
  const { evidence, ...rest } = r;
  const used = evidence
    .filter((e) => e.usedAtMs !== undefined || e.outcome === 'fin' || e.outcome === 'rst-by-server')
    .map((e) => `${e.role}${e.round}:${e.plannedIdleMs ?? '-'}/${e.idleMs}:${e.outcome}`);
  return `${JSON.stringify(rest)}\nevidence: ${used.join(' ')}`;
}

/** The report of a run that exited 0 with a measured idle timeout (asserted). */
export function measured(run: ProbeRun): ProbeReport {
  const r = run.report;
  assert.ok(r, summary(run));
  assert.equal(run.code, 0, summary(run));
  assert.equal(r.verdict, 'measured', summary(run));
  return r;
}

/**
 * A middlebox (the namespace LB) measured at `seconds` ±1 s with `expiry`, the
 * server closing nothing, and every use that failed failing the LB's way.
 */
export function assertMiddlebox(run: ProbeRun, expiry: Expiry, seconds: number): ProbeReport {
  const r = measured(run);
  assert.equal(r.enforcedBy, 'middlebox', summary(run));
  assert.equal(r.expiry, expiry, summary(run));
  assert.equal(r.middlebox?.expiry, expiry, summary(run));
  assert.ok(
    Math.abs(r.idleTimeout!.estimateMs - seconds * 1000) <= 1000,
    `T ${r.idleTimeout!.estimateMs} ms is not within ±1 s of ${seconds} s\n${summary(run)}`,
  );
  assert.equal(r.server, null, `the server closes nothing, yet: ${summary(run)}`);
  for (const e of r.evidence) {
    if (e.role === 'grid' && e.usedAtMs !== undefined && e.outcome !== 'alive')
      assert.equal(e.outcome, expiry, summary(run));
  }
  return r;
}

/** The server's own idle close (`kind`) measured at `ms` ±1 s, and no middlebox on the path. */
export function assertServerClose(
  run: ProbeRun,
  ms: number,
  kind: 'fin' | 'rst-by-server' = 'fin',
): ProbeReport {
  const r = measured(run);
  assert.equal(r.enforcedBy, 'server', summary(run));
  assert.equal(r.expiry, kind, summary(run));
  assert.equal(r.server?.expiry, kind, summary(run));
  assert.equal(r.middlebox, null, `no middlebox on this path, yet: ${summary(run)}`);
  assert.ok(
    Math.abs(r.server!.idleCloseMs - ms) <= 1000,
    `server close not within ±1 s of ${ms}: ${summary(run)}`,
  );
  assert.ok(Math.abs(r.idleTimeout!.estimateMs - ms) <= 1000, summary(run));
  return r;
}

/**
 * Every answer a `--payload http` run recorded is a 200 with the connection
 * kept (or closed, when `keepAlive` is false), no HTTP note, and every
 * acknowledged use carries the answer as evidence.
 */
export function assertAnswers(run: ProbeRun, keepAlive = true): void {
  const http = run.report?.http;
  assert.ok(http, `no http summary: ${summary(run)}`);
  assert.deepEqual(
    http.answers.map((a) => [a.statusLine, a.status, a.keepAlive]),
    [['HTTP/1.1 200 OK', 200, keepAlive]],
    summary(run),
  );
  assert.ok(http.answers[0]!.connections >= 1, summary(run));
  // A server that closes at 2 s is often measured a few ms under 2 s, which
  // rightly gets the note that whole-second keepalive has no room: not an HTTP note.
  const notes = run.report!.notes.filter((n) => !n.includes('leaves no room for TCP keepalive'));
  assert.deepEqual(notes, [], summary(run));
  for (const e of run.report!.evidence)
    if (e.usedAtMs !== undefined && e.outcome === 'alive') assert.equal(e.http?.status, 200, summary(run));
}

/** Node's server saw only well-formed HEAD / requests with the Host the target was given as, and kept them alive. */
export function assertNodeSaw(server: HttpTarget, host: string, keepAlive = true): void {
  assert.ok(server.requests.length > 0, 'no request reached the server');
  assert.deepEqual(server.clientErrors, []);
  for (const r of server.requests)
    assert.deepEqual(
      {
        method: r.method,
        url: r.url,
        httpVersion: r.httpVersion,
        host: r.host,
        status: r.status,
        keepAlive: r.keepAlive,
      },
      { method: 'HEAD', url: '/', httpVersion: '1.1', host, status: 200, keepAlive },
    );
}

/** One request as test/probe/http-server saw and answered it. */
export interface HttpRequestSeen {
  method: string;
  url: string;
  httpVersion: string;
  host: string | null;
  status: number;
  /** Node kept the connection open after the answer. */
  keepAlive: boolean;
}

export interface HttpTarget {
  port: number;
  requests: HttpRequestSeen[];
  /** Requests Node's parser refused (clientError codes). */
  clientErrors: string[];
  stop(): void;
}

/** Starts Node's http server (test/probe/http-server) listening on `listen` (default `::`, both families); `connectionClose` answers with `Connection: close`. */
export async function startHttpServer(
  where: Where,
  opts: {
    port?: number;
    listen?: string;
    idleTimeoutMs?: number;
    connectionClose?: boolean;
    /** Node's `server.keepAliveTimeout`: idle after a response (Node's default 5000). */
    keepAliveTimeoutMs?: number;
  } = {},
): Promise<HttpTarget> {
  const child = spawnIn(where, process.execPath, [
    HTTP_SERVER,
    String(opts.port ?? 0),
    opts.listen ?? '::',
    String(opts.idleTimeoutMs ?? 0),
    opts.connectionClose ? 'close' : 'keep-alive',
    String(opts.keepAliveTimeoutMs ?? 5000),
  ]);
  const requests: HttpRequestSeen[] = [];
  const clientErrors: string[] = [];
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`http server exited with ${code}: ${stderr}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const e = JSON.parse(line) as { ev: string; port?: number; code?: string } & HttpRequestSeen;
      if (e.ev === 'listening') resolve(e.port!);
      else if (e.ev === 'client-error') clientErrors.push(e.code!);
      else if (e.ev === 'request') {
        const { ev: _ev, ...seen } = e;
        requests.push(seen);
      }
    });
  });
  return { port, requests, clientErrors, stop: () => child.kill('SIGKILL') };
}

export type NginxTarget = Pick<RunningNginx, 'accessLog' | 'stop'>;

/**
 * Debian's nginx in `host` (src/lab's starter), answering every request with
 * 200 on `port` over IPv4 and IPv6, its access log one line per request:
 * `request|status|Host header`, what the probe sent. Fresh connections that
 * send nothing are closed after `clientHeaderTimeout`, connections idle after
 * a response after `keepaliveTimeout` (default 75s): nginx's own idle closes,
 * FINs.
 */
export function startNginx(
  host: Host,
  opts: { port: number; clientHeaderTimeout: string; keepaliveTimeout?: string },
): Promise<NginxTarget> {
  return startLabNginx(host, {
    port: opts.port,
    server: `listen ${opts.port};
    listen [::]:${opts.port} ipv6only=on;
    client_header_timeout ${opts.clientHeaderTimeout};
    keepalive_timeout ${opts.keepaliveTimeout ?? '75s'};
    location / { return 200 "keepwire probe target\n"; }`,
    accessLogFormat: '$request|$status|$http_host',
    workerConnections: 1024,
    listeners: [`0.0.0.0:${opts.port}`, `[::]:${opts.port}`],
  });
}
