/**
 * On the wire (DESIGN.md §5): keepwire in the client namespace proxies HTTP
 * to a backend behind an LVS-like load balancer whose idle timer is 3 s; the
 * backend answers after 6 s. While the request waits nothing crosses the LB,
 * so the LB forgets the session unless TCP keepalive probes on keepwire's
 * upstream socket keep it alive. Without them the response never arrives and
 * the client gets the 504 of proxy_read_timeout (or a 502 if a reset arrives
 * first), with the reason in the access log.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ServeProcess, spawnServe } from '../../../src/lab/keepwire.js';
import { createLbTopology, type LbTopology, SocketAgent } from '../../../src/netns/index.js';
import { requireNetns } from '../../require-netns.js';

const LB_IDLE_S = 3;
const BACKEND_DELAY_MS = 6_000;
const READ_TIMEOUT_S = 10;
const BACKEND_PORT = 7000;
const PROXY_PORT = 8080;

/** keepwire in the client namespace, in front of the LB. */
function startKeepwire(lb: LbTopology, keepalive: string): Promise<ServeProcess> {
  return spawnServe(
    lb.client,
    `worker_shutdown_timeout 0s;
http {
    upstream app { server ${lb.vip}:${BACKEND_PORT} max_fails=0; keepalive 4; }
    server {
        listen 127.0.0.1:${PROXY_PORT};
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_read_timeout ${READ_TIMEOUT_S}s;
            proxy_socket_keepalive ${keepalive};
            proxy_next_upstream off;
        }
    }
}
`,
  );
}

async function longRequest(keepalive: string) {
  const lb = await createLbTopology({ lbIdleSeconds: LB_IDLE_S, expiry: 'rst' });
  const agents: SocketAgent[] = [];
  let kw: ServeProcess | undefined;
  try {
    const backend = await SocketAgent.start(lb.backend);
    agents.push(backend);
    backend.send({ op: 'http-listen', host: '0.0.0.0', port: BACKEND_PORT, delayMs: BACKEND_DELAY_MS });
    await backend.waitFor((e) => e.ev === 'http-listening', 5_000);
    kw = await startKeepwire(lb, keepalive);
    const client = await SocketAgent.start(lb.client);
    agents.push(client);
    client.send({ op: 'http-client', id: 'c', origin: `http://127.0.0.1:${PROXY_PORT}`, poolIdleMs: 60_000 });
    await client.waitFor((e) => e.ev === 'http-client', 5_000);
    const t0 = Date.now();
    client.send({ op: 'http-request', id: 'c', rid: '1', path: '/slow', timeoutMs: 30_000 });
    const outcome = await client.waitFor(
      (e) => e.id === 'c' && e.rid === '1' && (e.ev === 'response' || e.ev === 'http-error'),
      30_000,
    );
    const elapsedMs = Date.now() - t0;
    const deadline = Date.now() + 2_000;
    while (!kw.lines.some((l) => l.msg === 'request') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    return { outcome, elapsedMs, log: kw.lines.find((l) => l.msg === 'request') };
  } finally {
    for (const a of agents) a.stop();
    kw?.stop();
    await lb.destroy();
  }
}

test('proxy_socket_keepalive 1s:1s:3 (probes under the LB timer): the 6 s request succeeds', async (t) => {
  if (!requireNetns(t)) return;
  const { outcome, elapsedMs, log } = await longRequest('1s:1s:3');
  assert.equal(outcome.ev, 'response', JSON.stringify(outcome));
  assert.equal(outcome.status, 200);
  assert.equal(outcome.body, 'ok\n');
  assert.ok(elapsedMs >= BACKEND_DELAY_MS - 500, `took ${elapsedMs} ms`);
  assert.equal(log?.status, 200, JSON.stringify(log));
  assert.equal(log?.reason, 'ok');
});

test('proxy_socket_keepalive off: the LB forgets the session, the client gets 504 from proxy_read_timeout (or 502 on a reset), reason logged', async (t) => {
  if (!requireNetns(t)) return;
  const { outcome, log } = await longRequest('off');
  assert.equal(outcome.ev, 'response', JSON.stringify(outcome));
  assert.ok(outcome.status === 504 || outcome.status === 502, JSON.stringify(outcome));
  assert.equal(log?.status, outcome.status, JSON.stringify(log));
  if (outcome.status === 504) {
    assert.equal(log?.reason, 'upstream_timeout');
    assert.match(String(log?.detail), /proxy_read_timeout/);
  } else assert.equal(log?.reason, 'upstream_reset');
});
