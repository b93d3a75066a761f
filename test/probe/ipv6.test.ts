/**
 * keepwire probe against IPv6 targets: `[::1]:PORT` on loopback (no root
 * needed), and through the namespace LB carried over IPv6 (addresses from
 * 2001:2::/48 on the same veths, an ip6 nftables DNAT, conntrack's timer):
 * the 3 s idle timeout found within ±1 s and its expiry kind told, with a
 * keepalive probe and with an HTTP request as the use.
 */
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { createLbTopology, createPairTopology } from '../../src/netns/index.js';
import { requireNetns } from '../require-netns.js';
import {
  assertAnswers,
  assertMiddlebox,
  assertNodeSaw,
  assertServerClose,
  type HttpTarget,
  runProbeCli,
  startHttpServer,
  startIdleServer,
} from './fixtures.js';

const LB_IDLE_S = 3;

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
    // Node's server.timeout closes idle connections after 2 s: the server's own idle close.
    const r = assertServerClose(run, 2000);
    assert.deepEqual(r.target, { host: '::1', port: server.port, address: '::1' });
    const human = await runProbeCli(null, [target, '--max', '3s', '--connections', '8']);
    assert.match(human.stdout, new RegExp(`^keepwire probe \\[::1\\]:${server.port} — `));
  } finally {
    server.stop();
  }
});

test('an IPv6 target that refuses or is unreachable: exit 1, named in brackets', async (t) => {
  if (!requireNetns(t)) return;
  const pair = await createPairTopology({ ipv6: true });
  try {
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
    const lb = await createLbTopology({ lbIdleSeconds: LB_IDLE_S, expiry, ipv6: true });
    try {
      const vip = lb.vip6!;
      // A server that never answers (delivery judged by the kernel alone), and Node's HTTP server.
      const idle = await startIdleServer(lb.backend, 7000, 0, 'never', '::');
      // Node keeps a connection 60 s after a response (the probe idles after one): longer than the LB.
      const web = await startHttpServer(lb.backend, { port: 8080, keepAliveTimeoutMs: 60_000 });
      const [keepaliveProbe, http] = await Promise.all([
        runProbeCli(lb.client, [`[${vip}]:${idle.port}`, '--max', '20s', '--connections', '32', '--json']),
        runProbeCli(lb.client, [
          `[${vip}]:${web.port}`,
          '--max',
          '20s',
          '--connections',
          '32',
          '--payload',
          'http',
          '--json',
        ]),
      ]);
      assertMiddlebox(keepaliveProbe, expiry, LB_IDLE_S);
      assertMiddlebox(http, expiry, LB_IDLE_S);
      assert.equal(keepaliveProbe.report!.target.address, vip);
      // The HEAD requests reached Node's server over IPv6 with a bracketed Host, were kept alive and answered 200.
      assertNodeSaw(web, `[${vip}]:${web.port}`);
      assertAnswers(http);
    } finally {
      await lb.destroy();
    }
  });
}
