/**
 * A slow reader on one side must slow the writer on the other, not grow
 * keepwire's buffers: the proxy holds at most a socket's high-water mark.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import {
  backend,
  config,
  dial,
  onBothPaths,
  passTo,
  sleep,
  start,
  streamServer,
  within,
} from './fixtures.js';

const CHUNK = Buffer.alloc(64 * 1024, 1);

/** Writes until the socket has refused more for `stallMs` (backpressure reached us), bounded by `maxBytes`. */
async function writeUntilStalled(s: Socket, maxBytes: number, stallMs = 300): Promise<number> {
  let written = 0;
  while (written < maxBytes) {
    written += CHUNK.length;
    if (!s.write(CHUNK)) {
      const drained = await Promise.race([
        new Promise<boolean>((resolve) => s.once('drain', () => resolve(true))),
        sleep(stallMs).then(() => false),
      ]);
      if (!drained) return written;
    }
  }
  return written;
}

onBothPaths('client → slow upstream: the client is throttled and keepwire buffers stay bounded', async () => {
  const peer = await backend((s) => s.pause());
  const lb = await start(config([streamServer({ proxyPass: passTo(peer.port) })]));
  try {
    const client = await dial(lb.ports[0]!);
    const written = await within(writeUntilStalled(client, 256 * 1024 * 1024), 60_000, 'stall');
    assert.ok(written < 64 * 1024 * 1024, `client pushed ${written} bytes without being stopped`);
    const [session] = lb.runtime.liveSessions();
    assert.ok(
      session!.upstreamSocket!.writableLength <= 1024 * 1024,
      `proxy buffered ${session!.upstreamSocket!.writableLength}`,
    );
    // The backend starts reading: everything flows through.
    let got = 0;
    const upstreamSide = peer.accepted[0]!;
    upstreamSide.on('data', (d: Buffer) => {
      got += d.length;
    });
    upstreamSide.resume();
    await within(
      (async () => {
        while (got < written) await sleep(20);
      })(),
      20_000,
      'drain',
    );
    assert.equal(got, written);
    client.destroy();
  } finally {
    await lb.close();
    await peer.close();
  }
});

onBothPaths(
  'upstream → slow client: the upstream is throttled and keepwire buffers stay bounded',
  async () => {
    let upstreamWrote: Promise<number> | undefined;
    const peer = await backend((s) => {
      upstreamWrote = writeUntilStalled(s, 256 * 1024 * 1024);
    });
    const lb = await start(config([streamServer({ proxyPass: passTo(peer.port) })]));
    try {
      const client = await dial(lb.ports[0]!);
      client.pause();
      while (upstreamWrote === undefined) await sleep(10);
      const written = await within(upstreamWrote, 60_000, 'stall');
      assert.ok(written < 64 * 1024 * 1024, `upstream pushed ${written} bytes without being stopped`);
      const [session] = lb.runtime.liveSessions();
      assert.ok(
        session!.client.writableLength <= 1024 * 1024,
        `proxy buffered ${session!.client.writableLength}`,
      );
      client.destroy();
    } finally {
      await lb.close();
      await peer.close();
    }
  },
);
