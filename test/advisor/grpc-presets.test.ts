/**
 * @grpc/grpc-js with grpcChannelOptions / grpcServerOptions behind the lab's
 * LVS-like LB (idle 3 s, reset at expiry): the real library accepts the
 * options, and a channel idle for 6 s keeps its TCP connection (the server
 * sees the same peer address) only when pings cross the LB.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Backends, client, PORTS, startBackends } from './behind-lb.js';

describe('grpc-js presets behind an LB with a 3 s idle timeout', () => {
  let b: Backends = { skip: 'not started', stop: async () => undefined };

  before(async (t) => {
    b = await startBackends(t as never, { grpc: true });
  });

  after(() => b.stop());

  it('@grpc/grpc-js: the channel with grpcChannelOptions keeps its connection through the idle gap; without them it does not', async (t) => {
    if (b.skip) return t.skip(b.skip);
    // The server without options: only the channel's own pings can keep the connection.
    const [bare, fixed] = await Promise.all([
      client(b.lb!, 'grpc', PORTS.grpc, false),
      client(b.lb!, 'grpc', PORTS.grpc, true),
    ]);
    assert.ok(
      !bare.ok || bare.second !== bare.first,
      `without keepalive the connection cannot survive the LB: ${JSON.stringify(bare)}`,
    );
    assert.equal(fixed.ok, true, `expected an answer, got ${JSON.stringify(fixed)}`);
    assert.equal(fixed.second, fixed.first, 'the same peer address: the same TCP connection');
  });

  it('@grpc/grpc-js: a server with grpcServerOptions pings its idle clients, so a channel without options keeps its connection too', async (t) => {
    if (b.skip) return t.skip(b.skip);
    const bare = await client(b.lb!, 'grpc', PORTS.grpcPreset, false);
    assert.equal(bare.ok, true, `expected an answer, got ${JSON.stringify(bare)}`);
    assert.equal(bare.second, bare.first, 'the same peer address: the same TCP connection');
  });
});
