import assert from 'node:assert/strict';
import { test } from 'node:test';
import { srv, upstream } from './fixtures.js';

test('least_conn picks the server with the fewest active connections', () => {
  const u = upstream([srv(1), srv(2), srv(3)], { kind: 'least_conn' });
  u.hosts[0]!.activeConns = 4;
  u.hosts[1]!.activeConns = 1;
  u.hosts[2]!.activeConns = 3;
  assert.equal(u.pick({})?.address.port, 10_002);
});

test('least_conn weighs connections: 5 conns on weight 5 beat 2 conns on weight 1', () => {
  const u = upstream([srv(1, { weight: 5 }), srv(2)], { kind: 'least_conn' });
  u.hosts[0]!.activeConns = 5;
  u.hosts[1]!.activeConns = 2;
  assert.equal(u.pick({})?.address.port, 10_001);
});

test('least_conn with held connections spreads them in proportion to weight', () => {
  const u = upstream([srv(1, { weight: 3 }), srv(2, { weight: 1 })], { kind: 'least_conn' });
  for (let i = 0; i < 400; i++) u.pick({})!.acquire();
  assert.equal(u.hosts[0]!.activeConns, 300);
  assert.equal(u.hosts[1]!.activeConns, 100);
});

test('least_conn ties are broken by weighted round robin', () => {
  const u = upstream([srv(1, { weight: 2 }), srv(2, { weight: 1 })], { kind: 'least_conn' });
  const ports = Array.from({ length: 6 }, () => u.pick({})!.address.port);
  assert.equal(ports.filter((p) => p === 10_001).length, 4);
});
