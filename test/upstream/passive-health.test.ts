import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PassiveHealth } from '../../src/upstream/health.js';
import { srv, upstream } from './fixtures.js';

test('max_fails failures within fail_timeout eject the server for fail_timeout, then it returns', () => {
  const h = new PassiveHealth(3, 10_000);
  assert.equal(h.failure(0), false);
  assert.equal(h.failure(1000), false);
  assert.equal(h.failure(2000), true);
  assert.equal(h.available(2001), false);
  assert.equal(h.available(11_999), false);
  assert.equal(h.available(12_000), true);
  // Back with a clean record: one more failure does not eject it again.
  assert.equal(h.failure(12_001), false);
  assert.equal(h.available(12_002), true);
});

test('failures spread wider than fail_timeout never eject', () => {
  const h = new PassiveHealth(2, 1000);
  for (let t = 0; t < 10_000; t += 1500) {
    assert.equal(h.failure(t), false);
    assert.equal(h.available(t), true);
  }
});

test('a success clears the failure count', () => {
  const h = new PassiveHealth(2, 10_000);
  h.failure(0);
  h.success();
  assert.equal(h.failure(1), false);
  assert.equal(h.available(2), true);
});

test('max_fails=0 turns accounting off', () => {
  const h = new PassiveHealth(0, 10_000);
  for (let i = 0; i < 50; i++) h.failure(i);
  assert.equal(h.available(51), true);
});

test('an ejected server is skipped by balancing until fail_timeout passes', () => {
  const u = upstream([srv(1, { maxFails: 1, failTimeoutMs: 5000 }), srv(2)]);
  u.hosts[0]!.health.failure(1000);
  for (let i = 0; i < 10; i++) assert.equal(u.pick({}, new Set(), 3000)?.address.port, 10_002);
  const ports = new Set(Array.from({ length: 4 }, () => u.pick({}, new Set(), 6000)!.address.port));
  assert.deepEqual([...ports].sort(), [10_001, 10_002]);
});

test('max_conns: a full server is skipped, and taken again when a connection ends', () => {
  const u = upstream([srv(1, { maxConns: 1 })]);
  const h = u.pick({})!;
  h.acquire();
  assert.equal(u.pick({}), undefined);
  h.release();
  assert.equal(u.pick({}), h);
});

test('a lone server is never ejected: nginx ignores max_fails for a group of one (peers->single)', () => {
  const u = upstream([srv(1, { maxFails: 1, failTimeoutMs: 10_000 })]);
  const h = u.hosts[0]!;
  for (let i = 0; i < 5; i++) assert.equal(h.health.failure(1000 + i), false);
  assert.equal(u.pick({}, new Set(), 1010), h, 'still tried at once after failures');
});

test('a lone server is still skipped when down or at max_conns (peers->single keeps those checks)', () => {
  assert.equal(upstream([srv(1, { down: true })]).pick({}), undefined);
  const u = upstream([srv(1, { maxConns: 1 })]);
  u.hosts[0]!.acquire();
  assert.equal(u.pick({}), undefined);
});

test('one primary with a backup is a group of several: max_fails ejects the primary, the backup answers', () => {
  const u = upstream([srv(1, { maxFails: 1, failTimeoutMs: 10_000 }), srv(2, { backup: true })]);
  assert.equal(u.hosts[0]!.health.failure(1000), true);
  assert.equal(u.pick({}, new Set(), 2000)?.address.port, 10_002);
  assert.equal(u.pick({}, new Set(), 11_001)?.address.port, 10_001);
});
