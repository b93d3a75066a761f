import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Random } from '../../src/upstream/selection.js';
import { srv, tally, upstream } from './fixtures.js';

test('random: 10k picks follow weights 3:1 within tolerance', () => {
  const u = upstream([srv(1, { weight: 3 }), srv(2)], { kind: 'random', two: false });
  const share = (tally(u, 10_000).get(10_001) ?? 0) / 10_000;
  assert.ok(Math.abs(share - 0.75) < 0.03, `got ${share}`);
});

test('random two: of the two drawn servers the less loaded one wins', () => {
  const u = upstream([srv(1), srv(2), srv(3)], { kind: 'random', two: true });
  u.hosts[0]!.activeConns = 10;
  u.hosts[1]!.activeConns = 10;
  u.hosts[2]!.activeConns = 0;
  const counts = tally(u, 3000);
  // Server 3 wins whenever it is one of the two drawn: 2/3 of the draws.
  const share = (counts.get(10_003) ?? 0) / 3000;
  assert.ok(share > 0.58 && share < 0.75, `got ${share}`);
});

test('random two: with held connections the load stays balanced', () => {
  const u = upstream([srv(1), srv(2), srv(3), srv(4)], { kind: 'random', two: true });
  for (let i = 0; i < 400; i++) u.pick({})!.acquire();
  for (const h of u.hosts)
    assert.ok(Math.abs(h.activeConns - 100) <= 10, `${h.address.text}: ${h.activeConns}`);
});

test('random two never returns an ineligible server', () => {
  const u = upstream([srv(1), srv(2, { down: true })], { kind: 'random', two: true });
  for (let i = 0; i < 100; i++) assert.equal(u.pick({})?.address.port, 10_001);
  const r = new Random(u.hosts, true, () => 0.5);
  assert.equal(r.pick({ vars: {}, eligible: () => false }), undefined);
});
