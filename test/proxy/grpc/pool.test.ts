/**
 * grpc_pass's upstream HTTP/2 pool: sequential calls share one connection
 * (multiplexed and kept between calls), and when the server's
 * SETTINGS_MAX_CONCURRENT_STREAMS is reached (grpc-js
 * `grpc.max_concurrent_streams`) a new connection is opened instead of
 * queueing the call inside a full one. Connections are counted at a TCP
 * forwarder in front of the grpc-js server.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { connect, createServer, type Server, type Socket } from 'node:net';
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

describe('grpc_pass pool: reuse, and a new connection when the server allows no more streams', () => {
  let up: GrpcServer;
  let forwarder: Server;
  const accepted: Socket[] = [];
  let lb: RunningHttp;
  let client: EchoClientT;
  /** Calls held by the server until `release`. */
  let holding: (() => void)[] = [];
  let heldNow: () => void = () => {};

  before(async () => {
    up = await startGrpcServer(
      {
        unary: (call, cb) => {
          if (call.request.toString() !== 'hold') {
            cb(null, call.request);
            return;
          }
          holding.push(() => cb(null, Buffer.from('released')));
          heldNow();
        },
      },
      { 'grpc.max_concurrent_streams': 1 },
    );
    forwarder = createServer((socket) => {
      accepted.push(socket);
      const upstream = connect(up.port, '127.0.0.1');
      socket.pipe(upstream).pipe(socket);
      socket.on('error', () => upstream.destroy());
      upstream.on('error', () => socket.destroy());
    });
    await new Promise<void>((resolve) => forwarder.listen(0, '127.0.0.1', resolve));
    const port = await closedPort();
    lb = await startKeepwire(`
      http {
        upstream echo { server 127.0.0.1:${(forwarder.address() as AddressInfo).port}; keepalive_timeout 60s; }
        server {
          listen 127.0.0.1:${port};
          http2 on;
          location / { grpc_pass grpc://echo; }
        }
      }`);
    client = echoClient(port);
  });

  after(async () => {
    for (const h of holding) h();
    client?.close();
    await lb?.close();
    for (const s of accepted) s.destroy();
    await new Promise((resolve) => forwarder?.close(resolve));
    await up?.close();
  });

  it('sequential calls share one upstream connection', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await unaryCall(client, Buffer.from(`n${i}`));
      assert.equal(r.reply?.toString(), `n${i}`);
    }
    assert.equal(accepted.length, 1);
    const records = await lb.waitForRequests(5);
    assert.deepEqual(
      records.map((r) => r.upstreamConnect),
      ['new', 'reused', 'reused', 'reused', 'reused'],
    );
  });

  it('three calls at once to a server allowing one stream per connection: three connections, all served together', async () => {
    const allHeld = new Promise<void>((resolve) => {
      heldNow = () => {
        if (holding.length === 3) resolve();
      };
    });
    const calls = [0, 1, 2].map(() => unaryCall(client, Buffer.from('hold')));
    // The server holds all three at once: only possible on three connections under its limit of 1.
    await Promise.race([
      allHeld,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error(`${holding.length} calls reached the server in 20 s`)), 20_000),
      ),
    ]);
    assert.equal(accepted.length, 3);
    const release = holding;
    holding = [];
    for (const h of release) h();
    const results = await Promise.all(calls);
    for (const r of results) {
      assert.equal(r.status.code, grpc.status.OK);
      assert.equal(r.reply?.toString(), 'released');
    }
  });
});
