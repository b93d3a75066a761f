/**
 * Real gRPC peers for the grpc_pass tests: `@grpc/grpc-js` servers and
 * clients over a service of raw-bytes messages (no .proto: the methods'
 * serializers are the identity), keepwire started from config text. Every
 * wait is bounded.
 */
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { parseConfigText } from '../../../src/config/index.js';
import type { GrpcUpstreamRecord } from '../../../src/proxy/http/log.js';
import { type RunningHttp, startHttp } from '../http/fixtures.js';

const id = (b: Buffer) => b;

function method(name: string, requestStream: boolean, responseStream: boolean) {
  return {
    path: `/keepwire.test.Echo/${name}`,
    requestStream,
    responseStream,
    requestSerialize: id,
    requestDeserialize: id,
    responseSerialize: id,
    responseDeserialize: id,
  };
}

/** The test service: Unary, ServerStream, ClientStream, Bidi; messages are bytes. */
export const ECHO = {
  unary: method('Unary', false, false),
  serverStream: method('ServerStream', false, true),
  clientStream: method('ClientStream', true, false),
  bidi: method('Bidi', true, true),
} satisfies grpc.ServiceDefinition;

export type EchoHandlers = Partial<{
  unary: grpc.handleUnaryCall<Buffer, Buffer>;
  serverStream: grpc.handleServerStreamingCall<Buffer, Buffer>;
  clientStream: grpc.handleClientStreamingCall<Buffer, Buffer>;
  bidi: grpc.handleBidiStreamingCall<Buffer, Buffer>;
}>;

export const EchoClient = grpc.makeGenericClientConstructor(ECHO, 'Echo');
export type EchoClientT = InstanceType<typeof EchoClient> & {
  unary: (
    req: Buffer,
    md: grpc.Metadata,
    opts: grpc.CallOptions,
    cb: (e: grpc.ServiceError | null, r?: Buffer) => void,
  ) => grpc.ClientUnaryCall;
  serverStream: (
    req: Buffer,
    md: grpc.Metadata,
    opts?: grpc.CallOptions,
  ) => grpc.ClientReadableStream<Buffer>;
  clientStream: (
    md: grpc.Metadata,
    opts: grpc.CallOptions,
    cb: (e: grpc.ServiceError | null, r?: Buffer) => void,
  ) => grpc.ClientWritableStream<Buffer>;
  bidi: (md: grpc.Metadata, opts?: grpc.CallOptions) => grpc.ClientDuplexStream<Buffer, Buffer>;
};

export interface GrpcServer {
  server: grpc.Server;
  port: number;
  close(): Promise<void>;
}

/** A grpc-js server on 127.0.0.1 (insecure) with the Echo handlers given. */
export async function startGrpcServer(
  handlers: EchoHandlers,
  options: grpc.ServerOptions = {},
): Promise<GrpcServer> {
  const server = new grpc.Server(options);
  const unimplemented = (_call: unknown, cb: (e: grpc.ServiceError) => void) =>
    cb({ code: grpc.status.UNIMPLEMENTED } as grpc.ServiceError);
  server.addService(ECHO, {
    unary: handlers.unary ?? unimplemented,
    serverStream: handlers.serverStream ?? ((call: grpc.ServerWritableStream<Buffer, Buffer>) => call.end()),
    clientStream: handlers.clientStream ?? unimplemented,
    bidi: handlers.bidi ?? ((call: grpc.ServerDuplexStream<Buffer, Buffer>) => call.end()),
  } as grpc.UntypedServiceImplementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      }),
  };
}

/** A grpc-js client of the Echo service at `port` (h2c). */
export function echoClient(port: number, options: grpc.ChannelOptions = {}): EchoClientT {
  return new EchoClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), options) as EchoClientT;
}

/** A unary call, resolved with the reply, metadata and status (never rejects: errors are statuses). */
export function unaryCall(
  client: EchoClientT,
  body: Buffer,
  md = new grpc.Metadata(),
  deadlineMs = 20_000,
): Promise<{
  error: grpc.ServiceError | null;
  reply?: Buffer;
  metadata?: grpc.Metadata;
  status: grpc.StatusObject;
}> {
  return new Promise((resolve) => {
    let metadata: grpc.Metadata | undefined;
    let result: { error: grpc.ServiceError | null; reply?: Buffer } | undefined;
    let status: grpc.StatusObject | undefined;
    const done = () => {
      if (result && status) resolve({ ...result, status, ...(metadata ? { metadata } : {}) });
    };
    const call = client.unary(body, md, { deadline: Date.now() + deadlineMs }, (error, reply) => {
      result = { error, ...(reply ? { reply } : {}) };
      done();
    });
    call.on('metadata', (m) => {
      metadata = m;
    });
    call.on('status', (s) => {
      status = s;
      done();
    });
  });
}

export async function startKeepwire(text: string): Promise<RunningHttp> {
  const parsed = parseConfigText(text, 'grpc.conf');
  assert.deepEqual(
    parsed.diagnostics.filter((d) => d.severity === 'error'),
    [],
  );
  return startHttp(parsed.config!);
}

export function grpcRecords(lb: RunningHttp): GrpcUpstreamRecord[] {
  return lb.records.filter(
    (r): r is GrpcUpstreamRecord => r.msg === 'grpc_ping_timeout' || r.msg === 'grpc_too_many_pings',
  );
}
