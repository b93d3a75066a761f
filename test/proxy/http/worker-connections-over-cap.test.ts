/**
 * Over `worker_connections` the HTTP proxy closes a new connection at once
 * (never queued), as nginx does, and says so as nginx does ("worker_connections
 * are not enough"): one log line for the first refusal, then at most one per
 * period with the count.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RefusedRecord } from '../../../src/proxy/http/index.js';
import { REFUSED_LOG_PERIOD_MS } from '../../../src/proxy/http/server.js';
import { get, httpConfig, httpServer, location, RawClient, sleep, startHttp } from './fixtures.js';

test('over worker_connections a new connection is closed at once and the refusals are logged with a count', async () => {
  const lb = await startHttp(
    httpConfig(
      [httpServer({ locations: [location({ returnDirective: { code: 200, text: 'ok\n' } })] })],
      [],
      { workerConnections: 2 },
    ),
  );
  const held: RawClient[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const c = await RawClient.open(lb.port);
      c.send(get('/'));
      assert.equal((await c.response()).status, 200);
      held.push(c);
    }
    for (let i = 0; i < 3; i++) {
      const c = await RawClient.open(lb.port);
      c.send(get('/'));
      await c.waitClosed(5_000);
      await assert.rejects(c.response({ timeoutMs: 1_000 }), 'no answer over the cap');
      c.close();
    }
    const refused = () =>
      lb.records.filter((r): r is RefusedRecord => r.msg === 'worker_connections are not enough');
    const deadline = Date.now() + 3 * REFUSED_LOG_PERIOD_MS + 2_000;
    while (refused().reduce((n, r) => n + r.refused, 0) < 3 && Date.now() < deadline) await sleep(20);
    const lines = refused();
    assert.equal(
      lines.reduce((n, r) => n + r.refused, 0),
      3,
    );
    assert.ok(lines.length <= 2, `${lines.length} lines for 3 refusals within one period`);
    assert.equal(lines[0]!.refused, 1, 'the first refusal is logged at once');
    assert.equal(lines[0]!.workerConnections, 2);
    // The held connections are still served.
    held[0]!.send(get('/'));
    assert.equal((await held[0]!.response()).status, 200);
  } finally {
    for (const c of held) c.close();
    await lb.close();
  }
});
