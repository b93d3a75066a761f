/**
 * readsTo: reads of accepted sockets through `onread` (and the 'data' event
 * fallback), on real loopback sockets.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import {
  bodyView,
  forceDataEvents,
  isReadView,
  onreadAvailable,
  owned,
  READ_BUFFER,
  readsTo,
  readsViewTo,
} from '../../src/proxy/reads.js';

interface Pair {
  client: Socket;
  accepted: Socket;
  server: Server;
}

async function pair(pauseOnConnect: boolean): Promise<Pair> {
  let onAccept!: (s: Socket) => void;
  const accepted = new Promise<Socket>((r) => {
    onAccept = r;
  });
  const server = createServer({ pauseOnConnect, allowHalfOpen: true }, onAccept);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  await new Promise<void>((r, j) => client.once('connect', r).once('error', j));
  return { client, accepted: await accepted, server };
}

function close(p: Pair): void {
  p.client.destroy();
  p.accepted.destroy();
  p.server.close();
}

function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  return Promise.race([
    p,
    new Promise<T>((_r, j) => setTimeout(() => j(new Error(`${what}: nothing after ${ms} ms`)), ms).unref()),
  ]);
}

for (const path of ['onread', 'data events'] as const) {
  describe(`readsTo (${path})`, () => {
    after(() => forceDataEvents(false));

    test('every byte arrives once, in order, each chunk a buffer of its own', async () => {
      forceDataEvents(path === 'data events');
      const p = await pair(true);
      try {
        const payload = randomBytes(3 * 1024 * 1024);
        const chunks: Buffer[] = [];
        let received = 0;
        const done = new Promise<void>((resolve) => {
          readsTo(p.accepted, (c) => {
            chunks.push(c);
            received += c.length;
            if (received >= payload.length) resolve();
          });
        });
        p.accepted.resume();
        p.client.write(payload);
        await within(10_000, 'payload', done);
        if (path === 'onread')
          assert.equal(onreadAvailable(), true, 'this Node should allow onread on accepted sockets');
        // Chunks must not be views of one reused buffer: compare after all arrived.
        const whole = Buffer.concat(chunks);
        assert.equal(whole.length, payload.length);
        assert.equal(
          createHash('sha256').update(whole).digest('hex'),
          createHash('sha256').update(payload).digest('hex'),
        );
        if (path === 'onread') assert.ok(chunks.length > 1, 'several reads');
      } finally {
        close(p);
      }
    });

    test('pause() stops reads and resume() starts them again', async () => {
      forceDataEvents(path === 'data events');
      const p = await pair(true);
      try {
        let received = 0;
        readsTo(p.accepted, (c) => {
          received += c.length;
        });
        p.accepted.resume();
        p.client.write(Buffer.alloc(1000));
        await within(
          5000,
          'first bytes',
          waitFor(() => received === 1000),
        );
        p.accepted.pause();
        // Enough to fill the socket buffers: the writer must see backpressure.
        const big = Buffer.alloc(16 * 1024 * 1024);
        const flushed = p.client.write(big);
        await new Promise((r) => setTimeout(r, 300));
        assert.equal(flushed, false);
        assert.ok(received < 1000 + big.length, 'a paused socket did not read everything');
        const atPause = received;
        await new Promise((r) => setTimeout(r, 200));
        assert.equal(received, atPause, 'no reads while paused');
        p.accepted.resume();
        await within(
          10_000,
          'rest after resume',
          waitFor(() => received === 1000 + big.length),
        );
      } finally {
        close(p);
      }
    });

    test('a second readsTo hands later reads over; end and close still arrive', async () => {
      forceDataEvents(path === 'data events');
      const p = await pair(true);
      try {
        const first: Buffer[] = [];
        const second: Buffer[] = [];
        readsTo(p.accepted, (c) => first.push(c));
        p.accepted.resume();
        p.client.write('one');
        await within(
          5000,
          'one',
          waitFor(() => Buffer.concat(first).toString() === 'one'),
        );
        readsTo(p.accepted, (c) => second.push(c));
        const ended = new Promise<void>((r) => p.accepted.once('end', r));
        p.client.end('two');
        await within(5000, 'end', ended);
        assert.equal(Buffer.concat(first).toString(), 'one');
        assert.equal(Buffer.concat(second).toString(), 'two');
      } finally {
        close(p);
      }
    });

    test('bytes read before readsTo are not lost', async () => {
      forceDataEvents(path === 'data events');
      const p = await pair(false);
      try {
        p.client.write('early');
        // The socket reads on its own (no pauseOnConnect); nobody listens yet.
        await within(
          5000,
          'early bytes buffered',
          waitFor(() => p.accepted.readableLength === 5),
        );
        const got: Buffer[] = [];
        readsTo(p.accepted, (c) => got.push(c));
        p.client.write('-late');
        await within(
          5000,
          'all',
          waitFor(() => Buffer.concat(got).toString() === 'early-late'),
        );
      } finally {
        close(p);
      }
    });
  });
}

async function waitFor(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 10));
}

test("a read's view (readsViewTo) is a Buffer over the shared read buffer, valid as one", async () => {
  // As the onread tests above: a Node that takes the fast path away fails here, never skips.
  assert.equal(onreadAvailable(), true, 'this Node should allow onread on accepted sockets');
  const p = await pair(false);
  try {
    interface Seen {
      isBuffer: boolean;
      text: string;
      sub: string;
      view: boolean;
      kept: Buffer;
      body: { isBuffer: boolean; text: string; offset: number; view: boolean; kept: string };
    }
    const seen = new Promise<Seen>((resolve) => {
      readsViewTo(p.accepted, (chunk: Buffer) => {
        // A body in the same read as its head (http/parser.ts): a view of the view, made without subarray.
        const body = bodyView(chunk, 6, 9);
        resolve({
          isBuffer: Buffer.isBuffer(chunk) && chunk instanceof Uint8Array,
          text: chunk.toString('latin1'),
          sub: chunk.subarray(6).toString(),
          view: isReadView(chunk) && chunk.buffer === READ_BUFFER.buffer,
          kept: owned(chunk),
          body: {
            isBuffer: Buffer.isBuffer(body),
            text: body.toString(),
            offset: body.byteOffset - chunk.byteOffset,
            view: isReadView(body),
            kept: owned(body).toString(),
          },
        });
      });
    });
    p.client.write('hello world');
    const r = await within(10_000, 'the read', seen);
    assert.equal(r.isBuffer, true);
    assert.equal(r.text, 'hello world');
    assert.equal(r.sub, 'world');
    assert.equal(r.view, true, 'a view of READ_BUFFER, not a copy');
    assert.notEqual(r.kept.buffer, READ_BUFFER.buffer, 'owned() copies a view');
    assert.equal(r.kept.toString(), 'hello world');
    assert.deepEqual(r.body, { isBuffer: true, text: 'wor', offset: 6, view: true, kept: 'wor' });
  } finally {
    close(p);
  }
});

test('bodyView of a Buffer that is not the last read is its subarray', () => {
  const own = Buffer.from('head\r\n\r\nbody');
  const body = bodyView(own, 8, 12);
  assert.equal(body.toString(), 'body');
  assert.equal(body.buffer, own.buffer);
  assert.equal(body.byteOffset, own.byteOffset + 8);
  assert.equal(isReadView(body), false);
});
