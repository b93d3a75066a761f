import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Deadline } from '../../src/proxy/deadline.js';

/** Resolves with the time onExpire ran, measured from `start`. */
function expiry(start: number): {
  deadline: (period?: number) => Deadline<object>;
  fired: Promise<number>;
  count: () => number;
} {
  let n = 0;
  let resolve: (ms: number) => void = () => {};
  const fired = new Promise<number>((r) => {
    resolve = r;
  });
  const owner = {};
  return {
    deadline: (period = 0) =>
      new Deadline(
        owner,
        function (this: object) {
          assert.equal(this, owner, 'onExpire runs with the owner as this');
          n++;
          resolve(Date.now() - start);
        },
        period,
      ),
    fired,
    count: () => n,
  };
}

test('a deadline armed and left alone expires once, not before its time', async () => {
  const start = Date.now();
  const e = expiry(start);
  const d = e.deadline();
  d.arm(300);
  assert.equal(d.armed, true);
  const at = await e.fired;
  assert.ok(at >= 300, `expired after ${at} ms, armed for 300`);
  assert.equal(d.armed, false);
  await sleep(400);
  assert.equal(e.count(), 1, 'expires once');
});

test('touching keeps a deadline alive; it expires a full period after the last touch', async () => {
  const start = Date.now();
  const e = expiry(start);
  const d = e.deadline(400);
  // Each touch's time is read before it, never after: a preemption between the two
  // (a loaded machine) would otherwise make the deadline look early.
  let lastTouch = Date.now();
  d.touch();
  // Touched every 100 ms for 1.2 s: three times the period, never idle for it.
  while (Date.now() - start < 1200) {
    await sleep(100);
    assert.equal(e.count(), 0, `expired while touched (at ${Date.now() - start} ms)`);
    lastTouch = Date.now();
    d.touch();
  }
  const at = await e.fired;
  assert.ok(
    at - (lastTouch - start) >= 400,
    `expired ${at - (lastTouch - start)} ms after the last touch, period 400`,
  );
  assert.equal(e.count(), 1);
});

test('arming sooner than the running timer moves the timer earlier', async () => {
  const start = Date.now();
  const e = expiry(start);
  const d = e.deadline();
  d.arm(5000);
  d.arm(300);
  const at = await Promise.race([e.fired, sleep(2500).then(() => -1)]);
  assert.notEqual(at, -1, 'the sooner deadline did not fire: the timer kept the later time');
  assert.ok(at >= 300, `expired after ${at} ms`);
  d.cancel();
});

test('a cancelled deadline never expires, and a period of 0 means no timeout', async () => {
  const e = expiry(Date.now());
  const d = e.deadline();
  d.arm(200);
  d.cancel();
  const none = e.deadline(0);
  none.touch();
  assert.equal(none.armed, false);
  await sleep(600);
  assert.equal(e.count(), 0);
});

test('re-armed after expiry, a deadline expires again', async () => {
  let n = 0;
  const owner = { hits: 0 };
  const d = new Deadline(
    owner,
    function (this: typeof owner) {
      this.hits++;
      n++;
    },
    200,
  );
  d.touch();
  await sleep(600);
  assert.equal(n, 1);
  d.touch();
  await sleep(600);
  assert.equal(n, 2);
  assert.equal(owner.hits, 2);
});

test('deadlines sharing a period expire in the order they fall, each once', async () => {
  const order: number[] = [];
  const owners = [0, 1, 2, 3].map((i) => ({ i }));
  const deadlines = owners.map(
    (o) =>
      new Deadline(o, function (this: { i: number }) {
        order.push(this.i);
      }),
  );
  // Same period, armed 150 ms apart: one list, one Node timer for all.
  for (const d of deadlines) {
    d.arm(300);
    await sleep(150);
  }
  await sleep(300 + 2 * 300);
  assert.deepEqual(order, [0, 1, 2, 3]);
});

test('touching a deadline that is not last in its list moves it behind the later ones', async () => {
  const start = Date.now();
  const fired = new Map<string, number>();
  const make = (name: string) =>
    new Deadline(
      { name },
      function (this: { name: string }) {
        fired.set(this.name, Date.now() - start);
      },
      400,
    );
  const a = make('a');
  const b = make('b');
  a.touch();
  b.touch();
  // a is first in the list; touched again it must not expire at its old time.
  await sleep(200);
  // Read before the touch (see above: after it, a preemption would make a look early).
  const touchedAt = Date.now() - start;
  a.touch();
  await sleep(400 + 2 * 400);
  const atA = fired.get('a');
  const atB = fired.get('b');
  assert.ok(atA !== undefined && atB !== undefined, `both expire (a ${atA}, b ${atB})`);
  assert.ok(atB >= 400, `b expired after ${atB} ms, period 400`);
  assert.ok(atA - touchedAt >= 400, `a expired ${atA - touchedAt} ms after its touch, period 400`);
  assert.ok(atA >= atB, `a (touched later) expired at ${atA} ms, before b at ${atB} ms`);
});

test('cancelling one deadline of a list leaves the others to expire', async () => {
  const hits: string[] = [];
  const make = (name: string) =>
    new Deadline({ name }, function (this: { name: string }) {
      hits.push(this.name);
    });
  const a = make('a');
  const b = make('b');
  const c = make('c');
  a.arm(250);
  b.arm(250);
  c.arm(250);
  b.cancel();
  a.cancel();
  assert.equal(a.armed, false);
  assert.equal(a.left, undefined);
  await sleep(250 + 2 * 250);
  assert.deepEqual(hits, ['c']);
});

test('a deadline re-armed from its own onExpire expires again (also for 0 ms)', async () => {
  let n = 0;
  const owner = {};
  const d: Deadline<object> = new Deadline(owner, () => {
    n++;
    if (n < 3) d.arm(0);
  });
  d.arm(0);
  await sleep(500);
  assert.equal(n, 3);
  assert.equal(d.armed, false);
});

/** How long a child process that arms one deadline (background or not) for `ms` (and cancels it, if asked) lives, in ms. */
async function lifetime(background: boolean, ms: number, cancel = false): Promise<number> {
  const { spawn } = await import('node:child_process');
  const url = new URL('../../src/proxy/deadline.js', import.meta.url).href;
  const code = `import { Deadline } from ${JSON.stringify(url)};
const d = new Deadline({}, () => {}, 0, ${background});
d.arm(${ms});
if (${cancel}) setTimeout(() => d.cancel(), 200);`;
  const start = Date.now();
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: 'inherit' });
  const status = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  assert.equal(status, 0);
  return Date.now() - start;
}

test('a background deadline does not keep the process alive; a foreground one does', async () => {
  const foreground = await lifetime(false, 1500);
  assert.ok(foreground >= 1500, `the process exited after ${foreground} ms with a 1500 ms deadline armed`);
  // The same process start with a background deadline of 20 s: it ends long before.
  const background = await lifetime(true, 20_000);
  assert.ok(background < 10_000, `the process lived ${background} ms with only a background deadline`);
});

test('a cancelled deadline does not keep the process alive (its list may keep a timer, unreferenced)', async () => {
  const lived = await lifetime(false, 20_000, true);
  assert.ok(lived < 10_000, `the process lived ${lived} ms after its only deadline (20 s) was cancelled`);
});

test('a cancelled deadline never expires, and re-armed it expires once at its new time', async () => {
  const start = Date.now();
  const e = expiry(start);
  const d = e.deadline();
  d.arm(200);
  d.cancel();
  assert.equal(d.armed, false);
  // Past the first deadline (2x): nothing armed, nothing expires.
  await sleep(400);
  assert.equal(e.count(), 0, 'a cancelled deadline does not expire');
  const rearmedAt = Date.now() - start;
  d.arm(300);
  const at = await e.fired;
  assert.ok(at - rearmedAt >= 300, `expired ${at - rearmedAt} ms after re-arming for 300`);
  await sleep(300);
  assert.equal(e.count(), 1, 'expires once');
});
