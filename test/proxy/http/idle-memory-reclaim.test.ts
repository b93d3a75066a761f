/**
 * Memory given back after a burst of keep-alive connections went idle
 * (src/proxy/http/parked.ts `reclaiming`, src/kernel/memory.ts): a full V8
 * collection and malloc_trim, run from the parking sweep once the burst is
 * parked and quiet, never per request, at most once per `minIntervalMs`. The
 * connections parked when it runs must all still be served afterwards.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { bareHandlesAvailable } from '../../../src/kernel/node-internals.js';
import { liveHttp } from '../../../src/metrics/live.js';
import { parking, parkingCounts, reclaimCounts, reclaiming } from '../../../src/proxy/http/parked.js';
import {
  get,
  httpConfig,
  httpGroup,
  httpServer,
  okResponse,
  RawClient,
  rawUpstream,
  server,
  sleep,
  startHttp,
  until,
} from './fixtures.js';

const savedParking = { ...parking };
const savedReclaiming = { ...reclaiming };

before(() => {
  // Park after 50 ms idle, swept every 50 ms (1 s each by default).
  parking.afterMs = 50;
  parking.sweepMs = 50;
});

after(() => {
  Object.assign(parking, savedParking);
  Object.assign(reclaiming, savedReclaiming);
});

function liveConnections(): number {
  let n = 0;
  for (const g of liveHttp) for (const f of g.frontends) n += f.liveCount;
  return n;
}

async function withProxy(body: (port: number) => Promise<void>): Promise<void> {
  const upstream = await rawUpstream((req, respond) => respond(okResponse(`ok ${req.url}`)));
  const lb = await startHttp(httpConfig([httpServer({})], [httpGroup('app', [server(upstream.port)])]));
  try {
    await body(lb.port);
  } finally {
    await lb.close();
    await upstream.close();
  }
}

/** `n` connections with one answered request each. */
async function burst(port: number, n: number, tag: string): Promise<RawClient[]> {
  const clients = await Promise.all(Array.from({ length: n }, () => RawClient.open(port)));
  await Promise.all(
    clients.map(async (c, i) => {
      c.send(get(`/${tag}${i}`));
      const res = await c.response();
      assert.equal(res.status, 200);
      assert.equal(res.body.toString(), `ok /${tag}${i}`);
    }),
  );
  return clients;
}

test('a burst gone idle is reclaimed once (two passes); every parked connection is served after it; a second burst within the interval is not', async () => {
  if (!bareHandlesAvailable()) return;
  Object.assign(reclaiming, { minParks: 40, quietMs: 300, secondPassMs: 300, minIntervalMs: 60_000 });
  await withProxy(async (port) => {
    const runs = reclaimCounts.runs;
    const seconds = reclaimCounts.secondPasses;
    const parks = parkingCounts.parks;
    const clients = await burst(port, 50, 'a');
    await until(() => parkingCounts.parks >= parks + 50, 'the burst parked');
    await until(() => reclaimCounts.runs > runs, 'memory reclaimed');
    assert.equal(reclaimCounts.runs, runs + 1);
    const last = reclaimCounts.last!;
    assert.equal(last.gc, true, 'no V8 collection ran');
    if (process.platform === 'linux') assert.equal(last.trimmed, true, 'malloc_trim did not run');
    // Its second pass, still quiet.
    await until(() => reclaimCounts.secondPasses > seconds, 'second pass');
    assert.equal(reclaimCounts.secondPasses, seconds + 1);
    assert.equal(parkingCounts.parked, 50, 'a parked connection was lost');
    // Every connection parked through the reclaim is read and answered as before.
    await Promise.all(
      clients.map(async (c, i) => {
        c.send(get(`/b${i}`));
        const res = await c.response();
        assert.equal(res.status, 200);
        assert.equal(res.body.toString(), `ok /b${i}`);
        assert.equal(res.headers.connection, 'keep-alive');
      }),
    );
    // A second burst, parked and quiet, within minIntervalMs: not reclaimed again.
    const more = await burst(port, 50, 'c');
    await until(() => parkingCounts.parked === 100, 'both bursts parked');
    // Quiet for more than three times quietMs: a second run would have come by now.
    await sleep(1_000);
    assert.equal(reclaimCounts.runs, runs + 1, 'reclaimed twice within minIntervalMs');
    for (const c of [...clients, ...more]) c.close();
    await until(() => liveConnections() === 0, 'connection count back to 0');
  });
});

test('no reclaim while connections keep waking (not quiet), nor under keep-alive load; one once quiet', async () => {
  if (!bareHandlesAvailable()) return;
  Object.assign(reclaiming, { minParks: 20, quietMs: 600, secondPassMs: 60_000, minIntervalMs: 0 });
  await withProxy(async (port) => {
    const clients = await burst(port, 20, 'a');
    const runs = reclaimCounts.runs;
    await until(() => parkingCounts.parked === 20, 'the burst parked');
    // One connection wakes every 150 ms for 1.8 s (each wake and park again is activity): never quiet for 600 ms.
    const end = Date.now() + 1_800;
    for (let i = 0; Date.now() < end; i++) {
      const c = clients[i % clients.length]!;
      c.send(get(`/w${i}`));
      assert.equal((await c.response()).status, 200);
      await sleep(150);
    }
    assert.equal(reclaimCounts.runs, runs, 'reclaimed while connections kept waking');
    // Keep-alive load on all of them for 1 s (bounded: 300 requests each): nothing parks, nothing reclaims.
    const loadEnd = Date.now() + 1_000;
    const before = reclaimCounts.runs;
    await Promise.all(
      clients.map(async (c) => {
        for (let i = 0; i < 300 && Date.now() < loadEnd; i++) {
          c.send(get(`/l${i}`));
          assert.equal((await c.response()).status, 200);
        }
      }),
    );
    assert.equal(reclaimCounts.runs, before, 'reclaimed under keep-alive load');
    // Quiet now: the connections park again and the burst is reclaimed.
    await until(() => reclaimCounts.runs > before, 'memory reclaimed once quiet');
    for (const c of clients) {
      c.send(get('/z'));
      assert.equal((await c.response()).status, 200);
      c.close();
    }
    await until(() => liveConnections() === 0, 'connection count back to 0');
  });
});
