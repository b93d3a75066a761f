/**
 * http.Agent, undici and ws with their presets against a real Node HTTP and
 * WebSocket server behind the lab's LVS-like LB (conntrack idle timer 3 s,
 * reset at expiry). The server keeps idle connections 60 s and says so
 * (`Keep-Alive: timeout=60`), and never probes or pings: only the client can
 * keep the connection known to the LB. Each client calls, stays idle 6 s
 * (twice the LB idle) and calls again. Without the preset the LB has
 * forgotten the pooled connection or the WebSocket and the second call is
 * reset; with it the pool has closed the connection before the LB forgot it
 * (http.Agent, undici: a new connection answers), or the heartbeat kept the
 * WebSocket known to the LB (ws: the same connection answers).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Backends, client, PORTS, startBackends } from './behind-lb.js';

describe('http.Agent, undici and ws presets behind an LB with a 3 s idle timeout', () => {
  let b: Backends = { skip: 'not started', stop: async () => undefined };

  before(async (t) => {
    b = await startBackends(t as never, { http: true });
  });

  after(() => b.stop());

  it('http.Agent: a pooled socket idle past the LB is reset on reuse; with httpAgentOptions and keepaliveFor the agent closed it in time and the request answers', async (t) => {
    if (b.skip) return t.skip(b.skip);
    const [bare, fixed] = await Promise.all([
      client(b.lb!, 'http-agent', PORTS.http, false),
      client(b.lb!, 'http-agent', PORTS.http, true),
    ]);
    assert.equal(bare.ok, false, `expected a reset, got ${JSON.stringify(bare)}`);
    assert.match(bare.error ?? '', /ECONNRESET|socket hang up/);
    assert.equal(fixed.ok, true, `expected an answer, got ${JSON.stringify(fixed)}`);
    assert.notEqual(
      fixed.second,
      fixed.first,
      'the agent replaced the idle socket (timeout below the LB idle)',
    );
  });

  it("undici: following the server's Keep-Alive hint the pooled connection outlives the LB and is reset; with undiciPoolOptions the pool closed it in time and the request answers", async (t) => {
    if (b.skip) return t.skip(b.skip);
    const [bare, fixed] = await Promise.all([
      client(b.lb!, 'undici', PORTS.http, false),
      client(b.lb!, 'undici', PORTS.http, true),
    ]);
    assert.equal(bare.ok, false, `expected a reset, got ${JSON.stringify(bare)}`);
    assert.match(bare.error ?? '', /ECONNRESET|other side closed|UND_ERR_SOCKET/);
    assert.equal(fixed.ok, true, `expected an answer, got ${JSON.stringify(fixed)}`);
    assert.notEqual(
      fixed.second,
      fixed.first,
      'the pool replaced the idle connection (keepAliveTimeout below the LB idle)',
    );
  });

  it('ws: an idle WebSocket without pings is reset by the LB; with the wsPreset heartbeat the same connection answers', async (t) => {
    if (b.skip) return t.skip(b.skip);
    const [bare, fixed] = await Promise.all([
      client(b.lb!, 'ws', PORTS.http, false),
      client(b.lb!, 'ws', PORTS.http, true),
    ]);
    assert.equal(bare.ok, false, `expected a reset, got ${JSON.stringify(bare)}`);
    assert.match(bare.error ?? '', /ECONNRESET|closed with code 1006/);
    assert.equal(fixed.ok, true, `expected an answer, got ${JSON.stringify(fixed)}`);
    assert.equal(fixed.second, fixed.first, 'the same client port: the same WebSocket connection');
  });
});
