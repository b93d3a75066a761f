/**
 * What an SRE sees when the probe cannot do its job: a bad argument (exit 2,
 * one line, no stack), a refused port or an unreachable host (exit 1, named
 * as such), and Ctrl-C (exit 130, every connection closed on the server's side).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { run } from '../../src/cli/program.js';
import { createPairTopology } from '../../src/netns/index.js';
import { requireNetns } from '../require-netns.js';
import { runProbeCli, startIdleServer } from './fixtures.js';

async function cli(args: string[]) {
  let out = '';
  let err = '';
  const code = await run(args, { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

test('bad arguments exit 2 with a clear one-line message and nothing on stdout', async () => {
  const cases: [string[], RegExp][] = [
    [['probe'], /missing required argument/],
    [['probe', 'example.test'], /expected HOST:PORT/],
    [['probe', 'example.test:0'], /port must be 1-65535/],
    [['probe', 'example.test:80', '--connections', '5000'], /above the hard cap of 1000/],
    [['probe', 'example.test:80', '--connections', '3'], /--connections must be at least/],
    [['probe', 'example.test:80', '--min', '10s', '--max', '5s'], /--min \(10\.0s\) must be below --max/],
    [['probe', 'example.test:80', '--max', '10h'], /--max is limited to 9h/],
    [['probe', 'example.test:80', '--max', '90x'], /unknown time unit/],
    [
      ['probe', 'example.test:80', '--payload', 'xyz'],
      /--payload must be http, none or an even number of hex digits/,
    ],
    [['probe', 'example.test:80', '--verify-keepalive', '::'], /so_keepalive|::/],
  ];
  for (const [args, message] of cases) {
    const r = await cli(args);
    assert.equal(r.code, 2, `keepwire ${args.join(' ')}: exit ${r.code}, stderr ${r.err}`);
    assert.match(r.err, message, `keepwire ${args.join(' ')}`);
    assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
    assert.equal(r.out, '');
  }
});

test('a refused port, an unreachable host and an unresolvable name exit 1 and say which', async (t) => {
  if (!requireNetns(t)) return;
  const pair = await createPairTopology();
  try {
    const [refused, unreachable, unresolvable] = await Promise.all([
      runProbeCli(pair.a, ['198.18.1.2:7001']),
      // On the link but nobody there: ARP fails and the kernel reports EHOSTUNREACH.
      runProbeCli(pair.a, ['198.18.1.77:7001', '--json']),
      // .invalid never resolves (RFC 6761), and this namespace reaches no DNS server anyway.
      runProbeCli(pair.a, ['no-such-host.invalid:80']),
    ]);
    assert.equal(unresolvable.code, 1, unresolvable.stderr);
    assert.match(unresolvable.stderr, /cannot resolve no-such-host\.invalid/);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /198\.18\.1\.2:7001: connection refused/);
    assert.equal(refused.stdout, '');
    assert.equal(unreachable.code, 1, unreachable.stderr);
    assert.match(unreachable.stderr, /198\.18\.1\.77:7001: (unreachable \(EHOSTUNREACH\)|no answer)/);
    assert.match((JSON.parse(unreachable.stdout) as { error: string }).error, /^(unreachable|timeout)$/);
  } finally {
    await pair.destroy();
  }
});

test('Ctrl-C closes every probe connection, prints what was known and exits 130', async (t) => {
  if (!requireNetns(t)) return;
  const pair = await createPairTopology();
  try {
    const server = await startIdleServer(pair.b, 7000, 0, 'never');
    // Interrupted once it is measuring: its first progress line (every 2 s off a
    // terminal) has gone out and the server holds its connections. Waiting for
    // those events, not a fixed delay, keeps this true on a loaded host.
    let stderrSoFar = '';
    let interrupted = false;
    let fallback: NodeJS.Timeout | undefined;
    const probe = runProbeCli(pair.a, ['198.18.1.2:7000', '--max', '60s', '--progress'], {
      onSpawn: (child) => {
        child.stderr!.on('data', (c: Buffer) => {
          stderrSoFar += c.toString();
          if (!interrupted && /probe: measuring, T > /.test(stderrSoFar) && server.open() > 30) {
            interrupted = true;
            child.kill('SIGINT');
          }
        });
        // Bounded: a probe that never reports progress is interrupted anyway (and fails below).
        fallback = setTimeout(() => child.kill('SIGINT'), 20_000);
      },
    });
    // Mid-probe the server holds the probe's connections.
    const holdDeadline = Date.now() + 15_000;
    while (server.open() <= 30 && Date.now() < holdDeadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(server.open() > 30, `the server holds ${server.open()} connections mid-probe`);
    const r = await probe;
    clearTimeout(fallback);
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stdout, /Interrupted before the measurement finished/);
    assert.match(r.stderr, /probe: measuring, T > /, 'progress went to stderr');
    const deadline = Date.now() + 3000;
    while (server.open() > 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
    assert.equal(server.open(), 0, 'every connection was closed');
  } finally {
    await pair.destroy();
  }
});
