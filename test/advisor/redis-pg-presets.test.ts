/**
 * ioredis, node-redis (npm redis) and pg with their presets against real Redis and Postgres servers
 * behind the lab's LVS-like LB (conntrack idle timer 3 s, reset at expiry):
 * each client calls, stays idle 6 s (twice the LB idle) and calls again.
 * Without the preset the LB has forgotten the connection and the second call
 * is reset; with it the same connection (same Redis client id, same Postgres
 * backend pid) answers, or a pool has replaced it before the LB forgot it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Backends, client, PORTS, startBackends } from './behind-lb.js';

describe('ioredis, node-redis and pg presets behind an LB with a 3 s idle timeout', () => {
  let b: Backends = { skip: 'not started', stop: async () => undefined };

  before(async (t) => {
    b = await startBackends(t as never, { redis: true, postgres: true });
  });

  after(() => b.stop());

  it('ioredis: without the preset (keepAlive 30 s) the idle connection is reset; with ioredisPreset the same connection answers', async (t) => {
    if (b.skip) return t.skip(b.skip);
    const [bare, fixed] = await Promise.all([
      client(b.lb!, 'redis', PORTS.redis, false),
      client(b.lb!, 'redis', PORTS.redis, true),
    ]);
    assert.equal(bare.ok, false, `expected a reset, got ${JSON.stringify(bare)}`);
    assert.match(bare.error ?? '', /ECONNRESET|Connection is closed/);
    assert.equal(fixed.ok, true, `expected an answer, got ${JSON.stringify(fixed)}`);
    assert.equal(fixed.second, fixed.first, 'the same Redis client id: the same connection');
  });

  it('node-redis: without the preset (keepAliveInitialDelay 30 s) the idle connection is reset; with redisPreset the same connection answers', async (t) => {
    if (b.skip) return t.skip(b.skip);
    const [bare, fixed] = await Promise.all([
      client(b.lb!, 'node-redis', PORTS.redis, false),
      client(b.lb!, 'node-redis', PORTS.redis, true),
    ]);
    assert.equal(bare.ok, false, `expected a reset, got ${JSON.stringify(bare)}`);
    assert.match(bare.error ?? '', /ECONNRESET|Socket closed unexpectedly/);
    assert.equal(fixed.ok, true, `expected an answer, got ${JSON.stringify(fixed)}`);
    assert.equal(fixed.second, fixed.first, 'the same Redis client id: the same connection');
  });

  it('pg.Pool: without the preset the pooled idle connection is reset; with pgPreset the pool replaces it before the LB forgets it', async (t) => {
    if (b.skip) return t.skip(b.skip);
    const [bare, fixed] = await Promise.all([
      client(b.lb!, 'pg-pool', PORTS.pg, false),
      client(b.lb!, 'pg-pool', PORTS.pg, true),
    ]);
    assert.equal(bare.ok, false, `expected a reset, got ${JSON.stringify(bare)}`);
    assert.match(bare.error ?? '', /ECONNRESET|Connection terminated/);
    assert.equal(fixed.ok, true, `expected an answer, got ${JSON.stringify(fixed)}`);
  });

  it("pg.Client held idle: reset without keepalive; with pgPreset's keepAlive the same backend answers", async (t) => {
    if (b.skip) return t.skip(b.skip);
    const [bare, fixed] = await Promise.all([
      client(b.lb!, 'pg-client', PORTS.pg, false),
      client(b.lb!, 'pg-client', PORTS.pg, true),
    ]);
    assert.equal(bare.ok, false, `expected a reset, got ${JSON.stringify(bare)}`);
    assert.equal(fixed.ok, true, `expected an answer, got ${JSON.stringify(fixed)}`);
    assert.equal(fixed.second, fixed.first, 'the same Postgres backend pid: the same connection');
  });
});
