/**
 * proxy_next_upstream_timeout (http): how long after the first try a request
 * may still be passed to another server. As in nginx it is checked when a
 * try fails and never cuts one in progress; once it has passed, the failure
 * at hand is answered with its own status (504 for a timeout, 502 for an
 * error) and the servers not yet tried are left alone. 0 means no limit.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import type { RequestRecord } from '../../../src/proxy/http/index.js';
import { closedPort } from '../fixtures.js';
import {
  fetchRaw,
  get,
  httpConfig,
  httpGroup,
  httpServer,
  location,
  okResponse,
  passToGroup,
  type RawUpstream,
  rawUpstream,
  server,
  startHttp,
} from './fixtures.js';

/** Two primaries that fail, then a healthy backup that proves whether a further try was made. */
async function scenario(
  failing: () => Promise<RawUpstream>,
  loc: Parameters<typeof location>[0],
): Promise<{ status: number; ms: number; log: RequestRecord; backupRequests: number }> {
  const a = await failing();
  const b = await failing();
  const backup = await rawUpstream((_req, respond) => respond(okResponse('backup')));
  const lb = await startHttp(
    httpConfig(
      [httpServer({ locations: [location({ proxyPass: passToGroup('app'), ...loc })] })],
      [
        httpGroup(
          'app',
          [
            server(a.port, { maxFails: 0 }),
            server(b.port, { maxFails: 0 }),
            server(backup.port, { backup: true, maxFails: 0 }),
          ],
          { keepalive: 0 },
        ),
      ],
    ),
  );
  try {
    const t0 = Date.now();
    const res = await fetchRaw(lb.port, get('/'), 15_000);
    const ms = Date.now() - t0;
    const [log] = await lb.waitForRequests(1);
    return { status: res.status, ms, log: log!, backupRequests: backup.requests.length };
  } finally {
    await lb.close();
    await Promise.all([a.close(), b.close(), backup.close()]);
  }
}

/** An upstream that reads the request and never answers. */
const silent = () => rawUpstream(() => {});

/** An upstream that reads the request and resets the connection 1.2 s later. */
const resetLate = () =>
  rawUpstream((req) => {
    setTimeout(() => (req.socket as Socket).resetAndDestroy(), 1_200);
  });

test('proxy_next_upstream_timeout: two servers time out; the budget spent after the second, its 504 is returned and the backup is not tried', async () => {
  const bounded = await scenario(silent, {
    proxyReadTimeoutMs: 1_000,
    proxyNextUpstreamTimeoutMs: 1_500,
  });
  assert.equal(bounded.status, 504);
  assert.equal(
    bounded.log.tries,
    2,
    'the first timeout (1 s) was within the 1.5 s budget, the second was not',
  );
  assert.equal(bounded.log.reason, 'upstream_timeout');
  assert.match(bounded.log.detail ?? '', /proxy_next_upstream_timeout \(1500 ms\) spent/);
  assert.equal(bounded.backupRequests, 0);
  assert.ok(bounded.ms >= 1_800 && bounded.ms < 4_000, `answered after ${bounded.ms} ms`);

  // 0 = no limit: the third server is tried and answers.
  const unbounded = await scenario(silent, { proxyReadTimeoutMs: 1_000, proxyNextUpstreamTimeoutMs: 0 });
  assert.equal(unbounded.status, 200);
  assert.equal(unbounded.log.tries, 3);
  assert.equal(unbounded.backupRequests, 1);
});

test('proxy_next_upstream_timeout: an error after the budget is spent returns its 502 at once; the try in progress was not cut short', async () => {
  const bounded = await scenario(resetLate, {
    proxyReadTimeoutMs: 10_000,
    proxyNextUpstreamTimeoutMs: 1_000,
  });
  assert.equal(bounded.status, 502);
  assert.equal(bounded.log.tries, 1);
  assert.equal(bounded.log.reason, 'upstream_reset');
  assert.match(bounded.log.detail ?? '', /proxy_next_upstream_timeout \(1000 ms\) spent/);
  assert.equal(bounded.backupRequests, 0);
  // The first try ran its course (the reset after 1.2 s), past the 1 s budget.
  assert.ok(bounded.ms >= 1_000 && bounded.ms < 3_000, `answered after ${bounded.ms} ms`);

  const unbounded = await scenario(resetLate, { proxyReadTimeoutMs: 10_000 });
  assert.equal(unbounded.status, 200);
  assert.equal(unbounded.log.tries, 3);
});

test('proxy_next_upstream_timeout: servers that refuse at once are all tried within the budget', async () => {
  const backup = await rawUpstream((_req, respond) => respond(okResponse('backup')));
  const lb = await startHttp(
    httpConfig(
      [
        httpServer({
          locations: [location({ proxyPass: passToGroup('app'), proxyNextUpstreamTimeoutMs: 2_000 })],
        }),
      ],
      [
        httpGroup('app', [
          server(await closedPort(), { maxFails: 0 }),
          server(await closedPort(), { maxFails: 0 }),
          server(backup.port, { backup: true }),
        ]),
      ],
    ),
  );
  try {
    const res = await fetchRaw(lb.port, get('/'));
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), 'backup');
    const [log] = await lb.waitForRequests(1);
    assert.equal(log!.tries, 3);
  } finally {
    await lb.close();
    await backup.close();
  }
});
