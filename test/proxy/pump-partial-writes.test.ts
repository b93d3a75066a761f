/**
 * The pump copies each read into a reused write buffer and gives the buffer
 * back once the kernel took the write (src/proxy/pump.ts). A write the kernel
 * takes only in part keeps its buffer until 'drain': reused earlier, the next
 * read would overwrite bytes libuv has not sent yet. A receiver that reads in
 * bursts makes many writes partial; every byte must still arrive in order,
 * both ways, and the proxy must hold no more than a write buffer beyond the
 * kernel's per direction.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Socket as NetSocket, type Socket } from 'node:net';
import {
  backend,
  config,
  dial,
  onBothPaths,
  passTo,
  randomChunks,
  sha256,
  start,
  streamServer,
  writeAll,
} from './fixtures.js';

const BYTES = 8 * 1024 * 1024;

/** Reads `s` in bursts (a 10 ms pause after each 512 KiB); resolves with the SHA-256 of everything read. */
function readInBursts(s: Socket): Promise<{ hash: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    let bytes = 0;
    let sincePause = 0;
    s.on('data', (d: Buffer) => {
      h.update(d);
      bytes += d.length;
      sincePause += d.length;
      if (sincePause >= 512 * 1024) {
        sincePause = 0;
        s.pause();
        setTimeout(() => s.resume(), 10);
      }
    });
    s.once('end', () => resolve({ hash: h.digest('hex'), bytes }));
    s.once('error', reject);
  });
}

/** Bytes libuv still holds for `s` beyond its Writable buffer (Node's `writeQueueSize`). */
function queued(s: Socket): number {
  // A handle session's view of a leg (proxy/stream-handles.ts) has no Writable: its
  // writableLength is already libuv's queue.
  if (!(s instanceof NetSocket)) return (s as { writableLength: number }).writableLength;
  const handle = (s as unknown as { _handle?: { writeQueueSize?: number } })._handle;
  return s.writableLength + (handle?.writeQueueSize ?? 0);
}

const SESSIONS = 4;

onBothPaths(
  `${SESSIONS} sessions, both ways at once, receivers reading in bursts: every byte arrives in order, the proxy holds at most a write buffer per direction`,
  async () => {
    const atBackend: { sent: string; received: Promise<{ hash: string; bytes: number }> }[] = [];
    const peer = await backend((s: Socket) => {
      const chunks = randomChunks(BYTES, 64 * 1024);
      atBackend.push({ sent: sha256(chunks), received: readInBursts(s) });
      void writeAll(s, chunks);
    });
    const lb = await start(config([streamServer({ proxyPass: passTo(peer.port) })]));
    let most = 0;
    // libuv's queue of every socket of every session (the Writable's stays empty on the direct path).
    const sampler = setInterval(() => {
      for (const session of lb.runtime.liveSessions()) {
        most = Math.max(most, queued(session.client));
        if (session.upstreamSocket) most = Math.max(most, queued(session.upstreamSocket));
      }
    }, 2);
    try {
      const clients = await Promise.all(
        Array.from({ length: SESSIONS }, async () => {
          const s = await dial(lb.ports[0]!, { allowHalfOpen: true });
          const chunks = randomChunks(BYTES, 64 * 1024);
          const received = readInBursts(s);
          await writeAll(s, chunks);
          return { sent: sha256(chunks), received: await received };
        }),
      );
      const backendReceived = await Promise.all(atBackend.map((b) => b.received));
      assert.equal(atBackend.length, SESSIONS);
      const sentByBackend = new Set(atBackend.map((b) => b.sent));
      const receivedByBackend = new Set(backendReceived.map((r) => r.hash));
      for (const c of clients) {
        assert.equal(c.received.bytes, BYTES);
        assert.ok(sentByBackend.has(c.received.hash), 'a client got its upstream bytes unchanged');
        assert.ok(receivedByBackend.has(c.sent), 'an upstream got its client bytes unchanged');
      }
      assert.ok(most <= 256 * 1024, `the proxy held ${most} bytes for one socket`);
    } finally {
      clearInterval(sampler);
      await lb.close();
      await peer.close();
    }
  },
);
