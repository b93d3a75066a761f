/**
 * What a gRPC client is told when the upstream fails, as Envoy tells it
 * (src/proxy/grpc/status.ts): no server to connect to → UNAVAILABLE in a
 * trailers-only response; grpc_read_timeout → DEADLINE_EXCEEDED (trailers
 * after the messages already passed, at a message boundary); an upstream
 * RST_STREAM after the response began → the client's stream is reset (never
 * a silent truncation), logged with the reason; before it → UNAVAILABLE.
 */
import assert from 'node:assert/strict';
import {
  type ClientHttp2Session,
  constants,
  createServer as createH2Server,
  type Http2Server,
  connect as h2connect,
  type ServerHttp2Stream,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { closedPort } from '../fixtures.js';
import type { RunningHttp } from '../http/fixtures.js';
import {
  type EchoClientT,
  echoClient,
  type GrpcServer,
  startGrpcServer,
  startKeepwire,
  unaryCall,
} from './fixtures.js';

/** A gRPC length-prefixed message. */
function message(payload: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

describe('grpc_pass: upstream failures become gRPC statuses', () => {
  let up: GrpcServer;
  let raw: Http2Server;
  let lb: RunningHttp;
  let client: EchoClientT;
  const held: (() => void)[] = [];

  before(async () => {
    up = await startGrpcServer({
      // Never answers until the test ends: only grpc_read_timeout can end the call.
      unary: (_call, cb) => held.push(() => cb(null, Buffer.from('late'))),
      serverStream: (call) => {
        call.write(Buffer.from('first'));
        held.push(() => call.end());
      },
    });
    // A raw HTTP/2 upstream that resets its streams: after part of a response, or before any.
    raw = createH2Server();
    raw.on('stream', (stream: ServerHttp2Stream, headers) => {
      stream.on('error', () => {});
      if (String(headers[':path']).endsWith('/ServerStream')) {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
        stream.write(message(Buffer.from('whole')));
        // Half a message, then RST_STREAM INTERNAL_ERROR (destroy: close() would end the stream first).
        stream.write(message(Buffer.alloc(1000, 7)).subarray(0, 300), () =>
          setTimeout(() => stream.destroy(new Error('cut')), 200),
        );
      } else stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    });
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    const rawPort = (raw.address() as AddressInfo).port;
    const down = await closedPort();
    const port = await closedPort();
    lb = await startKeepwire(`
      http {
        server {
          listen 127.0.0.1:${port};
          http2 on;
          location /down/ { grpc_pass grpc://127.0.0.1:${down}; }
          location /keepwire.test.Echo/ { grpc_pass grpc://127.0.0.1:${up.port}; grpc_read_timeout 1s; }
          location /raw/ { grpc_pass 127.0.0.1:${rawPort}; }
        }
      }`);
    client = echoClient(port);
  });

  after(async () => {
    for (const release of held) release();
    client?.close();
    await lb?.close();
    await up?.close();
    await new Promise((resolve) => raw?.close(resolve));
  });

  function rawCall(path: string): Promise<{
    session: ClientHttp2Session;
    status?: number;
    rstCode: number;
    trailers: boolean;
    headers?: Record<string, unknown>;
    body: Buffer;
  }> {
    return new Promise((resolve, reject) => {
      const session = h2connect(`http://127.0.0.1:${lb.port}`);
      session.on('error', reject);
      const stream = session.request({
        ':method': 'POST',
        ':path': path,
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      stream.end(message(Buffer.from('x')));
      let headers: Record<string, unknown> | undefined;
      let trailers = false;
      const chunks: Buffer[] = [];
      stream.on('response', (h) => {
        headers = h;
      });
      stream.on('trailers', () => {
        trailers = true;
      });
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('error', () => {});
      const timer = setTimeout(() => reject(new Error(`no end of ${path} in 20 s`)), 20_000);
      stream.on('close', () => {
        clearTimeout(timer);
        resolve({
          session,
          rstCode: stream.rstCode ?? 0,
          trailers,
          ...(headers ? { headers, status: Number(headers[':status']) } : {}),
          body: Buffer.concat(chunks),
        });
      });
    });
  }

  it('a server that refuses connections: UNAVAILABLE (14), trailers-only HTTP 200, the reason in grpc-message', async () => {
    const r = await rawCall('/down/x.Y/Z');
    r.session.close();
    assert.equal(r.status, 200);
    assert.equal(r.headers?.['grpc-status'], '14');
    assert.match(String(r.headers?.['grpc-message']), /connect failed: ECONNREFUSED/);
    assert.equal(r.rstCode, constants.NGHTTP2_NO_ERROR);
    // Trailers-only: the status is in the one HEADERS frame, no DATA.
    assert.equal(r.body.length, 0);
    const rec = (await lb.waitForRequests(1)).find((x) => x.path === '/down/x.Y/Z')!;
    assert.equal(rec.grpcStatus, 14);
    assert.equal(rec.reason, 'connect_failed');
    assert.equal(rec.status, 200);
  });

  it('grpc_read_timeout before the response: DEADLINE_EXCEEDED (4), not UNAVAILABLE', async () => {
    const t0 = Date.now();
    const r = await unaryCall(client, Buffer.from('x'));
    const ms = Date.now() - t0;
    assert.equal(r.error?.code, grpc.status.DEADLINE_EXCEEDED);
    assert.match(r.error?.details ?? '', /grpc_read_timeout \(1000 ms\)/);
    // keepwire's 1 s, not the client's 20 s deadline.
    assert.ok(ms >= 900 && ms < 15_000, `${ms} ms`);
    const rec = lb.requests().find((x) => x.path === '/keepwire.test.Echo/Unary')!;
    assert.equal(rec.reason, 'upstream_timeout');
    assert.equal(rec.grpcStatus, 4);
  });

  it('grpc_read_timeout mid-stream at a message boundary: the messages so far, then DEADLINE_EXCEEDED trailers', async () => {
    const call = client.serverStream(Buffer.from('x'), new grpc.Metadata(), {
      deadline: Date.now() + 20_000,
    });
    const got: string[] = [];
    call.on('data', (b: Buffer) => got.push(b.toString()));
    call.on('error', () => {});
    const status = await new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    assert.deepEqual(got, ['first']);
    assert.equal(status.code, grpc.status.DEADLINE_EXCEEDED);
    assert.match(status.details, /grpc_read_timeout/);
  });

  it('an upstream RST_STREAM mid-message resets the client stream; the reason is logged', async () => {
    const r = await rawCall('/raw/keepwire.test.Echo/ServerStream');
    r.session.close();
    assert.equal(r.status, 200);
    assert.equal(r.trailers, false, 'no trailers: the stream was reset, not ended');
    assert.notEqual(r.rstCode, constants.NGHTTP2_NO_ERROR);
    // The whole first message and part of the second passed before the reset.
    assert.ok(r.body.length > 10 && r.body.length < 5 + 5 + 5 + 1000, String(r.body.length));
    const rec = (await lb.waitForRequests(4)).find((x) => x.path === '/raw/keepwire.test.Echo/ServerStream')!;
    assert.equal(rec.reason, 'upstream_reset');
    assert.match(rec.detail ?? '', /RST_STREAM INTERNAL_ERROR \(2\) during the response/);
    assert.equal(rec.grpcStatus, undefined);
  });

  it('an upstream RST_STREAM before the response: UNAVAILABLE', async () => {
    const r = await rawCall('/raw/keepwire.test.Echo/Unary');
    r.session.close();
    assert.equal(r.headers?.['grpc-status'], '14');
    assert.match(String(r.headers?.['grpc-message']), /RST_STREAM INTERNAL_ERROR \(2\) before the response/);
  });
});

describe('grpc_pass next upstream: a call that reached no server goes to the next one (the one attempt loop)', () => {
  let up: GrpcServer;
  let lb: RunningHttp;
  let client: EchoClientT;

  before(async () => {
    up = await startGrpcServer({ unary: (call, cb) => cb(null, call.request) });
    const down = await closedPort();
    const port = await closedPort();
    lb = await startKeepwire(`
      http {
        upstream pair { server 127.0.0.1:${down}; server 127.0.0.1:${up.port}; }
        server {
          listen 127.0.0.1:${port};
          http2 on;
          location /keepwire.test.Echo/ { grpc_pass grpc://pair; }
        }
      }`);
    client = echoClient(port);
  });

  after(async () => {
    client?.close();
    await lb?.close();
    await up?.close();
  });

  it('the refused server is skipped: the call is answered, logged with 2 tries and an upstream_retry line', async () => {
    const r = await unaryCall(client, Buffer.from('again'));
    assert.equal(r.error, null);
    assert.equal(r.reply?.toString(), 'again');
    const rec = (await lb.waitForRequests(1))[0]!;
    assert.equal(rec.tries, 2);
    assert.equal(rec.retries, 1);
    assert.equal(rec.grpcStatus, 0);
    assert.equal(rec.upstream, `127.0.0.1:${up.port}`);
    const retry = lb.retries()[0]!;
    assert.equal(retry.kind, 'next_upstream');
    assert.match(retry.detail, /connect failed: ECONNREFUSED/);
  });
});
