/**
 * On the wire (DESIGN.md §5): keepwire in the client namespace proxies to an
 * echo server behind an LVS-like load balancer whose idle timer is 3 s. A
 * session idle for 6 s survives only when proxy_socket_keepalive probes the
 * upstream leg more often than that timer; otherwise the LB forgets the flow,
 * the next byte is reset, and keepwire passes the reset to its client.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ServeProcess, spawnServe } from '../../src/lab/keepwire.js';
import { createLbTopology, type LbTopology, SocketAgent } from '../../src/netns/index.js';
import { requireNetns } from '../require-netns.js';

const LB_IDLE_S = 3;
const IDLE_MS = 6_000;
const BACKEND_PORT = 7000;
const PROXY_PORT = 6432;

interface Outcome {
  ev: string;
  code?: string;
  sessionLines: Record<string, unknown>[];
}

/** keepwire in the client namespace, in front of the LB. */
function startKeepwire(lb: LbTopology, keepalive: string): Promise<ServeProcess> {
  return spawnServe(
    lb.client,
    `worker_shutdown_timeout 0s;
stream {
    server {
        listen 127.0.0.1:${PROXY_PORT};
        proxy_pass ${lb.vip}:${BACKEND_PORT};
        proxy_socket_keepalive ${keepalive};
        proxy_timeout 10m;
    }
}
`,
  );
}

async function idleThenSend(keepalive: string): Promise<Outcome> {
  const lb = await createLbTopology({ lbIdleSeconds: LB_IDLE_S, expiry: 'rst' });
  const agents: SocketAgent[] = [];
  let kw: ServeProcess | undefined;
  try {
    const server = await SocketAgent.start(lb.backend);
    agents.push(server);
    await server.listen({ host: '0.0.0.0', port: BACKEND_PORT, echo: true });
    kw = await startKeepwire(lb, keepalive);
    const client = await SocketAgent.start(lb.client);
    agents.push(client);
    await client.connect('c', { host: '127.0.0.1', port: PROXY_PORT });
    client.send({ op: 'send', id: 'c', data: 'hello' });
    await client.waitFor((e) => e.ev === 'data' && e.id === 'c' && e.data === 'hello', 5_000);
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const early = client.events.find((e) => e.id === 'c' && e.ev === 'error');
    if (!early) client.send({ op: 'send', id: 'c', data: 'again' });
    const outcome = await client.waitFor(
      (e) => e.id === 'c' && ((e.ev === 'data' && e.data === 'again') || e.ev === 'error' || e.ev === 'end'),
      8_000,
    );
    // Let keepwire write its session line if the session ended.
    await new Promise((r) => setTimeout(r, 200));
    const result: Outcome = { ev: outcome.ev, sessionLines: kw.lines.filter((l) => l.msg === 'session') };
    if (outcome.code !== undefined) result.code = outcome.code;
    return result;
  } finally {
    for (const a of agents) a.stop();
    kw?.stop();
    await lb.destroy();
  }
}

test('proxy_socket_keepalive 1s:1s:3 (below the LB timer): the idle session survives 6 s', async (t) => {
  if (!requireNetns(t)) return;
  const outcome = await idleThenSend('1s:1s:3');
  assert.equal(outcome.ev, 'data', JSON.stringify(outcome));
  assert.equal(outcome.sessionLines.length, 0, 'the session is still live');
});

test('proxy_socket_keepalive 5s:1s:3 (above the LB timer): the LB forgets the session and the client gets a reset', async (t) => {
  if (!requireNetns(t)) return;
  const outcome = await idleThenSend('5s:1s:3');
  assert.equal(outcome.ev, 'error', JSON.stringify(outcome));
  assert.equal(outcome.code, 'ECONNRESET');
  assert.equal(outcome.sessionLines[0]?.reason, 'upstream_reset');
});

test('proxy_socket_keepalive off: the LB forgets the session and the client gets a reset', async (t) => {
  if (!requireNetns(t)) return;
  const outcome = await idleThenSend('off');
  assert.equal(outcome.ev, 'error', JSON.stringify(outcome));
  assert.equal(outcome.code, 'ECONNRESET');
  assert.equal(outcome.sessionLines[0]?.reason, 'upstream_reset');
});
