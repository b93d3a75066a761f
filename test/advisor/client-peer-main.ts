/**
 * One client (or the gRPC server) of test/advisor/client-presets.test.ts,
 * run inside a namespace: `node client-peer-main.js '<json>'`. A client
 * makes one call, stays idle for `idleMs`, makes a second call on what
 * should be the same connection, and prints one JSON line: whether the
 * second call worked and whether it used the same connection (server-side
 * connection id: Redis CLIENT ID, Postgres backend pid, gRPC peer address).
 */
import * as grpc from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import pg from 'pg';
import { grpcChannelOptions, grpcServerOptions, ioredisPreset, pgPreset } from '../../src/index.js';

interface Job {
  kind: 'redis' | 'pg-pool' | 'pg-client' | 'grpc' | 'grpc-server';
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
