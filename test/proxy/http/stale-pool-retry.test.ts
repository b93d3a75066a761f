/**
 * The stale-pool race: an upstream closes idle keep-alive connections at
 * exactly its keep-alive timeout without announcing it, and a client sends
 * requests at intervals straddling that timeout, so now and then keepwire
 * writes a request on a connection the upstream is closing at that moment.
 *
 * GET: the client never sees an error (each such failure is retried once on
 * a fresh connection, and the retry is logged). POST: a request that may
 * have reached the upstream is never repeated; the client gets 502 with the
 * reason logged, and the upstream never sees a POST twice.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NOT_RETRIED_MAY_HAVE_REACHED } from '../../../src/proxy/http/log.js';
import {
  httpConfig,
  httpGroup,
  httpServer,
  okResponse,
  RawClient,
  type RawUpstream,
  rawUpstream,
  server,
  sleep,
  startHttp,
} from './fixtures.js';

const ITERATIONS = 2_000;
/** The upstream's keep-alive timeout; requests come this long after the previous response, ± JITTER_MS. */
const IDLE_CLOSE_MS = 8;
const JITTER_MS = 3;
/** A bound on the whole loop, far above what it needs (~25 s on a loaded 2-core machine). */
const LOOP_BUDGET_MS = 100_000;

async function race(method: 'GET' | 'POST') {
  const up: RawUpstream = await rawUpstream((req, respond) => respond(okResponse(`${req.headers['x-id']}`)), {
    idleCloseMs: IDLE_CLOSE_MS,
  });
  const lb = await startHttp(
    httpConfig(
      [httpServer({ keepaliveRequests: 100_000 })],
      [httpGroup('app', [server(up.port)], { keepalive: 8 })],
    ),
  );
  const client = await RawClient.open(lb.port);
  const statuses = new Map<number, number>();
  const clientErrors: string[] = [];
  const started = Date.now();
  try {
    for (let i = 0; i < ITERATIONS && Date.now() - started < LOOP_BUDGET_MS; i++) {
      const body = method === 'POST' ? `payload-${i}` : '';
      client.send(
        `${method} /r/${i} HTTP/1.1\r\nHost: t\r\nX-Id: ${i}\r\n${method === 'POST' ? `Content-Length: ${body.length}\r\n` : ''}\r\n${body}`,
      );
      try {
        const res = await client.response({ timeoutMs: 10_000 });
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status === 200)
          assert.equal(res.body.toString(), String(i), 'the answer belongs to this request');
      } catch (error) {
        clientErrors.push(`${i}: ${(error as Error).message}`);
        break;
      }
      await sleep(Math.max(0, IDLE_CLOSE_MS - JITTER_MS + Math.floor(Math.random() * (2 * JITTER_MS + 1))));
    }
    await lb.waitForRequests(ITERATIONS, 10_000);
    return { up, lb, statuses, clientErrors, elapsedMs: Date.now() - started };
  } finally {
    client.close();
    await lb.close();
    await up.close();
  }
}

test(`GET at intervals around the upstream's keep-alive timeout, ${ITERATIONS} times: no client-visible error, stale connections retried and logged`, async () => {
  const { up, lb, statuses, clientErrors, elapsedMs } = await race('GET');
  assert.deepEqual(clientErrors, []);
  assert.deepEqual([...statuses], [[200, ITERATIONS]], `statuses: ${JSON.stringify([...statuses])}`);
  const stale = lb.retries().filter((r) => r.kind === 'stale_connection');
  assert.ok(
    stale.length > 0,
    `the race happened and was retried (${up.accepted} upstream connections, ${elapsedMs} ms)`,
  );
  const retried = lb.requests().filter((r) => r.retries > 0);
  assert.equal(retried.length, stale.length, 'each retry belongs to one request');
  for (const r of retried) {
    assert.equal(r.status, 200);
    assert.equal(r.upstreamConnect, 'new', 'the retry used a fresh connection');
  }
  assert.ok(
    lb.requests().some((r) => r.upstreamConnect === 'reused'),
    'connections were reused at all',
  );
  console.log(
    `# GET: ${ITERATIONS} requests in ${elapsedMs} ms, ${up.accepted} upstream connections, ${stale.length} stale-connection retries`,
  );
});

test(`POST at intervals around the upstream's keep-alive timeout, ${ITERATIONS} times: never a duplicated POST; 502 only where the request may have reached the upstream`, async () => {
  const { up, lb, statuses, clientErrors, elapsedMs } = await race('POST');
  assert.deepEqual(clientErrors, []);
  const seen = new Map<string, number>();
  for (const r of up.requests) seen.set(r.headers['x-id']!, (seen.get(r.headers['x-id']!) ?? 0) + 1);
  const duplicated = [...seen].filter(([, n]) => n > 1);
  assert.deepEqual(duplicated, [], 'no POST reached the upstream twice');
  for (const status of statuses.keys()) assert.ok(status === 200 || status === 502, `status ${status}`);
  const failed = lb.requests().filter((r) => r.status !== 200);
  for (const r of failed) {
    assert.equal(r.status, 502);
    assert.equal(r.upstreamConnect, 'reused', 'only a reused connection can lose a request this way');
    assert.ok(r.detail?.includes(NOT_RETRIED_MAY_HAVE_REACHED), r.detail);
  }
  assert.equal(
    lb.retries().filter((r) => r.kind === 'stale_connection').length,
    0,
    'a POST whose request went out is never retried',
  );
  assert.equal((statuses.get(200) ?? 0) + (statuses.get(502) ?? 0), ITERATIONS);
  console.log(
    `# POST: ${ITERATIONS} requests in ${elapsedMs} ms, ${up.accepted} upstream connections, ${failed.length} 502s (not retried)`,
  );
});
