import assert from 'node:assert/strict';
import { test } from 'node:test';
import { srv, tally, upstream } from './fixtures.js';

test('weights 5:3:2 get 50/30/20 % of 10k picks', () => {
  const u = upstream([srv(1, { weight: 5 }), srv(2, { weight: 3 }), srv(3, { weight: 2 })]);
  const counts = tally(u, 10_000);
  // Smooth WRR is deterministic: the split is exact over whole cycles of 10.
  assert.equal(counts.get(10_001), 5000);
  assert.equal(counts.get(10_002), 3000);
  assert.equal(counts.get(10_003), 2000);
});

test('the order is smooth like nginx: weights 5,1,1 give a a b a c a a', () => {
  const u = upstream([srv(1, { weight: 5 }), srv(2), srv(3)]);
  const names = Array.from(
    { length: 7 },
    () => ({ 10001: 'a', 10002: 'b', 10003: 'c' })[u.pick({})!.address.port],
  );
  assert.deepEqual(names, ['a', 'a', 'b', 'a', 'c', 'a', 'a']);
});

test('a down server is never picked', () => {
  const u = upstream([srv(1), srv(2, { down: true }), srv(3)]);
  const counts = tally(u, 1000);
  assert.equal(counts.get(10_002), undefined);
  assert.equal(counts.get(10_001), 500);
});

test('no usable server: pick returns undefined', () => {
  const u = upstream([srv(1, { down: true })]);
  assert.equal(u.pick({}), undefined);
});
