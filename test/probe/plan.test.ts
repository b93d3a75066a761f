/**
 * Where the probe places its idle durations: every point within range, one
 * round enough when connections allow, and refinement fine enough for the
 * requested precision.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bracketDone,
  formatTarget,
  gridStep,
  parseHttpAnswer,
  parsePayload,
  parseTarget,
  payloadBytes,
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

test('targets: host and IPv4 with a port, IPv6 only in brackets, every bad form named with the fix', () => {
  const ok: [string, string, number][] = [
    ['127.0.0.1:7000', '127.0.0.1', 7000],
    ['db.internal:5432', 'db.internal', 5432],
    ['[::1]:8080', '::1', 8080],
    ['[2001:db8::1]:443', '2001:db8::1', 443],
    ['[::ffff:198.18.0.1]:80', '::ffff:198.18.0.1', 80],
    ['[fe80::1%eth0]:22', 'fe80::1%eth0', 22],
  ];
  for (const [text, host, port] of ok) {
    assert.deepEqual(parseTarget(text), { host, port }, text);
    assert.equal(formatTarget(host, port), text, 'formatted back as typed');
  }
  const bad: [string, RegExp][] = [
    ['::1:8080', /needs brackets.*write \[::1\]:8080 if 8080 is the port/],
    ['2001:db8::1:443', /write \[2001:db8::1\]:443 if 443 is the port, or \[2001:db8::1:443\]:PORT/],
    ['2001:db8::1', /needs brackets.*\[2001:db8::1\]:PORT/],
    ['::1', /needs brackets.*\[::1\]:PORT/],
    ['[::1]', /"\[::1\]" has no port, e.g. \[::1\]:443/],
    ['[::1]:', /has no port/],
    ['[::1:8080', /no closing "\]"/],
    ['[::1]8080', /unexpected "8080" after "\]"/],
    ['[db.internal]:80', /"\[db\.internal\]" is not an IPv6 address: brackets are only for IPv6/],
    ['[127.0.0.1]:80', /"\[127\.0\.0\.1\]" is not an IPv6 address/],
    ['[::1]:0', /port must be 1-65535, got "0"/],
    ['[::1]:65536', /port must be 1-65535/],
    ['[::1]:http', /port must be a number 1-65535, got "http"/],
    ['host:99999', /port must be 1-65535/],
    ['host', /expected HOST:PORT.*no port/],
    ['host:', /has no port/],
    [':80', /has no host/],
    ['a:b:c', /more than one ":"/],
  ];
  for (const [text, message] of bad) {
    const r = parseTarget(text);
    assert.ok('error' in r, `${text} must be refused`);
    assert.match(r.error, message, text);
  }
});

test('the http payload is one HEAD request with a valid Host: brackets for IPv6, port unless 80', () => {
  const head = (host: string, port: number) => payloadBytes({ kind: 'http' }, host, port)!.toString();
  assert.equal(
    head('db.internal', 8080),
    'HEAD / HTTP/1.1\r\nHost: db.internal:8080\r\nUser-Agent: keepwire-probe\r\nAccept: */*\r\n\r\n',
  );
  assert.match(head('198.18.0.100', 80), /\r\nHost: 198\.18\.0\.100\r\n/);
  assert.match(head('::1', 7000), /\r\nHost: \[::1\]:7000\r\n/);
  assert.match(head('2001:db8::1', 80), /\r\nHost: \[2001:db8::1\]\r\n/);
  // A zone names an interface of this host; it means nothing to the server.
  assert.match(head('fe80::1%eth0', 22), /\r\nHost: \[fe80::1\]:22\r\n/);
  assert.equal(payloadBytes({ kind: 'none' }, '::1', 80), undefined);
});

test('HTTP answers: status line, and whether the server keeps the connection', () => {
  assert.deepEqual(parseHttpAnswer('HTTP/1.1 200 OK\r\nContent-Length: 3'), {
    statusLine: 'HTTP/1.1 200 OK',
    status: 200,
    keepAlive: true,
  });
  assert.equal(parseHttpAnswer('HTTP/1.1 400 Bad Request\r\nConnection: close')?.keepAlive, false);
  assert.equal(parseHttpAnswer('HTTP/1.1 200 OK\r\nconnection: Keep-Alive, Close')?.keepAlive, false);
  assert.equal(parseHttpAnswer('HTTP/1.0 200 OK\r\nServer: x')?.keepAlive, false);
  assert.equal(parseHttpAnswer('HTTP/1.0 200 OK\r\nConnection: keep-alive')?.keepAlive, true);
  assert.equal(parseHttpAnswer('HTTP/1.1 204')?.status, 204);
  assert.equal(parseHttpAnswer('SSH-2.0-OpenSSH_9.2'), undefined);
});
