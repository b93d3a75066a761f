/**
 * Idle HTTP keep-alive client connections at a graceful stop, on a real
 * `keepwire serve` process. HTTP/1.1 cannot tell a client "send nothing more
 * on this connection" except in a response, so closing an idle connection
 * resets whatever request the client is writing on it at that moment. nginx
 * does that on graceful stop (ngx_close_idle_connections); keepwire closes
 * an idle connection only right after a response that said `Connection:
 * close`, or once it has been idle for its keepalive_timeout (which the
 * client must expect anyway). A connection idle when the drain starts that
 * then sends a request gets it answered, with `Connection: close`.
 *
 * The race test fails on the old code (idle connections closed at the
 * drain): a request written as the stop begins met a closed connection.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { get, RawClient } from '../proxy/http/fixtures.js';
import { closedPort, serveCli, within } from '../support.js';

const KEEPALIVE_MS = 3000;

function conf(port: number, grace = '20s', keepalive = `${KEEPALIVE_MS}ms`): string {
  return `worker_shutdown_timeout ${grace};
http {
    server {
        listen 127.0.0.1:${port};
        keepalive_timeout ${keepalive};
        location / { return 200 "hi"; }
    }
}
`;
}

/** A connection that made one request and is now idle; `at` is when its keep-alive response arrived. */
async function idleConnection(port: number): Promise<{ c: RawClient; at: number }> {
  const c = await RawClient.open(port);
  c.send(get('/first'));
  const res = await c.response();
  assert.equal(res.status, 200);
  assert.notEqual(res.headers.connection, 'close');
  return { c, at: Date.now() };
}

/** When the server closes `c` (its FIN), or the error that ended it. */
function closing(c: RawClient): Promise<{ at: number; error?: string }> {
  return new Promise((resolve) => {
    c.socket.once('error', (e: NodeJS.ErrnoException) =>
      resolve({ at: Date.now(), error: e.code ?? e.message }),
    );
    c.socket.once('end', () => resolve({ at: Date.now() }));
  });
}

test('graceful stop: an idle keep-alive connection stays open until its keepalive_timeout; one that sends a request during the drain is answered with Connection: close', async (t) => {
  const port = await closedPort();
  const serve = serveCli(t, conf(port));
  await serve.waitFor((l) => l.msg === 'started', 'started', 15_000);
  const quiet = await idleConnection(port);
  const active = await idleConnection(port);
  t.after(() => {
    quiet.c.close();
    active.c.close();
  });
  const quietClosed = closing(quiet.c);

  serve.child.kill('SIGQUIT');
  await serve.waitFor((l) => l.msg === 'draining', 'draining line');
  assert.equal(quiet.c.closed, false, 'not closed at the drain');
  assert.equal(active.c.closed, false, 'not closed at the drain');

  // The client of `active` sends its next request as the drain is under way.
  active.c.send(get('/during-drain'));
  const res = await active.c.response({ timeoutMs: 10_000 });
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), 'hi');
  assert.equal(res.headers.connection, 'close', 'told to leave');
  await active.c.waitClosed(10_000);

  // `quiet` sends nothing: it is closed at its keepalive_timeout, not before.
  const closed = await within(quietClosed, KEEPALIVE_MS + 10_000, 'the idle connection to close');
  assert.equal(closed.error, undefined, 'closed with a FIN');
  assert.ok(
    closed.at - quiet.at >= KEEPALIVE_MS - 50,
    `closed ${closed.at - quiet.at} ms after its last response, keepalive_timeout is ${KEEPALIVE_MS} ms`,
  );
  assert.equal(await within(serve.exited, 10_000, 'exit once both connections closed'), 0);
  const stopped = serve.lines.find((l) => l.msg === 'stopped');
  assert.deepEqual([stopped?.drained, stopped?.reset], [2, 0]);
});

test('graceful stop: requests written on idle keep-alive connections just as the stop begins are answered, none reset', async (t) => {
  const port = await closedPort();
  const serve = serveCli(t, conf(port));
  await serve.waitFor((l) => l.msg === 'started', 'started', 15_000);
  const N = 10;
  const idle = await Promise.all(Array.from({ length: N }, () => idleConnection(port)));
  t.after(() => {
    for (const { c } of idle) c.close();
  });
  const results: Promise<string>[] = [];
  const ask = (c: RawClient, path: string) => {
    c.send(get(path));
    results.push(
      c.response({ timeoutMs: 10_000 }).then(
        (r) => `${r.status} ${r.body.toString()} connection=${r.headers.connection}`,
        (e: NodeJS.ErrnoException) => `error ${e.code ?? e.message}`,
      ),
    );
  };
  // Half race the signal itself; the other half are written once the
  // process has begun draining (where the old code had closed every idle
  // connection: a client that had not yet read that FIN wrote into it).
  serve.child.kill('SIGQUIT');
  for (const [i, { c }] of idle.slice(0, N / 2).entries()) ask(c, `/race-${i}`);
  await serve.waitFor((l) => l.msg === 'draining', 'draining line');
  for (const [i, { c }] of idle.slice(N / 2).entries()) ask(c, `/after-${i}`);
  const answers = await Promise.all(results);
  // A request of the first half that reached the process before it took the
  // signal is answered with keep-alive (that connection then closes at its
  // keepalive_timeout); any other is answered with Connection: close. None fails.
  for (const a of answers.slice(0, N / 2)) assert.match(a, /^200 hi connection=(close|keep-alive)$/);
  assert.deepEqual(answers.slice(N / 2), Array(N / 2).fill('200 hi connection=close'));
  await within(
    Promise.all(idle.map(({ c }) => (c.closed ? Promise.resolve() : once(c.socket, 'close')))),
    KEEPALIVE_MS + 10_000,
    'every connection closed: after its Connection: close response, or at keepalive_timeout',
  );
  assert.equal(await within(serve.exited, 10_000, 'exit'), 0);
  const stopped = serve.lines.find((l) => l.msg === 'stopped');
  assert.equal(stopped?.reset, 0);
});

test('the idle wait is bounded by worker_shutdown_timeout: a keepalive_timeout longer than it does not hold the process', async (t) => {
  const port = await closedPort();
  const serve = serveCli(t, conf(port, '1s', '60s'));
  await serve.waitFor((l) => l.msg === 'started', 'started', 15_000);
  const { c } = await idleConnection(port);
  t.after(() => c.close());
  const signalled = Date.now();
  serve.child.kill('SIGQUIT');
  assert.equal(await within(serve.exited, 10_000, 'exit at the grace deadline'), 0);
  const took = Date.now() - signalled;
  assert.ok(took >= 900 && took < 10_000, `exited ${took} ms after SIGQUIT (grace 1 s)`);
  await c.waitClosed(5000);
});
