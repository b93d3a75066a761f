/**
 * The backend vanishes without a word (every packet dropped) in the middle of
 * a session. Without keepalive an idle client waits forever; with keepalive it
 * learns after idle + interval x count; with data in flight, retransmissions
 * go on for many minutes unless TCP_USER_TIMEOUT bounds them.
 */
import { detectionTime } from '../../keepalive/recommend.js';
import type { KeepaliveOptions } from '../../keepalive/socket.js';
import { LB_ADDRESSES } from '../../netns/index.js';
import { type LabContext, type Observation, outcomeOfError, type Variant } from '../scenario.js';

const PORT = 7000;
const KEEPALIVE = { idle: 1, interval: 1, count: 2 };
const USER_TIMEOUT_MS = 2000;

/** How long the scenario itself waits for the client to notice, at most. */
const limitMs = (ctx: LabContext) => Math.max(8_000, ctx.lbIdleS * 2000);

async function vanish(
  ctx: LabContext,
  keepalive: KeepaliveOptions | undefined,
  inFlight: boolean,
): Promise<Observation> {
  // Keep the LB out of the way: this scenario is about the peer, not the LB.
  await ctx.lb.setLbIdle(3600);
  const backend = await ctx.agent('backend');
  await backend.listen({ host: LB_ADDRESSES.backend, port: PORT, echo: true });
  const client = await ctx.agent('client');
  await client.connect('c', { host: LB_ADDRESSES.vip, port: PORT, ...(keepalive ? { keepalive } : {}) });
  client.send({ op: 'send', id: 'c', data: 'ping' });
  const echo = await client.waitFor((e) => e.ev === 'data' && e.id === 'c', 5_000);
  ctx.note('client', 'data', 'client and backend exchange data', echo.at);
  await ctx.lb.backend.nft(
    'table inet vanish { chain input { type filter hook input priority filter; policy drop; }; }',
  );
  const vanished = Date.now();
  ctx.note('backend', 'vanish', 'backend vanishes: it drops every packet from now on');
  if (inFlight) {
    client.send({ op: 'send', id: 'c', data: 'request' });
    ctx.note('client', 'request', 'client sends a request (data in flight)');
  }
  const end = await client.maybe((e) => e.id === 'c' && (e.ev === 'error' || e.ev === 'close'), limitMs(ctx));
  if (!end) {
    const waited = (Date.now() - vanished) / 1000;
    ctx.note('client', 'waiting', `client still waiting after ${waited.toFixed(1)}s, none the wiser`);
    return { outcome: 'waiting', detail: `no error after ${waited.toFixed(1)}s (scenario limit)` };
  }
  const afterS = (end.at - vanished) / 1000;
  const outcome = end.ev === 'error' ? outcomeOfError(end.code) : 'reset';
  ctx.note(
    'client',
    outcome,
    `client learns the peer is gone: ${end.code ?? end.ev} after ${afterS.toFixed(1)}s`,
    end.at,
  );
  return {
    outcome,
    detail: `${end.code ?? end.ev} ${afterS.toFixed(1)}s after the backend vanished`,
    afterS,
  };
}

export const deadPeer: Variant[] = [
  {
    scenario: 'dead-peer',
    name: 'idle-no-keepalive',
    summary: 'idle client, no keepalive',
    expected: () => 'waiting',
    run: (ctx) => vanish(ctx, undefined, false),
  },
  {
    scenario: 'dead-peer',
    name: 'idle-keepalive',
    summary: `idle client with keepalive ${KEEPALIVE.idle}s:${KEEPALIVE.interval}s:${KEEPALIVE.count} (detection ${detectionTime(KEEPALIVE)}s)`,
    expected: () => 'keepalive-timeout',
    run: (ctx) => vanish(ctx, KEEPALIVE, false),
  },
  {
    scenario: 'dead-peer',
    name: 'in-flight-no-user-timeout',
    summary: 'client with data in flight, keepalive on but no TCP_USER_TIMEOUT (retransmits for minutes)',
    expected: () => 'waiting',
    run: (ctx) => vanish(ctx, KEEPALIVE, true),
  },
  {
    scenario: 'dead-peer',
    name: 'in-flight-user-timeout',
    summary: `client with data in flight and TCP_USER_TIMEOUT ${USER_TIMEOUT_MS}ms`,
    expected: () => 'keepalive-timeout',
    run: (ctx) => vanish(ctx, { ...KEEPALIVE, userTimeout: USER_TIMEOUT_MS }, true),
  },
];
