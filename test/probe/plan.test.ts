/**
 * Where the probe places its idle durations: every point within range, one
 * round enough when connections allow, and refinement fine enough for the
 * requested precision.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bracketDone,
  gridStep,
  parsePayload,
  parseTarget,
  planGrid,
  planRefinement,
} from '../../src/probe/plan.js';

test('the first round spans --min to --max with the connections given, never closer than one step', () => {
  for (const [min, max, n] of [
    [1000, 900_000, 62],
    [1000, 30_000, 62],
    [5000, 3_600_000, 10],
  ] as const) {
    const points = planGrid(min, max, n, 1000);
    assert.equal(points[0], min);
    assert.equal(points.at(-1), max);
    assert.ok(points.length <= n, `${points.length} points for ${n} connections`);
    for (let i = 1; i < points.length; i++) {
      assert.ok(points[i]! > points[i - 1]!, 'increasing');
      if (i < points.length - 1) assert.ok(points[i]! - points[i - 1]! >= gridStep(1000) - 1);
    }
  }
});

test('with enough connections the first round alone brackets T to ±precision', () => {
  const points = planGrid(1000, 60_000, 64, 1000);
  for (let i = 1; i < points.length; i++) assert.ok(bracketDone(points[i - 1]!, points[i]!, 1000));
  // The documented rule: (max - min) / (1.8 · precision) + 1 grid points.
  assert.equal(points.length, Math.ceil(59_000 / 1800) + 1);
});

test('with the default 64 connections over 900 s, the second round reaches ±1 s anywhere', () => {
  const points = planGrid(1000, 900_000, 62, 1000);
  for (let i = 1; i < points.length; i++) {
    const inside = planRefinement(points[i - 1]!, points[i]!, 62 - 2, 1000);
    const edges = [points[i - 1]!, ...inside, points[i]!];
    for (let j = 1; j < edges.length; j++)
      assert.ok(bracketDone(edges[j - 1]!, edges[j]!, 1000), `gap ${edges[j - 1]}..${edges[j]}`);
  }
});

test('payload and target parsing', () => {
  assert.deepEqual(parsePayload('none'), { kind: 'none' });
  assert.deepEqual(parsePayload('HTTP'), { kind: 'http' });
  const hex = parsePayload('0x0d0a');
  assert.ok('kind' in hex && hex.kind === 'hex' && hex.bytes.equals(Buffer.from([13, 10])));
  assert.ok('error' in parsePayload('abc'));
  assert.ok('error' in parsePayload('zz'));
  assert.deepEqual(parseTarget('db.internal:5432'), { host: 'db.internal', port: 5432 });
  assert.deepEqual(parseTarget('[2001:db8::1]:443'), { host: '2001:db8::1', port: 443 });
  assert.ok('error' in parseTarget('2001:db8::1:443'));
  assert.ok('error' in parseTarget('host:99999'));
});
