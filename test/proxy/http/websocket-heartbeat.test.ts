/**
 * websocket_heartbeat with real `ws` peers on both ends: keepwire's
 * unsolicited Pongs (RFC 6455 §5.5.3) reach only the configured side, are
 * valid frames to a strict WebSocket parser (ws closes the connection with
 * 1002 on any framing error, masked or not as RFC 6455 §5.1 requires), are
 * never inserted inside a frame, and leave every message byte-identical,
 * compressed (permessage-deflate), fragmented, binary and 64 KiB+ ones too.
 * A tunnel whose bytes are not WebSocket frames is relayed untouched,
 * without heartbeats.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import type { WebSocketHeartbeat } from '../../../src/config/model.js';
import type { RequestRecord } from '../../../src/proxy/http/index.js';
import { httpConfig, httpGroup, httpServer, location, passToGroup, server, startHttp } from './fixtures.js';

interface Pair {
  client: WebSocket;
  /** The origin's side of the one connection. */
  origin: WebSocket;
  pongs: { client: number; origin: number };
  /** Closes cleanly and returns the tunnel's access line. */
  close(): Promise<RequestRecord>;
  /** Tears everything down (for a failed test). */
  dispose(): Promise<void>;
}

async function pairThroughKeepwire(
  heartbeat: WebSocketHeartbeat | null,
  perMessageDeflate = false,
): Promise<Pair> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const originP = new Promise<WebSocket>((resolve) => wss.once('connection', (s) => resolve(s)));
  const lb = await startHttp(
    httpConfig(
      [
        httpServer({
          locations: [location({ proxyPass: passToGroup('app'), websocketHeartbeat: heartbeat })],
        }),
      ],
      [httpGroup('app', [server((wss.address() as AddressInfo).port)])],
    ),
  );
  const client = new WebSocket(`ws://127.0.0.1:${lb.port}/ws`, { perMessageDeflate });
  const errors: Error[] = [];
  client.on('error', (e) => errors.push(e));
  await new Promise<void>((resolve, reject) => {
    client.once('open', () => resolve());
    client.once('error', reject);
  });
  const origin = await originP;
  origin.on('error', (e) => errors.push(e));
  const pongs = { client: 0, origin: 0 };
  const dispose = async () => {
    client.terminate();
    origin.terminate();
    await lb.close();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  };
  client.on('pong', () => pongs.client++);
  origin.on('pong', () => pongs.origin++);
  return {
    client,
    origin,
    pongs,
    async close() {
      assert.deepEqual(errors, [], 'no framing error on either peer');
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
      client.close(1000, 'done');
      await closed;
      const [record] = await lb.waitForRequests(1);
      await dispose();
      return record!;
    },
    dispose,
  };
}

/** Runs `body` on a fresh pair, tearing it down whatever happens. */
async function withPair(
  heartbeat: WebSocketHeartbeat | null,
  perMessageDeflate: boolean,
  body: (p: Pair) => Promise<void>,
): Promise<void> {
  const p = await pairThroughKeepwire(heartbeat, perMessageDeflate);
  try {
    await body(p);
  } finally {
    await p.dispose();
  }
}

/** Resolves when `cond` holds, checked on every event of the given peers; fails after `ms`. */
function until(what: string, cond: () => boolean, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = setInterval(() => {
      if (cond()) {
        clearInterval(poll);
        resolve();
      } else if (Date.now() - started > ms) {
        clearInterval(poll);
        reject(new Error(`${what} not seen within ${ms} ms`));
      }
    }, 20);
  });
}

/** The next `n` messages on `ws`, as received. */
function messages(ws: WebSocket, n: number, ms: number): Promise<{ data: Buffer; binary: boolean }[]> {
  return new Promise((resolve, reject) => {
    const got: { data: Buffer; binary: boolean }[] = [];
    const timer = setTimeout(() => reject(new Error(`${got.length} of ${n} messages within ${ms} ms`)), ms);
    const on = (data: RawData, binary: boolean) => {
      got.push({ data: Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[]), binary });
      if (got.length === n) {
        clearTimeout(timer);
        ws.off('message', on);
        resolve(got);
      }
    };
    ws.on('message', on);
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

for (const side of ['both', 'client', 'upstream'] as const) {
  test(`websocket_heartbeat 1s ${side}: after 10 idle periods only the configured side got Pongs, and later messages arrive in order`, async () => {
    await withPair({ intervalMs: 1000, side }, false, async (p) => {
      const wantClient = side !== 'upstream';
      const wantOrigin = side !== 'client';
      // 10 periods of 1 s; the wait allows 2x for a loaded host.
      await until(
        '10 heartbeats',
        () => (!wantClient || p.pongs.client >= 10) && (!wantOrigin || p.pongs.origin >= 10),
        25_000,
      );
      if (!wantClient) assert.equal(p.pongs.client, 0, 'no Pong toward the client');
      if (!wantOrigin) assert.equal(p.pongs.origin, 0, 'no Pong toward the upstream');
      const n = 50;
      const atOrigin = messages(p.origin, n, 10_000);
      const atClient = messages(p.client, n, 10_000);
      for (let i = 0; i < n; i++) {
        p.client.send(`up ${i}`);
        p.origin.send(`down ${i}`);
      }
      assert.deepEqual(
        (await atOrigin).map((m) => m.data.toString()),
        Array.from({ length: n }, (_, i) => `up ${i}`),
      );
      assert.deepEqual(
        (await atClient).map((m) => m.data.toString()),
        Array.from({ length: n }, (_, i) => `down ${i}`),
      );
      const sent = p.pongs.client + p.pongs.origin;
      const record = await p.close();
      assert.equal(record.status, 101);
      // Pongs in flight at close may not have been read; none may be missing from the count.
      assert.ok(
        record.websocketHeartbeats !== undefined && record.websocketHeartbeats >= sent,
        `access line counts ${record.websocketHeartbeats} heartbeats, peers saw ${sent}`,
      );
    });
  });
}

interface Msg {
  data: Buffer;
  binary: boolean;
  /** Sent as this many fragments. */
  fragments: number;
}

function workload(): Msg[] {
  const out: Msg[] = [];
  for (let i = 0; i < 40; i++) {
    const kind = i % 5;
    if (kind === 0)
      out.push({ data: Buffer.from(`text ${i} ${'x'.repeat(i * 7)}`), binary: false, fragments: 1 });
    if (kind === 1) out.push({ data: randomBytes(70 * 1024 + i), binary: true, fragments: 1 });
    if (kind === 2) out.push({ data: randomBytes(300 + i), binary: true, fragments: 4 });
    if (kind === 3) out.push({ data: Buffer.alloc(200 * 1024, i), binary: true, fragments: 3 });
    if (kind === 4) out.push({ data: Buffer.from('é'.repeat(20_000 + i)), binary: false, fragments: 2 });
  }
  return out;
}

function sendAll(ws: WebSocket, msgs: Msg[]): Promise<void> {
  return (async () => {
    for (const [i, m] of msgs.entries()) {
      const step = Math.ceil(m.data.length / m.fragments);
      for (let at = 0, k = 0; k < m.fragments; k++, at += step) {
        const last = k === m.fragments - 1;
        ws.send(m.data.subarray(at, last ? m.data.length : at + step), { binary: m.binary, fin: last });
        // Pauses longer than the heartbeat period, between the fragments of
        // some messages and after others, so Pongs land inside fragmented
        // messages (RFC 6455 §5.4 allows it) and between messages alike.
        if (!last && i % 3 === 0) await new Promise((r) => setTimeout(r, 80));
      }
      if (i % 4 === 0) await new Promise((r) => setTimeout(r, 80));
    }
  })();
}

for (const perMessageDeflate of [false, true]) {
  test(`websocket_heartbeat 30ms${perMessageDeflate ? ' with permessage-deflate' : ''}: fragmented, binary and 64 KiB+ messages pass byte-identical both ways with heartbeats interleaved`, async () => {
    await withPair({ intervalMs: 30, side: 'both' }, perMessageDeflate, async (p) => {
      if (perMessageDeflate) {
        assert.match(p.client.extensions, /permessage-deflate/, 'deflate negotiated');
      }
      const up = workload();
      const down = workload();
      const atOrigin = messages(p.origin, up.length, 60_000);
      const atClient = messages(p.client, down.length, 60_000);
      const before = { ...p.pongs };
      await Promise.all([sendAll(p.client, up), sendAll(p.origin, down)]);
      const [gotUp, gotDown] = await Promise.all([atOrigin, atClient]);
      assert.deepEqual(
        gotUp.map((m) => [sha(m.data), m.binary]),
        up.map((m) => [sha(m.data), m.binary]),
      );
      assert.deepEqual(
        gotDown.map((m) => [sha(m.data), m.binary]),
        down.map((m) => [sha(m.data), m.binary]),
      );
      assert.ok(p.pongs.client > before.client, 'heartbeats reached the client during the exchange');
      assert.ok(p.pongs.origin > before.origin, 'heartbeats reached the upstream during the exchange');
      await p.close();
    });
  });
}

/** ws keeps its socket in `_socket`; the test writes a frame through it by hand to stall it halfway. */
const rawSocket = (ws: WebSocket) => (ws as unknown as { _socket: Socket })._socket;

/** One binary frame (RFC 6455 §5.2) with a 16-bit length, masked when `mask` is given. */
function binaryFrame(payload: Buffer, mask?: Buffer): Buffer {
  const head = Buffer.from([0x82, (mask ? 0x80 : 0) | 126, payload.length >> 8, payload.length & 0xff]);
  if (!mask) return Buffer.concat([head, payload]);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([head, mask, masked]);
}

test('websocket_heartbeat 50ms: a frame stalled halfway (for 6 periods) is never split; heartbeats to that side wait for its end', async () => {
  await withPair({ intervalMs: 50, side: 'both' }, false, async (p) => {
    await until('first heartbeats', () => p.pongs.client > 0 && p.pongs.origin > 0, 10_000);
    const up = randomBytes(1000);
    const down = randomBytes(1000);
    const upFrame = binaryFrame(up, randomBytes(4));
    const downFrame = binaryFrame(down);
    const atOrigin = messages(p.origin, 1, 10_000);
    const atClient = messages(p.client, 1, 10_000);
    rawSocket(p.client).write(upFrame.subarray(0, 500));
    rawSocket(p.origin).write(downFrame.subarray(0, 500));
    await new Promise((r) => setTimeout(r, 300));
    rawSocket(p.client).write(upFrame.subarray(500));
    rawSocket(p.origin).write(downFrame.subarray(500));
    assert.ok(sha((await atOrigin)[0]!.data) === sha(up), 'the origin got the frame whole');
    assert.ok(sha((await atClient)[0]!.data) === sha(down), 'the client got the frame whole');
    // Heartbeats resume after the frame.
    const after = { ...p.pongs };
    await until(
      'heartbeats after the frame',
      () => p.pongs.client > after.client && p.pongs.origin > after.origin,
      10_000,
    );
    await p.close();
  });
});

test('a tunnel that is not a WebSocket stream (reserved opcode) is relayed byte for byte, without heartbeats, logged once', async () => {
  // A raw origin: answers the handshake with Upgrade: websocket, then
  // echoes whatever it reads, so every byte either side gets is accounted for.
  const originSockets: Socket[] = [];
  const origin = createServer((s) => {
    originSockets.push(s);
    let head = '';
    const onHead = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      s.off('data', onHead);
      s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
      const rest = Buffer.from(head.slice(end + 4), 'latin1');
      if (rest.length > 0) s.write(rest);
      s.on('data', (c) => s.write(c));
    };
    s.on('data', onHead);
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', () => resolve()));
  const lb = await startHttp(
    httpConfig(
      [
        httpServer({
          locations: [
            location({
              proxyPass: passToGroup('app'),
              websocketHeartbeat: { intervalMs: 500, side: 'both' },
            }),
          ],
        }),
      ],
      [httpGroup('app', [server((origin.address() as AddressInfo).port)])],
    ),
  );
  const client = connect(lb.port, '127.0.0.1');
  try {
    let got = Buffer.alloc(0);
    client.on('data', (c) => {
      got = Buffer.concat([got, c]);
    });
    client.write(
      'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    await until('101', () => got.includes('\r\n\r\n'), 10_000);
    const headLength = got.indexOf('\r\n\r\n') + 4;
    // A masked frame header with reserved opcode 0x3, then arbitrary bytes.
    const bad = Buffer.concat([Buffer.from([0x83, 0x85, 1, 2, 3, 4]), randomBytes(4000)]);
    client.write(bad);
    await until('the echo', () => got.length >= headLength + bad.length, 10_000);
    const relay = await (async () => {
      await until('websocket_relay line', () => lb.records.some((r) => r.msg === 'websocket_relay'), 5_000);
      return lb.records.filter((r) => r.msg === 'websocket_relay');
    })();
    assert.equal(relay.length, 1);
    assert.match(JSON.stringify(relay[0]), /reserved opcode 0x3/);
    // 5 heartbeat periods of quiet: nothing may arrive but the echo.
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(got.length, headLength + bad.length, 'no heartbeat after the fallback');
    assert.ok(got.subarray(headLength).equals(bad), 'bytes relayed intact');
    // Bytes after the bad frame still flow both ways, untouched.
    const more = randomBytes(70_000);
    client.write(more);
    await until('the second echo', () => got.length >= headLength + bad.length + more.length, 10_000);
    assert.ok(got.subarray(headLength + bad.length).equals(more));
    assert.equal(lb.records.filter((r) => r.msg === 'websocket_relay').length, 1, 'logged once per tunnel');
  } finally {
    client.destroy();
    for (const s of originSockets) s.destroy();
    await lb.close();
    await new Promise<void>((resolve) => origin.close(() => resolve()));
  }
});
