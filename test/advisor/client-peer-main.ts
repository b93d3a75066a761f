/**
 * One client (or the gRPC or HTTP/WebSocket server) of the preset tests in
 * test/advisor, run inside a namespace: `node client-peer-main.js '<json>'`.
 * A client makes one call, stays idle for `idleMs`, makes a second call on
 * what should be the same connection, and prints one JSON line: whether the
 * second call worked and whether it used the same connection (server-side
 * connection id: Redis CLIENT ID, Postgres backend pid, gRPC peer address,
 * the client port the HTTP or WebSocket server saw).
 */
import http from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createClient } from 'redis';
import { Pool } from 'undici';
import { WebSocket, WebSocketServer } from 'ws';
import {
  grpcChannelOptions,
  grpcServerOptions,
  httpAgentOptions,
  ioredisPreset,
  keepaliveFor,
  pgPreset,
  redisPreset,
  undiciPoolOptions,
  withKeepalive,
  wsPreset,
} from '../../src/index.js';

interface Job {
  kind:
    | 'redis'
    | 'node-redis'
    | 'pg-pool'
    | 'pg-client'
    | 'grpc'
    | 'grpc-server'
    | 'http-agent'
    | 'undici'
    | 'ws'
    | 'http-server';
  host: string;
  port: number;
  preset: boolean;
  lbIdle: number;
  idleMs: number;
}

export interface PeerResult {
  ok: boolean;
  first?: string;
  second?: string;
  error?: string;
}

const job = JSON.parse(process.argv[2] ?? '{}') as Job;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
const describe = (e: unknown) => {
  const err = e as { code?: string | number; message?: string };
  return `${err.code ?? ''} ${err.message ?? String(e)}`.trim();
};

async function twice(call: () => Promise<string>): Promise<PeerResult> {
  const first = await call();
  await sleep(job.idleMs);
  try {
    return { ok: true, first, second: await call() };
  } catch (error) {
    return { ok: false, first, error: describe(error) };
  }
}

const ECHO = {
  echo: {
    path: '/keepwire.test.Echo/Peer',
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
  },
} satisfies grpc.ServiceDefinition;

async function main(): Promise<PeerResult | undefined> {
  const lb = { lbIdle: job.lbIdle };
  switch (job.kind) {
    case 'redis': {
      const redis = new Redis({
        host: job.host,
        port: job.port,
        lazyConnect: true,
        // One connection, no silent reconnect or resend: a reset must show.
        retryStrategy: () => null,
        maxRetriesPerRequest: 0,
        enableOfflineQueue: false,
        autoResendUnfulfilledCommands: false,
        ...(job.preset ? ioredisPreset(lb) : {}),
      });
      redis.on('error', () => undefined);
      await redis.connect();
      const result = await twice(async () => String(await redis.client('ID')));
      redis.disconnect();
      return result;
    }
    case 'node-redis': {
      const redis = createClient({
        socket: {
          host: job.host,
          port: job.port,
          // One connection, no silent reconnect: a reset must show.
          reconnectStrategy: false,
          ...(job.preset ? redisPreset(lb).socket : {}),
        },
        disableOfflineQueue: true,
      });
      redis.on('error', () => undefined);
      await redis.connect();
      const result = await twice(async () => String(await redis.sendCommand(['CLIENT', 'ID'])));
      redis.destroy();
      return result;
    }
    case 'pg-pool': {
      const pool = new pg.Pool({
        host: job.host,
        port: job.port,
        user: 'postgres',
        database: 'postgres',
        max: 1,
        ...(job.preset ? pgPreset(lb) : {}),
      });
      pool.on('error', () => undefined);
      const result = await twice(async () =>
        String((await pool.query('select pg_backend_pid() as pid')).rows[0].pid),
      );
      await pool.end().catch(() => undefined);
      return result;
    }
    case 'pg-client': {
      // A client held outside any pool (LISTEN, a long transaction): only keepalive keeps it.
      const { idleTimeoutMillis: _, ...clientOptions } = pgPreset(lb);
      const client = new pg.Client({
        host: job.host,
        port: job.port,
        user: 'postgres',
        database: 'postgres',
        ...(job.preset ? clientOptions : {}),
      });
      client.on('error', () => undefined);
      await client.connect();
      const result = await twice(async () =>
        String((await client.query('select pg_backend_pid() as pid')).rows[0].pid),
      );
      await client.end().catch(() => undefined);
      return result;
    }
    case 'grpc': {
      const Echo = grpc.makeGenericClientConstructor(ECHO, 'Echo');
      const client = new Echo(
        `${job.host}:${job.port}`,
        grpc.credentials.createInsecure(),
        job.preset ? grpcChannelOptions(lb) : {},
      );
      const call = () =>
        new Promise<string>((resolve, reject) =>
          client.makeUnaryRequest(
            ECHO.echo.path,
            (b: Buffer) => b,
            (b: Buffer) => b,
            Buffer.from('x'),
            { deadline: Date.now() + 10_000 },
            (err: grpc.ServiceError | null, value?: Buffer) =>
              err ? reject(err) : resolve(value?.toString() ?? ''),
          ),
        );
      const result = await twice(call);
      client.close();
      return result;
    }
    case 'http-agent': {
      // Without the preset: a keep-alive agent whose TCP keepalive starts after a minute, longer
      // than the LB idle (scaled down here to 3 s, the minute stands for the 30-60 s defaults of
      // ioredis, node-redis and undici; Node's own keepAliveMsecs of 1 s cannot be scaled down).
      const agent = job.preset
        ? withKeepalive(new http.Agent(httpAgentOptions(lb)), keepaliveFor(lb))
        : new http.Agent({ keepAlive: true, keepAliveMsecs: 60_000 });
      const get = () =>
        new Promise<string>((resolve, reject) => {
          const req = http.get({ host: job.host, port: job.port, path: '/', agent }, (res) => {
            let body = '';
            res.on('data', (c: Buffer) => {
              body += c.toString();
            });
            res.on('end', () => resolve(body));
            res.on('error', reject);
          });
          req.on('error', reject);
          req.setTimeout(10_000, () => req.destroy(new Error('no answer in 10 s')));
        });
      const result = await twice(get);
      agent.destroy();
      return result;
    }
    case 'undici': {
      // Without the preset: undici's defaults, which follow the server's `Keep-Alive: timeout=60`
      // hint (a pooled connection kept ~58 s) and start TCP keepalive after 60 s.
      const pool = new Pool(`http://${job.host}:${job.port}`, job.preset ? undiciPoolOptions(lb) : {});
      const get = async () => {
        const res = await pool.request({
          path: '/',
          method: 'GET',
          headersTimeout: 10_000,
          bodyTimeout: 10_000,
        });
        return await res.body.text();
      };
      const result = await twice(get);
      await pool.destroy().catch(() => undefined);
      return result;
    }
    case 'ws': {
      const ws = new WebSocket(`ws://${job.host}:${job.port}/`);
      ws.on('error', () => undefined);
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      // The heartbeat wsPreset describes (ws has none of its own): a ping every pingIntervalMs,
      // terminate when no pong came within pongTimeoutMs.
      let heartbeat: NodeJS.Timeout | undefined;
      if (job.preset) {
        const { pingIntervalMs, pongTimeoutMs } = wsPreset(lb);
        let pongDeadline: NodeJS.Timeout | undefined;
        ws.on('pong', () => {
          clearTimeout(pongDeadline);
          pongDeadline = undefined;
        });
        heartbeat = setInterval(() => {
          ws.ping();
          pongDeadline ??= setTimeout(() => ws.terminate(), pongTimeoutMs);
        }, pingIntervalMs);
        ws.once('close', () => {
          clearInterval(heartbeat);
          clearTimeout(pongDeadline);
        });
      }
      const call = () =>
        new Promise<string>((resolve, reject) => {
          const done = (fn: () => void) => {
            clearTimeout(timer);
            ws.off('message', onMessage);
            ws.off('close', onClose);
            ws.off('error', onError);
            fn();
          };
          const onMessage = (data: Buffer) => done(() => resolve(data.toString()));
          const onClose = (code: number) => done(() => reject(new Error(`closed with code ${code}`)));
          const onError = (error: Error) => done(() => reject(error));
          const timer = setTimeout(() => done(() => reject(new Error('no answer in 10 s'))), 10_000);
          ws.on('message', onMessage);
          ws.on('close', onClose);
          ws.on('error', onError);
          ws.send('x');
        });
      const result = await twice(call);
      clearInterval(heartbeat);
      ws.terminate();
      return result;
    }
    case 'http-server': {
      // A server behind an ALB-like LB as people configure it (idle connections kept 60 s, said
      // in `Keep-Alive: timeout=60`), no TCP keepalive of its own: only the client can keep the
      // connection known to the LB. Answers with the client's port: the same port, the same
      // connection. The WebSocket server echoes the same way and never pings.
      const server = http.createServer((req, res) => res.end(String(req.socket.remotePort)));
      server.keepAliveTimeout = 60_000;
      server.headersTimeout = 61_000;
      const wss = new WebSocketServer({ server });
      wss.on('connection', (ws, req) => {
        const port = String(req.socket.remotePort);
        ws.on('message', () => ws.send(port));
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(job.port, job.host, () => resolve());
      });
      say({ listening: true });
      return undefined;
    }
    case 'grpc-server': {
      const server = new grpc.Server(job.preset ? grpcServerOptions(lb) : {});
      // The answer is the caller's address: the same port twice means the same TCP connection.
      server.addService(ECHO, {
        echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
          cb(null, Buffer.from(call.getPeer())),
      });
      await new Promise<void>((resolve, reject) =>
        server.bindAsync(`${job.host}:${job.port}`, grpc.ServerCredentials.createInsecure(), (err) =>
          err ? reject(err) : resolve(),
        ),
      );
      say({ listening: true });
      return undefined;
    }
  }
}

main().then(
  (result) => {
    if (result) {
      say(result);
      process.exit(0);
    }
  },
  (error) => {
    say({ ok: false, error: `setup: ${describe(error)}` });
    process.exit(1);
  },
);
