/**
 * Shared by the client preset tests: the real servers and libraries, behind the
 * lab's LVS-like LB (conntrack idle timer 3 s, reset at expiry): a Redis
 * server, a Postgres server, a gRPC server and a Node HTTP/WebSocket server in
 * the backend namespace, the clients (ioredis, node-redis, pg, @grpc/grpc-js,
 * http.Agent, undici, ws) in the client namespace. Each client
 * makes a call, stays idle 6 s (twice the LB idle), and calls again. Without
 * the preset the LB has forgotten the connection and the second call is
 * reset; with it the same connection (same Redis client id, same Postgres
 * backend, same gRPC peer port) answers, or for a pool, the pool has
 * replaced it before the LB forgot it.
 */
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createLbTopology, type Host, hasCommand, type LbTopology } from '../../src/netns/index.js';
import { requireNetns } from '../require-netns.js';
import type { PeerResult } from './client-peer-main.js';

export const LB_IDLE_S = 3;
export const IDLE_MS = 6_000;
const PEER = fileURLToPath(new URL('./client-peer-main.js', import.meta.url));
/** Debian's newest installed PostgreSQL server binaries (15 on bookworm). */
const PG_BIN = (() => {
  try {
    const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a));
    return `/usr/lib/postgresql/${versions[0] ?? '15'}/bin`;
  } catch {
    return '/usr/lib/postgresql/15/bin';
  }
})();
export const PORTS = { redis: 6379, pg: 5432, grpc: 50051, grpcPreset: 50052, http: 8080 } as const;

/** The first JSON line a process prints (bounded), and the process. */
function firstLine(child: ChildProcess, what: string, ms: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms; ${stderr}`)), ms);
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(line) as Record<string, unknown>);
      } catch {
        reject(new Error(`${what}: ${line}`));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      setImmediate(() => reject(new Error(`${what} exited ${code}: ${stderr}`)));
    });
  });
}

function peer(host: Host, job: object): ChildProcess {
  return host.spawn(process.execPath, [PEER, JSON.stringify(job)]);
}

export async function client(
  lb: LbTopology,
  kind: string,
  port: number,
  preset: boolean,
): Promise<PeerResult> {
  const child = peer(lb.client, { kind, host: lb.vip, port, preset, lbIdle: LB_IDLE_S, idleMs: IDLE_MS });
  return (await firstLine(child, `${kind} client`, IDLE_MS + 60_000)) as unknown as PeerResult;
}

/** Waits until `cmd` succeeds in `host` (a server accepting), bounded. */
async function until(host: Host, cmd: string, args: string[], what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await host.exec(cmd, args);
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`${what} not ready in 30 s: ${(error as Error).message}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Stops a server process and waits for it (SIGKILL after 10 s). */
async function stop(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

export interface Backends {
  lb?: LbTopology;
  /** Why the tests skip (no namespaces, a server missing), else ''. */
  skip: string;
  stop(): Promise<void>;
}

/**
 * The LB topology with the servers the tests ask for in its backend namespace;
 * `skip` says why there is none (under CI=true a missing piece throws instead).
 */
export async function startBackends(
  t: TestContext,
  want: { redis?: boolean; postgres?: boolean; grpc?: boolean; http?: boolean },
): Promise<Backends> {
  let lb: LbTopology | undefined;
  let dir = '';
  let redis: ChildProcess | undefined;
  let postgres: ChildProcess | undefined;
  const backends: Backends = {
    skip: '',
    stop: async () => {
      await stop(postgres, 'SIGINT');
      await stop(redis, 'SIGTERM');
      await lb?.destroy();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    if (!requireNetns(t as never)) {
      backends.skip = 'no namespaces';
      return backends;
    }
    const needed = [
      ...(want.redis ? ['redis-server', 'redis-cli'] : []),
      ...(want.postgres ? [`${PG_BIN}/postgres`, 'setpriv'] : []),
    ];
    for (const cmd of needed) {
      if (cmd.startsWith('/') ? !existsSync(cmd) : !hasCommand(cmd)) {
        if (process.env.CI === 'true') throw new Error(`CI=true: ${cmd} missing (scripts/system-deps.sh)`);
        backends.skip = `${cmd} missing`;
        return backends;
      }
    }
    lb = await createLbTopology({ lbIdleSeconds: LB_IDLE_S, expiry: 'rst' });
    const backend = lb.backend;
    if (want.redis) {
      // Redis: no server-side keepalive (default 300 s would not matter in 6 s anyway), no persistence.
      redis = backend.spawn('redis-server', [
        '--port',
        String(PORTS.redis),
        '--bind',
        '0.0.0.0',
        '--protected-mode',
        'no',
        '--save',
        '',
        '--appendonly',
        'no',
        '--tcp-keepalive',
        '0',
      ]);
      await until(backend, 'redis-cli', ['-p', String(PORTS.redis), 'ping'], 'redis-server');
    }
    if (want.postgres) {
      // Postgres refuses to run as root: its own cluster in a temp dir, owned by and run as `postgres`.
      dir = mkdtempSync(join(tmpdir(), 'kw-advisor-pg-'));
      chmodSync(dir, 0o700);
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
      const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
      chownSync(dir, uid, gid);
      const data = join(dir, 'data');
      const asPostgres = ['--reuid', String(uid), '--regid', String(gid), '--clear-groups'];
      execFileSync(
        'setpriv',
        [...asPostgres, `${PG_BIN}/initdb`, '-D', data, '-U', 'postgres', '--auth=trust', '-N'],
        {
          cwd: dir,
          stdio: 'pipe',
        },
      );
      appendFileSync(join(data, 'pg_hba.conf'), 'host all all 0.0.0.0/0 trust\n');
      postgres = backend.spawn(
        'setpriv',
        [
          ...asPostgres,
          `${PG_BIN}/postgres`,
          '-D',
          data,
          '-k',
          dir,
          '-p',
          String(PORTS.pg),
          '-c',
          'listen_addresses=*',
          '-c',
          'fsync=off',
          '-c',
          'tcp_keepalives_idle=0',
        ],
        { cwd: dir },
      );
      await until(backend, `${PG_BIN}/pg_isready`, ['-h', '127.0.0.1', '-p', String(PORTS.pg)], 'postgres');
    }
    if (want.grpc) {
      // Two gRPC servers: one with no options (it never pings), one with grpcServerOptions.
      await Promise.all(
        [
          [PORTS.grpc, false],
          [PORTS.grpcPreset, true],
        ].map(([port, preset]) =>
          firstLine(
            peer(backend, {
              kind: 'grpc-server',
              host: '0.0.0.0',
              port,
              preset,
              lbIdle: LB_IDLE_S,
              idleMs: 0,
            }),
            `grpc server ${port}`,
            30_000,
          ),
        ),
      );
    }
    if (want.http) {
      await firstLine(
        peer(backend, {
          kind: 'http-server',
          host: '0.0.0.0',
          port: PORTS.http,
          preset: false,
          lbIdle: LB_IDLE_S,
          idleMs: 0,
        }),
        'http server',
        30_000,
      );
    }
    backends.lb = lb;
    return backends;
  } catch (error) {
    await backends.stop();
    throw error;
  }
}
