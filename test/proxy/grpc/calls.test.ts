/**
 * grpc_pass carries every kind of gRPC call between real grpc-js peers
 * (client → keepwire over h2c → grpc-js server over HTTP/2): unary,
 * server-streaming, client-streaming and bidi, with request metadata,
 * response metadata and the server's trailers (grpc-status, grpc-message,
 * custom trailing metadata) intact, and one access line per call with its
 * protocol and grpc status.
 */
import assert from 'node:assert/strict';
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

describe('grpc_pass: the four kinds of call, metadata and trailers intact', () => {
  let up: GrpcServer;
  let lb: RunningHttp;
  let client: EchoClientT;

  before(async () => {
    up = await startGrpcServer({
      unary: (call, cb) => {
        const md = new grpc.Metadata();
        md.set('x-seen-tenant', String(call.metadata.get('x-tenant')[0] ?? ''));
        call.sendMetadata(md);
        if (call.request.toString() === 'fail') {
          const trailing = new grpc.Metadata();
          trailing.set('x-why', 'asked to');
          cb({
            code: grpc.status.FAILED_PRECONDITION,
            details: 'failing as asked',
            metadata: trailing,
          } as grpc.ServiceError);
          return;
        }
        const trailing = new grpc.Metadata();
        trailing.set('x-trailer', 'end');
        cb(null, Buffer.concat([Buffer.from('echo:'), call.request]), trailing);
      },
      serverStream: (call) => {
        const n = Number(call.request.toString());
        for (let i = 0; i < n; i++) call.write(Buffer.from(`m${i}`));
        const trailing = new grpc.Metadata();
        trailing.set('x-count', String(n));
        call.end(trailing);
      },
      clientStream: (call, cb) => {
        const parts: string[] = [];
        call.on('data', (b: Buffer) => parts.push(b.toString()));
        call.on('end', () => cb(null, Buffer.from(parts.join('+'))));
      },
      bidi: (call) => {
        call.on('data', (b: Buffer) => call.write(Buffer.from(`re:${b.toString()}`)));
        call.on('end', () => call.end());
      },
    });
    const port = await closedPort();
    lb = await startKeepwire(`
      http {
        upstream echo { server 127.0.0.1:${up.port}; keepalive_timeout 30s; }
        server {
          listen 127.0.0.1:${port};
          http2 on;
          location / { grpc_pass grpc://echo; }
        }
      }`);
    client = echoClient(port);
  });

  after(async () => {
    client?.close();
    await lb?.close();
    await up?.close();
  });

  it('unary: reply, response metadata, trailers and request metadata pass through', async () => {
    const md = new grpc.Metadata();
    md.set('x-tenant', 'blue');
    const r = await unaryCall(client, Buffer.from('hello'), md);
    assert.equal(r.error, null);
    assert.equal(r.reply?.toString(), 'echo:hello');
    assert.equal(r.metadata?.get('x-seen-tenant')[0], 'blue');
    assert.equal(r.status.code, grpc.status.OK);
    assert.equal(r.status.metadata.get('x-trailer')[0], 'end');
  });

  it("unary: the server's error status, message and trailing metadata reach the client", async () => {
    const r = await unaryCall(client, Buffer.from('fail'));
    assert.equal(r.error?.code, grpc.status.FAILED_PRECONDITION);
    assert.equal(r.error?.details, 'failing as asked');
    assert.equal(r.status.metadata.get('x-why')[0], 'asked to');
  });

  it('server streaming: every message in order, then the trailers', async () => {
    const call = client.serverStream(Buffer.from('50'), new grpc.Metadata(), {
      deadline: Date.now() + 20_000,
    });
    const got: string[] = [];
    call.on('data', (b: Buffer) => got.push(b.toString()));
    const status = await new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    assert.equal(status.code, grpc.status.OK);
    assert.equal(got.length, 50);
    assert.deepEqual(got.slice(0, 3), ['m0', 'm1', 'm2']);
    assert.equal(got[49], 'm49');
    assert.equal(status.metadata.get('x-count')[0], '50');
  });

  it('client streaming: the messages reach the server, its one reply comes back', async () => {
    const reply = await new Promise<Buffer | undefined>((resolve, reject) => {
      const call = client.clientStream(new grpc.Metadata(), { deadline: Date.now() + 20_000 }, (e, r) =>
        e ? reject(e) : resolve(r),
      );
      for (const s of ['a', 'b', 'c']) call.write(Buffer.from(s));
      call.end();
    });
    assert.equal(reply?.toString(), 'a+b+c');
  });

  it('bidi: each message answered while the call stays open, then ended by the client', async () => {
    const call = client.bidi(new grpc.Metadata(), { deadline: Date.now() + 20_000 });
    const got: string[] = [];
    // Ping-pong: the next message goes only after the answer to the last, so both directions are open at once.
    await new Promise<void>((resolve, reject) => {
      let i = 0;
      call.on('data', (b: Buffer) => {
        got.push(b.toString());
        if (++i < 5) call.write(Buffer.from(`q${i}`));
        else call.end();
      });
      call.on('status', (s: grpc.StatusObject) =>
        s.code === grpc.status.OK ? resolve() : reject(new Error(s.details)),
      );
      call.write(Buffer.from('q0'));
    });
    assert.deepEqual(got, ['re:q0', 're:q1', 're:q2', 're:q3', 're:q4']);
  });

  it('logs each call with protocol HTTP/2.0 and its grpc status', async () => {
    const records = await lb.waitForRequests(5);
    const unary = records.filter((r) => r.path === '/keepwire.test.Echo/Unary');
    assert.ok(unary.length >= 2);
    for (const r of records) {
      assert.equal(r.protocol, 'HTTP/2.0');
      assert.equal(r.status, 200);
      assert.equal(r.reason, 'ok');
    }
    assert.ok(unary.some((r) => r.grpcStatus === grpc.status.OK));
    assert.ok(unary.some((r) => r.grpcStatus === grpc.status.FAILED_PRECONDITION));
    // One upstream connection carried them all (multiplexed, pooled).
    assert.ok(records.slice(1).every((r) => r.upstreamConnect === 'reused'));
  });
});
