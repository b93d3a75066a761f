/**
 * proxy_next_upstream: a refused or timed-out connect is retried on the next
 * server within proxy_next_upstream_tries / _timeout; the client sees a close
 * only when every try failed. Failures feed passive health (max_fails).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  backend,
  closedPort,
  config,
  dial,
  ending,
  group,
  onBothPaths,
  passTo,
  server,
  sleep,
  start,
  streamServer,
  within,
} from './fixtures.js';

async function roundTrip(port: number): Promise<string> {
  const s = await dial(port);
  const got = new Promise<string>((resolve, reject) => {
    s.once('data', (d) => resolve(d.toString()));
    s.once('error', reject);
    s.once('end', () => reject(new Error('closed without an answer')));
  });
  s.write('ping');
  try {
    return await within(got, 5000, 'round trip');
  } finally {
    s.destroy();
  }
}

onBothPaths('a refused connect is retried on the next server; the client never notices', async () => {
  const peer = await backend();
  const dead = await closedPort();
  const lb = await start(
    config(
      [streamServer({ proxyPass: { kind: 'group', name: 'g' } })],
      [group('g', [server(dead), server(peer.port)])],
    ),
  );
  try {
    for (let i = 0; i < 4; i++) assert.equal(await roundTrip(lb.ports[0]!), 'ping');
    const records = await lb.waitForRecords(4);
    assert.equal(records[0]!.tries, 2, 'first session tried the dead server first');
    assert.equal(records[0]!.upstream, `127.0.0.1:${peer.port}`);
    // max_fails=1: the dead server is out for fail_timeout, so nobody tries it again.
    for (const r of records.slice(1)) assert.equal(r.tries, 1);
  } finally {
    await lb.close();
    await peer.close();
  }
});

onBothPaths('max_fails ejects a failing server for fail_timeout, then it is tried again', async () => {
  const peer = await backend();
  const dead = await closedPort();
  const lb = await start(
    config(
      [streamServer({ proxyPass: { kind: 'group', name: 'g' } })],
      [group('g', [server(dead, { maxFails: 2, failTimeoutMs: 1500 }), server(peer.port)])],
    ),
  );
  try {
    // Round robin alternates, so the dead server is first choice every other session until ejected.
    for (let i = 0; i < 6; i++) await roundTrip(lb.ports[0]!);
    let records = await lb.waitForRecords(6);
    const triedDead = records.filter((r) => r.tries === 2).length;
    assert.equal(triedDead, 2, 'two failures (max_fails=2), then no more tries while ejected');
    await sleep(1700);
    await roundTrip(lb.ports[0]!);
    await roundTrip(lb.ports[0]!);
    records = await lb.waitForRecords(8);
    assert.equal(
      records.slice(6).filter((r) => r.tries === 2).length,
      1,
      'back in rotation after fail_timeout',
    );
  } finally {
    await lb.close();
    await peer.close();
  }
});

onBothPaths('backup server carries the sessions when every primary refuses', async () => {
  const peer = await backend();
  const spare = await backend();
  const dead1 = await closedPort();
  const dead2 = await closedPort();
  const lb = await start(
    config(
      [streamServer({ proxyPass: { kind: 'group', name: 'g' } })],
      [group('g', [server(dead1), server(dead2), server(spare.port, { backup: true })])],
    ),
  );
  try {
    for (let i = 0; i < 3; i++) assert.equal(await roundTrip(lb.ports[0]!), 'ping');
    const records = await lb.waitForRecords(3);
    for (const r of records) assert.equal(r.upstream, `127.0.0.1:${spare.port}`);
    assert.equal(records[0]!.tries, 3);
  } finally {
    await lb.close();
    await peer.close();
    await spare.close();
  }
});

onBothPaths(
  'proxy_next_upstream_tries bounds the attempts; then the client sees a close, logged connect_failed',
  async () => {
    const peer = await backend();
    const dead = await Promise.all([closedPort(), closedPort(), closedPort()]);
    const lb = await start(
      config(
        [streamServer({ proxyPass: { kind: 'group', name: 'g' }, proxyNextUpstreamTries: 2 })],
        [group('g', [...dead.map((p) => server(p)), server(peer.port)])],
      ),
    );
    try {
      const s = await dial(lb.ports[0]!);
      const e = await ending(s, 5000);
      assert.notEqual(e.kind, 'error', 'a close, not a hang');
      const [r] = await lb.waitForRecords(1);
      assert.equal(r!.reason, 'connect_failed');
      assert.equal(r!.tries, 2);
      assert.equal(r!.upstream, null);
      assert.match(r!.detail ?? '', /ECONNREFUSED/);
    } finally {
      await lb.close();
      await peer.close();
    }
  },
);

onBothPaths('proxy_next_upstream off: one try only', async () => {
  const peer = await backend();
  const dead = await closedPort();
  const lb = await start(
    config(
      [streamServer({ proxyPass: { kind: 'group', name: 'g' }, proxyNextUpstream: false })],
      [group('g', [server(dead), server(peer.port)])],
    ),
  );
  try {
    const s = await dial(lb.ports[0]!);
    await ending(s, 5000);
    const [r] = await lb.waitForRecords(1);
    assert.equal(r!.reason, 'connect_failed');
    assert.equal(r!.tries, 1);
  } finally {
    await lb.close();
    await peer.close();
  }
});

/**
 * A listener whose accept queue is full drops further SYNs (Linux,
 * tcp_abort_on_overflow=0), so connecting to it hangs: the only reliable
 * local stand-in for an unreachable upstream. Node always accepts, hence python.
 */
async function blackhole(): Promise<{ port: number; close(): void }> {
  const py = spawn(
    'python3',
    [
      '-c',
      [
        'import socket,sys,time',
        's=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(0)',
        'print(s.getsockname()[1], flush=True)',
        'fill=[]',
        'for _ in range(4):',
        '  c=socket.socket(); c.setblocking(False)',
        '  try: c.connect(("127.0.0.1", s.getsockname()[1]))',
        '  except BlockingIOError: pass',
        '  fill.append(c)',
        'time.sleep(60)',
      ].join('\n'),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await within(
    new Promise<number>((resolve) => py.stdout.once('data', (d) => resolve(Number(String(d).trim())))),
    5000,
    'python blackhole',
  );
  await sleep(200);
  return { port, close: () => py.kill() };
}

onBothPaths(
  'proxy_connect_timeout: a hanging connect counts as a failure and moves to the next server',
  async (t) => {
    const peer = await backend();
    let hole: Awaited<ReturnType<typeof blackhole>>;
    try {
      hole = await blackhole();
    } catch (error) {
      t.skip(`python3 blackhole unavailable: ${(error as Error).message}`);
      await peer.close();
      return;
    }
    const lb = await start(
      config(
        [streamServer({ proxyPass: { kind: 'group', name: 'g' }, proxyConnectTimeoutMs: 500 })],
        [group('g', [server(hole.port), server(peer.port)])],
      ),
    );
    try {
      const began = Date.now();
      assert.equal(await roundTrip(lb.ports[0]!), 'ping');
      const took = Date.now() - began;
      const [r] = await lb.waitForRecords(1);
      assert.equal(r!.tries, 2);
      assert.ok(took >= 450 && took < 3000, `took ${took} ms`);
      // Ejected now (max_fails=1): the next session goes straight to the live one.
      const again = Date.now();
      await roundTrip(lb.ports[0]!);
      assert.ok(Date.now() - again < 400);
    } finally {
      await lb.close();
      await peer.close();
      hole.close();
    }
  },
);

onBothPaths('proxy_next_upstream_timeout stops retrying once the time is spent', async (t) => {
  let hole: Awaited<ReturnType<typeof blackhole>>;
  try {
    hole = await blackhole();
  } catch (error) {
    t.skip(`python3 blackhole unavailable: ${(error as Error).message}`);
    return;
  }
  const peer = await backend();
  const lb = await start(
    config(
      [
        streamServer({
          proxyPass: { kind: 'group', name: 'g' },
          proxyConnectTimeoutMs: 600,
          proxyNextUpstreamTimeoutMs: 500,
        }),
      ],
      [group('g', [server(hole.port, { maxFails: 0 }), server(peer.port)])],
    ),
  );
  try {
    const s = await dial(lb.ports[0]!);
    await ending(s, 5000);
    const [r] = await lb.waitForRecords(1);
    assert.equal(r!.reason, 'connect_failed');
    assert.equal(r!.tries, 1);
    assert.match(r!.detail ?? '', /timed out/);
  } finally {
    await lb.close();
    await peer.close();
    hole.close();
  }
});

onBothPaths('proxy_pass to a single address that refuses: connect_failed', async () => {
  const lb = await start(config([streamServer({ proxyPass: passTo(await closedPort()) })]));
  try {
    const s = await dial(lb.ports[0]!);
    await ending(s, 5000);
    const [r] = await lb.waitForRecords(1);
    assert.equal(r!.reason, 'connect_failed');
  } finally {
    await lb.close();
  }
});
