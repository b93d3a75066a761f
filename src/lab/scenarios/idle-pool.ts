/**
 * A pooled keep-alive connection that sat idle longer than the LB's idle
 * timeout is reused: the LB has forgotten it, so the request is reset (rst
 * expiry) or vanishes (drop expiry). Fixes: a pool idle timeout below the LB's,
 * or TCP keepalive on the pool's sockets so the LB never forgets them. And
 * with keepwire's HTTP proxy as the pooling hop: its stale-connection retry
 * hides a reset, and proxy_socket_keepalive avoids the stale connection.
 */
import { LB_ADDRESSES } from '../../netns/index.js';
import { startKeepwire } from '../keepwire.js';
import {
  type LabContext,
  type Observation,
  outcomeOfError,
  outcomeOfStatus,
  type Variant,
} from '../scenario.js';

const PORT = 80;

interface PoolSetup {
  poolIdleMs: number;
  keepalive?: { idle: number; interval: number; count: number };
  /** keepwire serve (HTTP) in the client namespace pools to the LB; the client talks to it over loopback. */
  viaKeepwire?: { proxySocketKeepalive: string };
}

const KEEPWIRE_PORT = 8080;

async function reuseAfterIdle(ctx: LabContext, setup: PoolSetup): Promise<Observation> {
  const backend = await ctx.agent('backend');
  // The server's own keep-alive is long: only the LB may expire the connection.
  backend.send({
    op: 'http-listen',
    host: LB_ADDRESSES.backend,
    port: PORT,
    delayMs: 0,
    keepaliveTimeoutMs: 120_000,
  });
  await backend.waitFor((e) => e.ev === 'http-listening' || e.ev === 'fatal', 5_000);
  if (setup.viaKeepwire) {
    const directive = `proxy_socket_keepalive ${setup.viaKeepwire.proxySocketKeepalive};`;
    ctx.note('proxy', 'config', `keepwire serve: upstream keepalive 4, keepalive_timeout 60s; ${directive}`);
    await startKeepwire(
      ctx,
      'client',
      `http {
    upstream app {
        server ${LB_ADDRESSES.vip}:${PORT};
        keepalive 4;
        keepalive_timeout 60s;
    }
    server {
        listen 127.0.0.1:${KEEPWIRE_PORT};
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_read_timeout ${ctx.lbIdleS}s;
            ${directive}
        }
    }
}
`,
    );
    ctx.clientSide('proxy');
  }
  const client = await ctx.agent('client');
  client.send({
    op: 'http-client',
    id: 'pool',
    origin: setup.viaKeepwire ? `http://127.0.0.1:${KEEPWIRE_PORT}` : `http://${LB_ADDRESSES.vip}:${PORT}`,
    poolIdleMs: setup.poolIdleMs,
    ...(setup.keepalive ? { keepalive: setup.keepalive } : {}),
  });
  await client.waitFor((e) => e.ev === 'http-client', 5_000);
  client.onEvent((e) => {
    if (e.ev === 'http-connect') ctx.note('client', 'pool-connect', 'pool opens a new connection', e.at);
    if (e.ev === 'http-disconnect')
      ctx.note('client', 'pool-close', `pool closes a connection${e.code ? ` (${e.code})` : ''}`, e.at);
  });
  // Through keepwire the client waits longer than keepwire's own proxy_read_timeout (the LB idle).
  const timeoutMs = ctx.lbIdleS * (setup.viaKeepwire ? 3000 : 1000);
  const request = async (rid: string) => {
    client.send({ op: 'http-request', id: 'pool', rid, path: `/${rid}`, timeoutMs });
    ctx.note('client', 'request', `client sends GET /${rid}`);
    return client.waitFor(
      (e) => e.rid === rid && (e.ev === 'response' || e.ev === 'http-error'),
      timeoutMs + 10_000,
    );
  };
  const first = await request('first');
  if (first.ev !== 'response') return { outcome: 'error', detail: `the first request failed: ${first.code}` };
  ctx.note('client', 'response', `client receives ${first.status}`, first.at);
  const idleMs = (ctx.lbIdleS + 2) * 1000;
  ctx.note('client', 'idle', `client leaves the pool idle for ${idleMs / 1000}s (LB idle ${ctx.lbIdleS}s)`);
  await ctx.sleep(idleMs);
  const second = await request('second');
  const connects = client.events.filter((e) => e.ev === 'http-connect').length;
  const how = connects === 1 ? 'on the reused connection' : 'on a new connection';
  const afterS = (second.at - ctx.start) / 1000;
  if (second.ev === 'response') {
    ctx.note('client', 'response', `client receives ${second.status} ${how}`, second.at);
    return {
      outcome: outcomeOfStatus(second.status as number),
      detail: `HTTP ${second.status} ${how}`,
      afterS,
    };
  }
  const outcome = outcomeOfError(second.code);
  ctx.note('client', outcome, `second request fails ${how}: ${second.code}`, second.at);
  return { outcome, detail: `${second.code} ${how}: ${second.message}`, afterS };
}

export const idlePool: Variant[] = [
  {
    scenario: 'idle-pool',
    name: 'pool-outlives-lb',
    summary: 'undici pool idle timeout 4x the LB idle, no TCP keepalive; reuse after LB idle + 2s',
    expected: (expiry) => (expiry === 'rst' ? 'reset' : 'timeout'),
    run: (ctx) => reuseAfterIdle(ctx, { poolIdleMs: ctx.lbIdleS * 4000 }),
  },
  {
    scenario: 'idle-pool',
    name: 'pool-idle-below-lb',
    summary: 'pool idle timeout = LB idle - 1s: the pool drops the connection before the LB forgets it',
    expected: () => 'response',
    run: (ctx) => reuseAfterIdle(ctx, { poolIdleMs: (ctx.lbIdleS - 1) * 1000 }),
  },
  {
    scenario: 'idle-pool',
    name: 'pool-tcp-keepalive',
    summary: 'pool sockets with keepaliveConnector({idle:1, interval:1, count:3}): the LB keeps the session',
    expected: () => 'response',
    run: (ctx) =>
      reuseAfterIdle(ctx, { poolIdleMs: ctx.lbIdleS * 4000, keepalive: { idle: 1, interval: 1, count: 3 } }),
  },
];

idlePool.push(
  {
    scenario: 'idle-pool',
    name: 'keepwire-retry',
    summary:
      "keepwire's upstream pool outlives the LB; a reset on the reused connection is retried on a fresh one",
    // A reset comes back at once and the GET is retried; a dropped request only ends with proxy_read_timeout.
    expected: (expiry) => (expiry === 'rst' ? 'response' : 'gateway-error'),
    run: (ctx) =>
      reuseAfterIdle(ctx, { poolIdleMs: ctx.lbIdleS * 4000, viaKeepwire: { proxySocketKeepalive: 'off' } }),
  },
  {
    scenario: 'idle-pool',
    name: 'keepwire-socket-keepalive',
    summary:
      "keepwire's upstream pool with proxy_socket_keepalive 1s:1s:3: the LB never forgets its connections",
    expected: () => 'response',
    run: (ctx) =>
      reuseAfterIdle(ctx, {
        poolIdleMs: ctx.lbIdleS * 4000,
        viaKeepwire: { proxySocketKeepalive: '1s:1s:3' },
      }),
  },
);
