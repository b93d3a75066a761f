/**
 * grpc_pass carries every kind of gRPC call between real grpc-js peers
 * (client → keepwire over h2c → grpc-js server over HTTP/2): unary,
 * server-streaming, client-streaming and bidi, with request metadata,
 * response metadata and the server's trailers (grpc-status, grpc-message,
 * custom trailing metadata) intact, and one access line per call with its
 * protocol and grpc status.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { tempDir } from '../../support.js';
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

  it('curl --http2-prior-knowledge as a second client: the reply, then the trailers after the body', async (t) => {
    const dir = tempDir('kw-grpc-curl-', t);
    const request = join(dir, 'request.bin');
    const reply = join(dir, 'reply.bin');
    // One length-prefixed message "curl" (flag 0, length 4).
    writeFileSync(request, Buffer.from([0, 0, 0, 0, 4, ...Buffer.from('curl')]));
    const run = await new Promise<{ error: Error | null; out: string }>((resolve) =>
      execFile(
        'curl',
        [
          '-sS',
          '--http2-prior-knowledge',
          '--max-time',
          '20',
          '-X',
          'POST',
          '-H',
          'content-type: application/grpc',
          '-H',
          'te: trailers',
          '--data-binary',
          `@${request}`,
          '-D',
          '-',
          '-o',
          reply,
          `http://127.0.0.1:${lb.port}/keepwire.test.Echo/Unary`,
        ],
        (error, out) => resolve({ error, out }),
      ),
    );
    if ((run.error as NodeJS.ErrnoException | null)?.code === 'ENOENT') {
      if (process.env.CI === 'true') throw new Error('CI=true: curl is missing (apt-get install curl)');
      t.skip('curl is not installed');
      return;
    }
    assert.equal(run.error, null);
    const [head, trailers] = run.out.split('\r\n\r\n');
    assert.match(head!, /^HTTP\/2 200/);
    assert.match(trailers!, /grpc-status: 0/);
    assert.match(trailers!, /x-trailer: end/);
    const body = readFileSync(reply);
    assert.equal(body.readUInt32BE(1), 9);
    assert.equal(body.subarray(5).toString(), 'echo:curl');
  });

  it('logs each call with protocol HTTP/2.0 and its grpc status', async () => {
    const records = await lb.waitForRequests(6);
    const unary = records.filter((r) => r.path === '/keepwire.test.Echo/Unary');
    assert.ok(unary.length >= 3);
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

describe('grpc_pass: a request stream that arrives before the upstream connection is ready', () => {
  let up: GrpcServer;
  let lb: RunningHttp;
  let client: EchoClientT;

  before(async () => {
    up = await startGrpcServer({
      clientStream: (call, cb) => {
        let bytes = 0;
        let n = 0;
        call.on('data', (b: Buffer) => {
          bytes += b.length;
          n++;
        });
        call.on('end', () => cb(null, Buffer.from(`${n}/${bytes}`)));
      },
    });
    const port = await closedPort();
    // client_body_buffer_size 8k: what is held while no stream takes it; over that the client waits.
    lb = await startKeepwire(`
      http {
        server {
          listen 127.0.0.1:${port};
          http2 on;
          client_body_buffer_size 8k;
          client_max_body_size 0;
          location / { grpc_pass grpc://127.0.0.1:${up.port}; }
        }
      }`);
    client = echoClient(port);
  });

  after(async () => {
    client?.close();
    await lb?.close();
    await up?.close();
  });

  it('is held (bounded) until the stream opens, then flows: all 256 KiB arrive', async () => {
    const reply = await new Promise<Buffer | undefined>((resolve, reject) => {
      const call = client.clientStream(new grpc.Metadata(), { deadline: Date.now() + 20_000 }, (e, r) =>
        e ? reject(e) : resolve(r),
      );
      for (let i = 0; i < 32; i++) call.write(Buffer.alloc(8192, i));
      call.end();
    });
    assert.equal(reply?.toString(), `32/${32 * 8192}`);
  });
});
