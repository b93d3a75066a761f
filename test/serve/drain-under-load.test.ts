/**
 * A graceful stop the load balancer never notices, on a real `keepwire
 * serve` process: SIGQUIT with `shutdown_delay 2s` while keep-alive clients
 * loop GETs through it and a health checker polls a `health;` location, the
 * way an LB does. For the delay the process keeps accepting and serving, the
 * health location answers 503 and every response says `Connection: close`;
 * the checker marks the instance unhealthy (interval 200 ms × threshold 2,
 * well inside the delay), the clients stop sending to it, and each leaves its
 * connection after a response that said `Connection: close`. Then the
 * listener closes, the drain ends and the process exits: not one client saw
 * an error (no reset, no 5xx, no request without its response).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fetchRaw, get, okResponse, RawClient, rawUpstream } from '../proxy/http/fixtures.js';
import { closedPort, type LogLine, serveCli, sleep, within } from '../support.js';

const DELAY_MS = 2000;
const CHECK_INTERVAL_MS = 200;
const UNHEALTHY_THRESHOLD = 2;
const CLIENTS = 4;
/** Bounds on each client's loop. */
const MAX_REQUESTS = 5000;
const MAX_LOOP_MS = 60_000;

function conf(port: number, upstreamPort: number): string {
  return `worker_shutdown_timeout 10s;
shutdown_delay ${DELAY_MS}ms;
http {
    upstream app { server 127.0.0.1:${upstreamPort}; keepalive 8; }
    server {
        listen 127.0.0.1:${port};
        keepalive_timeout 30s;
        location / { proxy_pass http://app; proxy_http_version 1.1; }
        location /health { health; }
    }
}
`;
}

interface ClientStats {
  sent: number;
  ok: number;
  /** 200 responses that said `Connection: close` (the drain telling the client to leave). */
  closing: number;
  errors: string[];
}

/** The health checker of an LB: a fresh connection per check, as ALB/NLB checks are. */
class HealthChecker {
  readonly seen: { status: number; body: string; cacheControl: string | undefined; at: number }[] = [];
  inRotation = true;
  private failures = 0;
  private stopped = false;
  readonly done: Promise<void>;

  constructor(port: number) {
    this.done = this.run(port);
  }

  private async run(port: number): Promise<void> {
    const deadline = Date.now() + MAX_LOOP_MS;
    while (!this.stopped && Date.now() < deadline) {
      const res = await fetchRaw(port, get('/health'), 5000);
      this.seen.push({
        status: res.status,
        body: res.body.toString(),
        cacheControl: res.headers['cache-control'],
        at: Date.now(),
      });
      this.failures = res.status === 200 ? 0 : this.failures + 1;
      // Deregistered: the LB sends this instance no more requests.
      if (this.failures >= UNHEALTHY_THRESHOLD) {
        this.inRotation = false;
        return;
      }
      await sleep(CHECK_INTERVAL_MS);
    }
  }

  stop(): void {
    this.stopped = true;
  }
}

/**
 * A keep-alive client behind the LB: GETs in a loop on one connection while
 * the instance is in rotation; after a response with `Connection: close` it
 * waits for the server's close and opens a new connection (only while still
 * in rotation).
 */
async function client(
  id: number,
  port: number,
  inRotation: () => boolean,
  stats: ClientStats,
  progress: () => void,
): Promise<void> {
  const deadline = Date.now() + MAX_LOOP_MS;
  let c: RawClient | undefined;
  for (let n = 0; n < MAX_REQUESTS && Date.now() < deadline && inRotation(); n++) {
    try {
      c ??= await RawClient.open(port);
      const path = `/c${id}/${n}`;
      stats.sent++;
      c.send(get(path));
      const res = await c.response({ timeoutMs: 10_000 });
      if (res.status !== 200 || res.body.toString() !== `up ${path}`)
        stats.errors.push(`${path}: ${res.status} ${res.body.toString()}`);
      else stats.ok++;
      if (res.headers.connection === 'close') {
        stats.closing++;
        await c.waitClosed(10_000);
        c.close();
        c = undefined;
      }
    } catch (error) {
      stats.errors.push(`c${id}/${n}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      c?.close();
      c = undefined;
    }
    progress();
  }
  // The LB closes its idle connection to a deregistered target itself.
  c?.close();
}

test('SIGQUIT with shutdown_delay under keep-alive load: health flips to 503, clients leave on Connection: close, zero errors, then exit', async (t) => {
  const up = await rawUpstream((req, respond) => respond(okResponse(`up ${req.url}`)));
  t.after(() => up.close());
  const port = await closedPort();
  const serve = serveCli(t, conf(port, up.port));
  await serve.waitFor((l) => l.msg === 'started', 'started', 15_000);

  const checker = new HealthChecker(port);
  t.after(() => checker.stop());
  await within(
    (async () => {
      while (checker.seen.length === 0) await sleep(20);
    })(),
    10_000,
    'the first health check',
  );
  assert.deepEqual(
    { ...checker.seen[0], at: 0 },
    { status: 200, body: 'ok\n', cacheControl: 'no-store', at: 0 },
  );

  const stats: ClientStats[] = [];
  let total = 0;
  let wake: (() => void) | undefined;
  const progress = () => {
    total++;
    wake?.();
  };
  const loops: Promise<void>[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const s: ClientStats = { sent: 0, ok: 0, closing: 0, errors: [] };
    stats.push(s);
    loops.push(client(i, port, () => checker.inRotation, s, progress));
  }
  // Load running on every client before the signal.
  await within(
    (async () => {
      while (stats.some((s) => s.ok < 20))
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
    })(),
    20_000,
    'every client under way',
  );
  const before = total;
  const signalled = Date.now();
  serve.child.kill('SIGQUIT');

  await within(Promise.all(loops), MAX_LOOP_MS + 10_000, 'the clients to finish');
  await within(checker.done, 20_000, 'the health checker to mark the instance unhealthy');
  const code = await within(serve.exited, 20_000, 'exit after the drain');

  const errors = stats.flatMap((s) => s.errors);
  assert.deepEqual(errors, [], 'no client-visible error');
  for (const s of stats) assert.equal(s.ok, s.sent, 'every request sent was answered');
  assert.ok(total > before, 'requests were served after the signal (during shutdown_delay)');
  assert.ok(
    stats.every((s) => s.closing >= 1),
    `every client was told to leave with Connection: close (${stats.map((s) => s.closing)})`,
  );

  // Health: 200 before the signal, 503 "draining" after, never back.
  const statuses = checker.seen.map((h) => h.status);
  const firstDown = statuses.indexOf(503);
  assert.ok(firstDown > 0, `health went from 200 to 503: ${statuses}`);
  assert.ok(statuses.slice(0, firstDown).every((s) => s === 200));
  assert.ok(statuses.slice(firstDown).every((s) => s === 503));
  const down = checker.seen[firstDown]!;
  assert.equal(down.body, 'draining\n');
  assert.equal(down.cacheControl, 'no-store');
  assert.ok(down.at >= signalled);
  // Deregistered within the delay: the 503s came on new connections, so the listener was still accepting.
  assert.ok(
    checker.seen.at(-1)!.at - signalled < DELAY_MS,
    `unhealthy ${checker.seen.at(-1)!.at - signalled} ms after the signal, inside the delay`,
  );

  // The phases, in order, then exit 0 with nothing reset.
  assert.equal(code, 0);
  const phase = (msg: string): LogLine => {
    const line = serve.lines.find((l) => l.msg === msg);
    assert.ok(line, `${msg} line`);
    return line;
  };
  const delay = phase('shutdown delay');
  const over = phase('shutdown delay over');
  const draining = phase('draining');
  const stopped = phase('stopped');
  assert.equal(delay.delayMs, DELAY_MS);
  const at = (l: LogLine) => Date.parse(String(l.time));
  assert.ok(at(over) - at(delay) >= DELAY_MS - 20, `delay of ${at(over) - at(delay)} ms`);
  assert.ok(at(draining) >= at(over));
  assert.ok(at(stopped) >= at(draining));
  assert.equal(stopped.reset, 0);
  const index = (l: LogLine) => serve.lines.indexOf(l);
  assert.ok(index(delay) < index(over) && index(over) < index(draining) && index(draining) < index(stopped));
  // No request logged with a 5xx.
  const bad = serve.lines.filter(
    (l) => l.msg === 'request' && Number(l.status) >= 500 && l.path !== '/health',
  );
  assert.deepEqual(bad, []);
});

test('SIGTERM (fast stop) skips shutdown_delay: the listener closes at once', async (t) => {
  const up = await rawUpstream((req, respond) => respond(okResponse(`up ${req.url}`)));
  t.after(() => up.close());
  const port = await closedPort();
  const serve = serveCli(t, conf(port, up.port).replace(`${DELAY_MS}ms`, '30s'));
  await serve.waitFor((l) => l.msg === 'started', 'started', 15_000);
  const res = await fetchRaw(port, get('/health'));
  assert.equal(res.status, 200);
  const signalled = Date.now();
  serve.child.kill('SIGTERM');
  assert.equal(await within(serve.exited, 10_000, 'exit without the 30 s delay'), 0);
  assert.ok(Date.now() - signalled < 10_000);
  assert.equal(
    serve.lines.some((l) => l.msg === 'shutdown delay'),
    false,
  );
  assert.ok(serve.lines.some((l) => l.msg === 'stopped'));
});
