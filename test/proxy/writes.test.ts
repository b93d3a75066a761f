/**
 * proxy/writes: writes straight to the socket handle when nothing is queued,
 * on real loopback sockets, including the slow-reader path where libuv
 * queues what the kernel did not take.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import {
  allSent,
  blocked,
  directWritesAvailable,
  flushed,
  forceStreamWrites,
  send,
} from '../../src/proxy/writes.js';

interface Pair {
  writer: Socket;
  reader: Socket;
  server: Server;
}

async function pair(): Promise<Pair> {
  let onAccept!: (s: Socket) => void;
  const accepted = new Promise<Socket>((r) => {
    onAccept = r;
  });
  const server = createServer({ pauseOnConnect: true }, onAccept);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const writer = connect((server.address() as AddressInfo).port, '127.0.0.1');
  await new Promise<void>((r, j) => writer.once('connect', r).once('error', j));
  return { writer, reader: await accepted, server };
}

function close(p: Pair): void {
  p.writer.destroy();
  p.reader.destroy();
  p.server.close();
}

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

function readAll(s: Socket, n: number, ms = 10_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const timer = setTimeout(() => reject(new Error(`read ${got} of ${n} bytes in ${ms} ms`)), ms);
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      got += c.length;
      if (got >= n) {
        clearTimeout(timer);
        resolve(Buffer.concat(chunks));
      }
    });
    s.resume();
  });
}

test('this Node exposes the write request send needs', () => {
  // If a Node release drops it, send still works (socket.write) but the proxy gets slower: say so.
  assert.equal(directWritesAvailable(), true);
});

for (const path of ['direct', 'stream'] as const) {
  describe(`send (${path})`, () => {
    after(() => forceStreamWrites(false));

    test('small writes arrive in order and the socket is never blocked', async () => {
      forceStreamWrites(path === 'stream');
      const p = await pair();
      try {
        const parts: Buffer[] = [];
        for (let i = 0; i < 200; i++) {
          const part = i % 2 === 0 ? Buffer.from(`line ${i}\n`) : `text ${i}\n`;
          parts.push(Buffer.from(part as string, 'latin1'));
          send(p.writer, part);
        }
        const whole = Buffer.concat(parts);
        assert.equal(blocked(p.writer), false);
        const got = await readAll(p.reader, whole.length);
        assert.equal(got.toString('latin1'), whole.toString('latin1'));
      } finally {
        close(p);
      }
    });

    test('a slow reader: the rest is queued, blocked until drain, then flushed; mixed with socket.write in order', async () => {
      forceStreamWrites(path === 'stream');
      const p = await pair();
      try {
        // The reader does not read yet: socket buffers fill and libuv queues the rest.
        const big = randomBytes(24 * 1024 * 1024);
        send(p.writer, big);
        assert.equal(blocked(p.writer), true);
        assert.equal(allSent(p.writer), false);
        const tail1 = Buffer.from('after-big-via-write;');
        p.writer.write(tail1);
        const tail2 = Buffer.from('after-big-via-send;');
        send(p.writer, tail2);
        let flushedAt = 0;
        const done = new Promise<void>((r) =>
          flushed(p.writer, () => {
            flushedAt = Date.now();
            r();
          }),
        );
        const drained = new Promise<void>((r) => p.writer.once('drain', r));
        const expected = Buffer.concat([big, tail1, tail2]);
        const got = await readAll(p.reader, expected.length, 30_000);
        await drained;
        await done;
        assert.ok(flushedAt > 0);
        assert.equal(got.length, expected.length);
        assert.equal(sha(got), sha(expected));
        assert.equal(blocked(p.writer), false);
        assert.equal(allSent(p.writer), true);
      } finally {
        close(p);
      }
    });

    test('destroying the socket with bytes queued calls flushed waiters and emits close, no exception', async () => {
      forceStreamWrites(path === 'stream');
      const p = await pair();
      try {
        send(p.writer, randomBytes(24 * 1024 * 1024));
        const called = new Promise<void>((r) => flushed(p.writer, r));
        const closed = new Promise<void>((r) => p.writer.once('close', r));
        p.writer.on('error', () => {});
        p.writer.destroy();
        await Promise.race([
          Promise.all([called, closed]),
          new Promise((_r, j) => setTimeout(() => j(new Error('no flushed callback or close')), 5000)),
        ]);
      } finally {
        close(p);
      }
    });

    test('a write to a socket the peer reset fails as an error on the socket', async () => {
      forceStreamWrites(path === 'stream');
      const p = await pair();
      try {
        // The writer does not read, so the reset is learnt from a write.
        p.writer.pause();
        const failed = new Promise<NodeJS.ErrnoException>((r) => p.writer.once('error', r));
        p.reader.resetAndDestroy();
        await new Promise((r) => setTimeout(r, 100));
        // The first write may still be taken by the kernel before the reset is seen.
        for (let i = 0; i < 20 && !p.writer.destroyed; i++) {
          send(p.writer, Buffer.alloc(64 * 1024));
          await new Promise((r) => setTimeout(r, 20));
        }
        const e = await Promise.race([
          failed,
          new Promise<never>((_r, j) => setTimeout(() => j(new Error('no error')), 5000)),
        ]);
        assert.match(String(e.code), /ECONNRESET|EPIPE/);
      } finally {
        close(p);
      }
    });
  });
}
