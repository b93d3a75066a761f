/**
 * Which stream sessions run on bare TCP handles (proxy/stream-handles.ts)
 * and which keep net.Socket, and what a handle session still gives the
 * rest of keepwire: the status page's view of both legs (addresses, bytes,
 * the kernel's keepalive readings through the descriptor) and the
 * self-check's listing of the internals it relies on. The behaviours
 * themselves (bytes, half-close, resets, timeouts, tries, limits, drain) run
 * on both paths in the other stream tests (`onBothPaths`).
 */
import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import { test } from 'node:test';
import { nodeInternals, tcpHandles } from '../../src/kernel/node-internals.js';
import { collectStatus } from '../../src/metrics/status.js';
import { forceSocketSessions } from '../../src/proxy/stream.js';
import {
  address,
  backend,
  config,
  dial,
  echo,
  listen,
  passTo,
  type SessionPath,
  sleep,
  start,
  streamServer,
  within,
} from './fixtures.js';

function needHandles(t: { skip(m: string): void }): boolean {
  if (tcpHandles !== null) return true;
  if (process.env.CI === 'true') assert.fail('this Node has no TCP handle internals (tcp_wrap)');
  t.skip('this Node has no TCP handle internals (tcp_wrap)');
  return false;
}

/** Opens one session through `lb`, says which kind of object its client leg is, and ends it. */
async function sessionKind(port: number, lb: Awaited<ReturnType<typeof start>>): Promise<SessionPath> {
  const client = await dial(port);
  client.write('ping');
  await within(
    new Promise<void>((resolve) => client.once('data', () => resolve())),
    5000,
    'the echo through the proxy',
  );
  const [session] = lb.runtime.liveSessions();
  assert.ok(session, 'a live session');
  const kind = session.client instanceof Socket ? 'sockets' : 'handles';
  client.end();
  await lb.waitForRecords(1);
  return kind;
}

test('a plain-TCP session runs on TCP handles, and on net.Socket when forced (the fallback)', async (t) => {
  if (!needHandles(t)) return;
  const peer = await backend(echo);
  try {
    for (const path of ['handles', 'sockets'] as const) {
      forceSocketSessions(path === 'sockets');
      const lb = await start(config([streamServer({ proxyPass: passTo(peer.port) })]));
      try {
        assert.equal(await sessionKind(lb.ports[0]!, lb), path);
        const [record] = lb.records;
        assert.equal(record!.reason, 'client_closed');
        assert.equal(record!.bytesFromClient, 4);
        assert.equal(record!.bytesFromUpstream, 4);
      } finally {
        forceSocketSessions(false);
        await lb.close();
      }
    }
  } finally {
    await peer.close();
  }
});

test('an upstream named by host name (a DNS lookup per connect) keeps the net.Socket path', async (t) => {
  if (!needHandles(t)) return;
  const peer = await backend(echo);
  const lb = await start(
    config([streamServer({ proxyPass: { kind: 'address', address: address(peer.port, 'localhost') } })]),
  );
  try {
    assert.equal(await sessionKind(lb.ports[0]!, lb), 'sockets');
  } finally {
    await lb.close();
    await peer.close();
  }
});

test('the status page reads both legs of a handle session: addresses, bytes and the kernel keepalive', async (t) => {
  if (!needHandles(t)) return;
  let got = 0;
  const peer = await backend((s) => {
    s.on('data', (d: Buffer) => {
      got += d.length;
    });
    s.on('end', () => s.end());
  });
  const lb = await start(
    config([
      streamServer({
        listens: [listen(0, { enable: true, idle: 7, interval: 3, count: 4 })],
        proxyPass: passTo(peer.port),
      }),
    ]),
  );
  try {
    const client = await dial(lb.ports[0]!);
    client.write('hello');
    await within(
      (async () => {
        while (got < 5) await sleep(5);
        while (collectStatus().connections.filter((c) => c.state === 'stream').length < 2) await sleep(5);
      })(),
      5000,
      'the session on the status page',
    );
    assert.equal(lb.runtime.liveSessions()[0]!.client instanceof Socket, false, 'a handle session');
    const rows = collectStatus().connections.filter((c) => c.state === 'stream');
    const clientRow = rows.find((r) => r.side === 'client')!;
    const upstreamRow = rows.find((r) => r.side === 'upstream')!;
    assert.equal(clientRow.local, `127.0.0.1:${lb.ports[0]}`);
    assert.equal(clientRow.remote, `127.0.0.1:${client.localPort}`);
    assert.equal(upstreamRow.remote, `127.0.0.1:${peer.port}`);
    assert.equal(clientRow.bytesReceived, 5);
    assert.equal(upstreamRow.bytesSent, 5);
    // so_keepalive went on the client leg's descriptor (setsockopt, as the kernel reports it).
    assert.ok(!('error' in clientRow.kernel), JSON.stringify(clientRow.kernel));
    assert.deepEqual(clientRow.kernel.keepalive, { enabled: true, idle: 7, interval: 3, count: 4 });
    client.end();
    const [record] = await lb.waitForRecords(1);
    assert.equal(record!.reason, 'client_closed');
  } finally {
    await lb.close();
    await peer.close();
  }
});

test('keepwire selfcheck lists the TCP handle internals, available on this Node once a listener is hooked', async (t) => {
  if (!needHandles(t)) return;
  const peer = await backend(echo);
  const lb = await start(config([streamServer({ proxyPass: passTo(peer.port) })]));
  try {
    const entry = nodeInternals().find((i) => i.name.includes("'tcp_wrap'"));
    assert.ok(entry, 'listed');
    assert.equal(entry.available, true, entry.detail);
    assert.match(entry.fallback, /net\.Socket/);
  } finally {
    await lb.close();
    await peer.close();
  }
});

test('overlapping handle sessions each log their own client, read at accept', async (t) => {
  if (!needHandles(t)) return;
  const peer = await backend(echo);
  const lb = await start(config([streamServer({ proxyPass: passTo(peer.port) })]));
  try {
    // getpeername fills one object shared by every session: each must keep what it read.
    const clients = [await dial(lb.ports[0]!), await dial(lb.ports[0]!), await dial(lb.ports[0]!)];
    for (const c of clients) c.write('ping');
    await within(
      Promise.all(clients.map((c) => new Promise<void>((resolve) => c.once('data', () => resolve())))),
      5000,
      'the echoes through the proxy',
    );
    const live = lb.runtime.liveSessions();
    assert.equal(live.length, 3);
    assert.ok(
      live.every((s) => !(s.client instanceof Socket)),
      'handle sessions',
    );
    // Closed last-accepted first: each line is made after its client has gone.
    for (const c of [...clients].reverse()) c.end();
    const records = await lb.waitForRecords(3);
    assert.deepEqual(
      records.map((r) => r.client).sort(),
      clients.map((c) => `127.0.0.1:${c.localPort}`).sort(),
    );
    for (const r of records) assert.equal(r.reason, 'client_closed');
  } finally {
    await lb.close();
    await peer.close();
  }
});
