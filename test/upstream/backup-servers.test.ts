import assert from 'node:assert/strict';
import { test } from 'node:test';
import { srv, tally, upstream } from './fixtures.js';

test('backup servers take no traffic while a primary is usable', () => {
  const u = upstream([srv(1), srv(2, { backup: true })]);
  assert.deepEqual([...tally(u, 100)], [[10_001, 100]]);
});

test('backup servers take traffic when every primary is down, ejected or full', () => {
  const u = upstream([srv(1, { down: true }), srv(2, { maxConns: 1 }), srv(3), srv(4, { backup: true })]);
  u.hosts[1]!.acquire();
  u.hosts[2]!.health.failure(Date.now());
  assert.equal(u.pick({})?.address.port, 10_004);
});

test('a down backup is never picked either', () => {
  const u = upstream([srv(1, { down: true }), srv(2, { backup: true, down: true })]);
  assert.equal(u.pick({}), undefined);
});

test('servers already tried for this session are skipped, then backups', () => {
  const u = upstream([srv(1), srv(2), srv(3, { backup: true })]);
  const tried = new Set([u.hosts[0]!, u.hosts[1]!]);
  assert.equal(u.pick({}, tried)?.address.port, 10_003);
  tried.add(u.hosts[2]!);
  assert.equal(u.pick({}, tried), undefined);
});
