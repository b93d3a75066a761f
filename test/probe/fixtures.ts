/**
 * Shared set-up for the probe tests: a namespace topology with a server in the
 * backend, and the probe CLI run inside the client namespace as a user would.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Host, LbTopology } from '../../src/netns/index.js';
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
  opts: { port?: number; listen?: string; idleTimeoutMs?: number; connectionClose?: boolean } = {},
): Promise<HttpTarget> {
  const child = spawnIn(where, process.execPath, [
    HTTP_SERVER,
    String(opts.port ?? 0),
    opts.listen ?? '::',
    String(opts.idleTimeoutMs ?? 0),
    opts.connectionClose ? 'close' : 'keep-alive',
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

export interface NginxTarget {
  /** One line per request: `request|status|Host header`. */
  accessLog(): string[];
  stop(): void;
}

/**
 * Debian's nginx in `host`, answering every request with 200 on `port` over
 * IPv4 and IPv6, with a log format that shows what the probe sent. Fresh
 * connections that send nothing are closed after `clientHeaderTimeout` (nginx's
 * own idle close, a FIN).
 */
export async function startNginx(
  host: Host,
  opts: { port: number; clientHeaderTimeout: string },
): Promise<NginxTarget> {
  const dir = mkdtempSync(join(tmpdir(), 'keepwire-probe-nginx-'));
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 1024; }
http {
  log_format probe '$request|$status|$http_host';
  access_log ${dir}/access.log probe;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen ${opts.port};
    listen [::]:${opts.port} ipv6only=on;
    client_header_timeout ${opts.clientHeaderTimeout};
    keepalive_timeout 75s;
    location / { return 200 "keepwire probe target\n"; }
  }
}
`,
  );
  const child = host.spawn('nginx', ['-p', dir, '-c', conf]);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const stop = () => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  const accessLog = () => {
    try {
      return readFileSync(join(dir, 'access.log'), 'utf8').split('\n').filter(Boolean);
    } catch {
      return [];
    }
  };
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    const { stdout } = await host.exec('ss', ['-Hltn']);
    if (stdout.includes(`[::]:${opts.port} `) && stdout.includes(`0.0.0.0:${opts.port} `))
      return { accessLog, stop };
    await new Promise((r) => setTimeout(r, 100));
  }
  stop();
  throw new Error(`nginx did not start in ${host.name}: ${stderr.trim() || 'no listener after 10s'}`);
}

/**
 * IPv6 beside the IPv4 of a createLbTopology (src/netns has IPv4 only): the
 * same shape from 2001:2::/48 (RFC 5180, for benchmarking, never routed),
 * forwarding on in the lb, the VIP on its loopback and DNATed to the backend
 * by an ip6 nftables table, and with `drop` expiry an ip6 table dropping
 * `ct state invalid` as the IPv4 one does. Conntrack's established timeout is
 * one sysctl for both families, so the LB idle timer is the same.
 */
export const LB6_ADDRESSES = {
  client: '2001:2:0:1::2',
  lbClientSide: '2001:2:0:1::1',
  lbBackendSide: '2001:2:0:2::1',
  backend: '2001:2:0:2::2',
  vip: '2001:2::100',
} as const;

export async function addIpv6(lb: LbTopology): Promise<typeof LB6_ADDRESSES> {
  const a = LB6_ADDRESSES;
  // nodad: the addresses are usable at once instead of after duplicate address detection.
  await lb.client.exec('ip', ['-6', 'addr', 'add', `${a.client}/64`, 'dev', 'eth0', 'nodad']);
  await lb.lb.exec('ip', ['-6', 'addr', 'add', `${a.lbClientSide}/64`, 'dev', 'toclient', 'nodad']);
  await lb.lb.exec('ip', ['-6', 'addr', 'add', `${a.lbBackendSide}/64`, 'dev', 'tobackend', 'nodad']);
  await lb.backend.exec('ip', ['-6', 'addr', 'add', `${a.backend}/64`, 'dev', 'eth0', 'nodad']);
  await lb.lb.exec('ip', ['-6', 'addr', 'add', `${a.vip}/128`, 'dev', 'lo']);
  await lb.lb.sysctl('net.ipv6.conf.all.forwarding', 1);
  await lb.client.exec('ip', ['-6', 'route', 'add', 'default', 'via', a.lbClientSide]);
  await lb.backend.exec('ip', ['-6', 'route', 'add', 'default', 'via', a.lbBackendSide]);
  await lb.lb.nft(`
table ip6 keepwire_lb6 {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    ip6 daddr ${a.vip} dnat to ${a.backend}
  }
}
${
  lb.expiry === 'drop'
    ? `table ip6 keepwire_lb6_drop {
  chain input {
    type filter hook input priority filter; policy accept;
    ct state invalid drop
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    ct state invalid drop
  }
}`
    : ''
}`);
  // Link-local addresses (neighbour discovery's source) finish their own DAD within about a second.
  const deadline = Date.now() + 5000;
  for (const host of [lb.client, lb.lb, lb.backend]) {
    while ((await host.exec('ip', ['-6', 'addr', 'show', 'tentative'])).stdout.trim() !== '') {
      if (Date.now() > deadline) throw new Error(`${host.name}: IPv6 addresses still tentative after 5 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return a;
}
