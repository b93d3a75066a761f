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
  d.touch();
  // Touched every 100 ms for 1.2 s: three times the period, never idle for it.
  let lastTouch = Date.now();
  while (Date.now() - start < 1200) {
    await sleep(100);
    assert.equal(e.count(), 0, `expired while touched (at ${Date.now() - start} ms)`);
    d.touch();
    lastTouch = Date.now();
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

test('a disarmed deadline never expires, and re-armed it expires once at its new time', async () => {
  const start = Date.now();
  const e = expiry(start);
  const d = e.deadline();
  d.arm(200);
  d.disarm();
  assert.equal(d.armed, false);
  // Past the first deadline (2x): the timer that stayed fired and found nothing armed.
  await sleep(400);
  assert.equal(e.count(), 0, 'a disarmed deadline does not expire');
  const rearmedAt = Date.now() - start;
  d.arm(300);
  const at = await e.fired;
  assert.ok(at - rearmedAt >= 300, `expired ${at - rearmedAt} ms after re-arming for 300`);
  await sleep(300);
  assert.equal(e.count(), 1, 'expires once');
});
