/**
 * The Generation lifecycle in one process (Runtime), the part that master and
 * worker processes reuse: reloads (Runtime.apply twice) leave each old
 * generation's keep-alive connections open until their next response, which
 * says `Connection: close`, then close them, with no client error; the
 * old generation's `health` still answers 200 (the process is not stopping).
 * Runtime.shutdown with a delay keeps accepting and serving, answers
 * `health` with 503 `draining` and `Connection: close` on every response,
 * and resolves with nothing reset.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HttpLogRecord, RequestRecord } from '../../src/proxy/http/index.js';
import { Runtime } from '../../src/serve/index.js';
import { modelFromText } from '../model-text.js';
import { get, RawClient } from '../proxy/http/fixtures.js';
import { closedPort, sleep, within } from '../support.js';

function conf(port: number, answer: string, delay = '0') {
  return modelFromText(`worker_shutdown_timeout 10s;
shutdown_delay ${delay};
http {
    server {
        listen 127.0.0.1:${port};
        keepalive_timeout 30s;
        location / { return 200 "${answer}"; }
        location /health { health; }
    }
}
`);
}

/** A keep-alive client that records any socket error (none may happen). */
async function open(port: number, errors: string[]): Promise<RawClient> {
  const c = await RawClient.open(port);
  c.socket.on('error', (e: NodeJS.ErrnoException) => errors.push(e.code ?? e.message));
  return c;
}

async function ask(c: RawClient, path: string): Promise<{ text: string; close: boolean; cache?: string }> {
  c.send(get(path));
  const r = await c.response({ timeoutMs: 10_000 });
  return {
    text: `${r.status} ${r.body.toString()}`,
    close: r.headers.connection === 'close',
    ...(r.headers['cache-control'] !== undefined && { cache: r.headers['cache-control'] }),
  };
}

test('reloads: old-generation keep-alive connections get Connection: close on their next response, then close; health stays 200', async () => {
  const port = await closedPort();
  const records: HttpLogRecord[] = [];
  const runtime = new Runtime({ sessionLog: () => {}, httpLog: (r) => records.push(r) });
  const errors: string[] = [];
  const clients: RawClient[] = [];
  try {
    await runtime.apply(conf(port, 'a'));
    const a1 = await open(port, errors);
    const a2 = await open(port, errors);
    clients.push(a1, a2);
    assert.deepEqual(await ask(a1, '/'), { text: '200 a', close: false });
    assert.deepEqual(await ask(a2, '/health'), { text: '200 ok\n', close: false, cache: 'no-store' });

    await runtime.apply(conf(port, 'b'));
    const b1 = await open(port, errors);
    clients.push(b1);
    assert.deepEqual(await ask(b1, '/'), { text: '200 b', close: false }, 'the new generation keeps alive');
    assert.equal(a1.closed || a2.closed, false, 'the reload closed no old connection');
    // The old generation answers, says it closes, and closes.
    assert.deepEqual(await ask(a1, '/'), { text: '200 a', close: true });
    assert.deepEqual(
      await ask(a2, '/health'),
      { text: '200 ok\n', close: true, cache: 'no-store' },
      'a reload is not a stop: health stays 200',
    );
    await a1.waitClosed(5000);
    await a2.waitClosed(5000);

    // A second reload: the generation of b is now the old one.
    await runtime.apply(conf(port, 'c'));
    assert.equal(b1.closed, false);
    assert.deepEqual(await ask(b1, '/'), { text: '200 b', close: true });
    await b1.waitClosed(5000);
    const c1 = await open(port, errors);
    clients.push(c1);
    assert.deepEqual(await ask(c1, '/'), { text: '200 c', close: false });
    // Both old generations drained and were dropped: only c1 is live.
    await within(
      (async () => {
        while (runtime.sessionCount !== 1) await sleep(10);
      })(),
      5000,
      'only c1 live',
    );
    assert.deepEqual(errors, []);
  } finally {
    for (const c of clients) c.close();
    await runtime.shutdown(0, 0);
  }
});

test('Runtime.shutdown with a delay: still accepting and serving, health 503 draining, Connection: close, nothing reset', async () => {
  const port = await closedPort();
  const records: HttpLogRecord[] = [];
  const events: string[] = [];
  const runtime = new Runtime({
    sessionLog: () => {},
    httpLog: (r) => records.push(r),
    event: (msg) => events.push(msg),
  });
  const errors: string[] = [];
  const clients: RawClient[] = [];
  let stopping: Promise<{ drained: number; reset: number }> | undefined;
  try {
    await runtime.apply(conf(port, 'a', '3s'));
    const kept = await open(port, errors);
    clients.push(kept);
    assert.deepEqual(await ask(kept, '/'), { text: '200 a', close: false });

    stopping = runtime.shutdown(10_000);
    assert.deepEqual(events.slice(-1), ['shutdown delay']);
    // During the delay a new connection is accepted; health says draining.
    const fresh = await open(port, errors);
    clients.push(fresh);
    assert.deepEqual(await ask(fresh, '/health'), { text: '503 draining\n', close: true, cache: 'no-store' });
    await fresh.waitClosed(5000);
    // The kept-alive connection is served and told to leave.
    assert.deepEqual(await ask(kept, '/'), { text: '200 a', close: true });
    await kept.waitClosed(5000);
    assert.equal(events.includes('draining'), false, 'still inside the delay');

    const result = await within(stopping, 15_000, 'shutdown');
    assert.deepEqual(result, { drained: 0, reset: 0 });
    assert.deepEqual(events.slice(-4), ['shutdown delay', 'shutdown delay over', 'draining', 'stopped']);
    const health = records.find(
      (r): r is RequestRecord => r.msg === 'request' && r.path === '/health' && r.status === 503,
    );
    assert.equal(health?.reason, 'local', 'a 503 of the drain is logged as a local answer');
    assert.deepEqual(errors, []);
  } finally {
    for (const c of clients) c.close();
    if (stopping === undefined) await runtime.shutdown(0, 0);
  }
});

test("Runtime.shutdown of a reload's old generation: the same delay and Connection: close, but health stays 200", async () => {
  const port = await closedPort();
  const runtime = new Runtime({ sessionLog: () => {} });
  const errors: string[] = [];
  await runtime.apply(conf(port, 'a', '1s'));
  const stopping = runtime.shutdown(10_000, undefined, 'reload');
  const c = await open(port, errors);
  try {
    assert.deepEqual(await ask(c, '/health'), { text: '200 ok\n', close: true, cache: 'no-store' });
    await c.waitClosed(5000);
  } finally {
    c.close();
  }
  assert.deepEqual(await within(stopping, 15_000, 'shutdown'), { drained: 0, reset: 0 });
  assert.deepEqual(errors, []);
});

test('terminateAll (a second stop signal) ends a shutdown_delay at once', async () => {
  const port = await closedPort();
  const runtime = new Runtime({ sessionLog: () => {} });
  await runtime.apply(conf(port, 'a', '60s'));
  const started = Date.now();
  const stopping = runtime.shutdown(10_000);
  runtime.terminateAll();
  await within(stopping, 5000, 'shutdown after terminateAll');
  assert.ok(Date.now() - started < 5000);
});
