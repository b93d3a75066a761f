/**
 * On the wire: an LVS-like load balancer (kernel NAT with a 3 s idle timer)
 * between client and server. Without keepalive an idle session is forgotten
 * and the client's next send is reset; with a 1 s keepalive idle the probes
 * keep the LB's session alive through 6 s of silence.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLbTopology, type LbTopology, SocketAgent } from '../../src/netns/index.js';
import { requireNetns } from '../require-netns.js';

const LB_IDLE_S = 3;
const IDLE_MS = 6_000;
const PORT = 7000;

async function idleThenSend(lb: LbTopology, keepalive: { idle: number; interval?: number } | undefined) {
  const server = await SocketAgent.start(lb.backend);
  await server.listen({ host: '0.0.0.0', port: PORT, echo: true });
  const client = await SocketAgent.start(lb.client);
  await client.connect('c', { host: lb.vip, port: PORT, ...(keepalive ? { keepalive } : {}) });
  client.send({ op: 'send', id: 'c', data: 'hello' });
  await client.waitFor((e) => e.ev === 'data' && e.id === 'c' && e.data === 'hello', 5_000);
  if (keepalive) assert.equal((await client.readKeepalive('c')).idle, keepalive.idle);
  await new Promise((r) => setTimeout(r, IDLE_MS));
  client.send({ op: 'send', id: 'c', data: 'again' });
  return client.waitFor(
    (e) => e.id === 'c' && ((e.ev === 'data' && e.data === 'again') || e.ev === 'error'),
    8_000,
  );
}

test('an idle session without keepalive is reset by the LB after its idle timeout (rst expiry)', async (t) => {
  if (!requireNetns(t)) return;
  const lb = await createLbTopology({ lbIdleSeconds: LB_IDLE_S, expiry: 'rst' });
  try {
    const outcome = await idleThenSend(lb, undefined);
    assert.equal(outcome.ev, 'error');
    assert.equal(outcome.code, 'ECONNRESET');
  } finally {
    await lb.destroy();
  }
});

test('the same idle session with applyKeepalive({ idle: 1, interval: 1 }) survives 6 s and still exchanges data', async (t) => {
  if (!requireNetns(t)) return;
  const lb = await createLbTopology({ lbIdleSeconds: LB_IDLE_S, expiry: 'rst' });
  try {
    const outcome = await idleThenSend(lb, { idle: 1, interval: 1 });
    assert.equal(outcome.ev, 'data', `expected the echo, got ${JSON.stringify(outcome)}`);
  } finally {
    await lb.destroy();
  }
});

// The kernel re-arms the keepalive timer with TCP_KEEPINTVL after every probe,
// answered or not (tcp_keepalive_timer), so a healthy idle connection sends a
// probe every max(idle, interval) seconds. With the system interval of 75 s,
// idle=1 alone refreshes the LB once and then leaves it silent for 75 s.
test('idle 1 s with the system probe interval (75 s) still loses the session: probes come every max(idle, interval)', async (t) => {
  if (!requireNetns(t)) return;
  const lb = await createLbTopology({ lbIdleSeconds: LB_IDLE_S, expiry: 'rst' });
  try {
    assert.equal(Number(await lb.client.readSysctl('net.ipv4.tcp_keepalive_intvl')), 75);
    const outcome = await idleThenSend(lb, { idle: 1 });
    assert.equal(outcome.ev, 'error');
    assert.equal(outcome.code, 'ECONNRESET');
  } finally {
    await lb.destroy();
  }
});
