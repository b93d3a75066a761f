/**
 * keepwire probe against IPv6 targets: `[::1]:PORT` on loopback (no root
 * needed), and through the namespace LB carried over IPv6 (addresses from
 * 2001:2::/48 on the same veths, an ip6 nftables DNAT, conntrack's timer):
 * the 3 s idle timeout found within ±1 s and its expiry kind told, with a
 * keepalive probe and with an HTTP request as the use.
 */
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { createLbTopology, createPairTopology, requireNetns } from '../../src/netns/index.js';
import {
  addIpv6,
  type HttpTarget,
  type ProbeRun,
  runProbeCli,
  startHttpServer,
  startIdleServer,
  summary,
} from './fixtures.js';

const LB_IDLE_S = 3;

function assertMiddlebox(run: ProbeRun, expiry: 'rst' | 'drop'): void {
  const r = run.report;
  assert.ok(r, summary(run));
  assert.equal(run.code, 0, summary(run));
  assert.equal(r.verdict, 'measured', summary(run));
  assert.equal(r.enforcedBy, 'middlebox', summary(run));
  assert.equal(r.expiry, expiry, summary(run));
  assert.ok(
    Math.abs(r.idleTimeout!.estimateMs - LB_IDLE_S * 1000) <= 1000,
    `T ${r.idleTimeout!.estimateMs} ms is not within ±1 s of ${LB_IDLE_S} s\n${summary(run)}`,
  );
  assert.equal(r.server, null, summary(run));
  for (const e of r.evidence) {
    if (e.role === 'grid' && e.usedAtMs !== undefined && e.outcome !== 'alive')
      assert.equal(e.outcome, expiry, summary(run));
  }
}

/** Starts Node's HTTP server on ::1 here, or skips (fails under CI=true) when this host has no IPv6 loopback. */
async function loopbackServer(t: TestContext): Promise<HttpTarget | undefined> {
  try {
    return await startHttpServer(null, { listen: '::1', idleTimeoutMs: 2000 });
  } catch (error) {
    const reason = `no IPv6 loopback here (${(error as Error).message.trim().split('\n').at(-1)})`;
    if (process.env.CI === 'true') throw new Error(`CI=true: this test must run, but ${reason}`);
    process.stderr.write(`# skipped ${t.name}: ${reason}\n`);
    t.skip(reason);
    return undefined;
  }
}

test('[::1]:PORT on loopback: the address is used as given, the report writes it back in brackets', async (t) => {
  // No namespace: loopback of this process's own namespace, so this runs without root too.
  const server = await loopbackServer(t);
  if (!server) return;
  try {
    const target = `[::1]:${server.port}`;
    const run = await runProbeCli(null, [target, '--max', '6s', '--connections', '16', '--json']);
    const r = run.report;
    assert.ok(r, summary(run));
    assert.equal(run.code, 0, summary(run));
    assert.deepEqual(r.target, { host: '::1', port: server.port, address: '::1' });
    // Node's server.timeout closes idle connections after 2 s: the server's own idle close.
    assert.equal(r.enforcedBy, 'server', summary(run));
    assert.equal(r.expiry, 'fin', summary(run));
    assert.ok(Math.abs(r.server!.idleCloseMs - 2000) <= 1000, summary(run));
    const human = await runProbeCli(null, [target, '--max', '3s', '--connections', '8']);
    assert.match(human.stdout, new RegExp(`^keepwire probe \\[::1\\]:${server.port} — `));
  } finally {
    server.stop();
  }
});

test('an IPv6 target that refuses or is unreachable: exit 1, named in brackets', async (t) => {
  if (!requireNetns(t)) return;
  const pair = await createPairTopology();
  try {
    await pair.a.exec('ip', ['-6', 'addr', 'add', '2001:2:0:1::1/64', 'dev', 'eth0', 'nodad']);
    await pair.b.exec('ip', ['-6', 'addr', 'add', '2001:2:0:1::2/64', 'dev', 'eth0', 'nodad']);
    const [refused, unreachable, loopback] = await Promise.all([
      runProbeCli(pair.a, ['[2001:2:0:1::2]:7001']),
      // On the link but nobody there: neighbour discovery fails and the kernel reports EHOSTUNREACH.
      runProbeCli(pair.a, ['[2001:2:0:1::77]:7001', '--json']),
      runProbeCli(pair.a, ['[::1]:7001']),
    ]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /\[2001:2:0:1::2\]:7001: connection refused/);
    assert.equal(loopback.code, 1, loopback.stderr);
    assert.match(loopback.stderr, /\[::1\]:7001: connection refused/);
    assert.equal(unreachable.code, 1, unreachable.stderr);
    assert.match(unreachable.stderr, /\[2001:2:0:1::77\]:7001: (unreachable \(EHOSTUNREACH\)|no answer)/);
  } finally {
    await pair.destroy();
  }
});

for (const expiry of ['rst', 'drop'] as const) {
  test(`over IPv6, an LB that forgets idle sessions after 3 s with ${expiry} expiry: T within ±1 s and kind ${expiry}, with a keepalive probe and with an HTTP request as the use`, async (t) => {
    if (!requireNetns(t)) return;
    const lb = await createLbTopology({ lbIdleSeconds: LB_IDLE_S, expiry });
    try {
      const v6 = await addIpv6(lb);
      // A server that never answers (delivery judged by the kernel alone), and Node's HTTP server.
      const idle = await startIdleServer(lb.backend, 7000, 0, 'never', '::');
      const web = await startHttpServer(lb.backend, { port: 8080 });
      const [keepaliveProbe, http] = await Promise.all([
        runProbeCli(lb.client, [`[${v6.vip}]:${idle.port}`, '--max', '20s', '--connections', '32', '--json']),
        runProbeCli(lb.client, [
          `[${v6.vip}]:${web.port}`,
          '--max',
          '20s',
          '--connections',
          '32',
          '--payload',
          'http',
          '--json',
        ]),
      ]);
      assertMiddlebox(keepaliveProbe, expiry);
      assertMiddlebox(http, expiry);
      assert.equal(keepaliveProbe.report!.target.address, v6.vip);
      // The HEAD requests reached Node's server over IPv6 with a bracketed Host, and were kept alive.
      assert.ok(web.requests.length > 0, summary(http));
      for (const req of web.requests) {
        assert.deepEqual(
          { method: req.method, url: req.url, host: req.host, status: req.status, keepAlive: req.keepAlive },
          { method: 'HEAD', url: '/', host: `[${v6.vip}]:${web.port}`, status: 200, keepAlive: true },
        );
      }
      assert.deepEqual(web.clientErrors, []);
      const answers = http.report!.http!.answers;
      assert.deepEqual(
        answers.map((a) => [a.statusLine, a.keepAlive]),
        [['HTTP/1.1 200 OK', true]],
        summary(http),
      );
    } finally {
      await lb.destroy();
    }
  });
}
