import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatSoKeepalive, type KeepaliveSpec, parseSoKeepalive } from '../../src/keepalive/spec.js';

const valid: [string, KeepaliveSpec][] = [
  ['on', { enable: true }],
  ['off', { enable: false }],
  ['so_keepalive=on', { enable: true }],
  ['so_keepalive=60s::', { enable: true, idle: 60 }],
  ['60s::', { enable: true, idle: 60 }],
  ['60::', { enable: true, idle: 60 }],
  ['1m:10s:6', { enable: true, idle: 60, interval: 10, count: 6 }],
  ['30m::10', { enable: true, idle: 1800, count: 10 }],
  [':10s:', { enable: true, interval: 10 }],
  ['::3', { enable: true, count: 3 }],
  ['1h30m::', { enable: true, idle: 5400 }],
  ['2000ms:1s:1', { enable: true, idle: 2, interval: 1, count: 1 }],
  ['32767s:32767:127', { enable: true, idle: 32767, interval: 32767, count: 127 }],
  // nginx reads a value without colons as the idle time alone.
  ['60s', { enable: true, idle: 60 }],
  ['60s:5s', { enable: true, idle: 60, interval: 5 }],
];

for (const [text, expected] of valid) {
  test(`so_keepalive "${text}" is valid`, () => {
    const result = parseSoKeepalive(text);
    assert.deepEqual(result, { ok: true, value: expected });
  });
}

// [text, column, message fragment, hint fragment]
const invalid: [string, number, string, string?][] = [
  ['60s:0:3', 5, 'keepalive interval must be at least 1s, got 0s', 'TCP_KEEPINTVL accepts 1..32767'],
  ['60x::', 3, 'keepalive idle: unknown time unit "x" in "60x"', 'nginx time units are ms, s, m, h, d, w, M'],
  ['so_keepalive=60x::', 16, 'unknown time unit "x"'],
  ['0::', 1, 'keepalive idle must be at least 1s, got 0s'],
  ['::', 1, 'so_keepalive sets nothing: every field is empty', 'use "on" for system defaults'],
  ['', 1, 'empty so_keepalive value'],
  ['so_keepalive=', 14, 'empty so_keepalive value'],
  [
    '1500ms::',
    1,
    'keepalive idle "1500ms" is not a whole number of seconds',
    'the kernel counts TCP_KEEPIDLE in seconds',
  ],
  ['32768s::', 1, 'keepalive idle 32768s exceeds the kernel limit of 32767s'],
  ['10h::', 1, 'keepalive idle 36000s exceeds the kernel limit of 32767s'],
  [':40000:', 2, 'keepalive interval 40000s exceeds the kernel limit of 32767s'],
  ['60s:10s:128', 9, 'keepalive count 128 exceeds the kernel limit of 127'],
  ['60s:10s:0', 9, 'keepalive count must be at least 1, got 0'],
  ['60s:10s:3s', 10, 'keepalive count "3s" must be a whole number of probes', 'takes no unit'],
  ['60s:10s:3:4', 10, 'so_keepalive has 4 fields, at most 3 are allowed'],
  ['ON', 1, 'keepalive idle: invalid time value "ON"'],
  ['60s,::', 4, 'unexpected "," in time value "60s,"'],
  ['s::', 1, 'keepalive idle: invalid time value "s"'],
  ['1s30m::', 5, 'keepalive idle: time units in "1s30m" must go from largest to smallest'],
];

for (const [text, column, message, hint] of invalid) {
  test(`so_keepalive "${text}" is rejected at column ${column}`, () => {
    const result = parseSoKeepalive(text);
    assert.equal(result.ok, false);
    if (result.ok) return;
    assert.ok(result.error.message.includes(message), `message was: ${result.error.message}`);
    assert.equal(result.error.column, column, `column for "${text}" (message: ${result.error.message})`);
    if (hint) assert.ok(result.error.hint?.includes(hint), `hint was: ${result.error.hint}`);
  });
}

test('formatSoKeepalive writes nginx syntax that parses back to the same spec', () => {
  for (const [, spec] of valid) {
    const text = formatSoKeepalive(spec);
    assert.deepEqual(parseSoKeepalive(text), { ok: true, value: spec }, text);
  }
  assert.equal(formatSoKeepalive({ enable: true, idle: 60 }), '60s::');
  assert.equal(formatSoKeepalive({ enable: true, idle: 60, interval: 10, count: 6 }), '60s:10s:6');
});
