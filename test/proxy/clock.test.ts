/**
 * The proxy's clock (src/proxy/clock.ts): read once per I/O callback on the
 * request path, fresh everywhere else. Real loopback sockets read through
 * readsTo, as the HTTP client leg reads.
 */
import assert from 'node:assert/strict';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { now } from '../../src/proxy/clock.js';
import { readsTo } from '../../src/proxy/reads.js';

/** Burns CPU for `ms` (the clock must not move inside a held callback, whatever its work costs). */
function busy(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {}
}

test('inside a read callback now() is the time the callback started; outside it is the time now', async () => {
  let onAccept!: (s: Socket) => void;
  const accepted = new Promise<Socket>((r) => {
    onAccept = r;
  });
  const server = createServer(onAccept);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  const socket = await accepted;
  try {
    const seen = new Promise<{ first: number; afterWork: number; startedBy: number }>((resolve) => {
      readsTo(socket, () => {
        const startedBy = Date.now();
        const first = now();
        busy(30);
        resolve({ first, afterWork: now(), startedBy });
      });
    });
    client.write('x');
    const { first, afterWork, startedBy } = await seen;
    assert.equal(afterWork, first, '30 ms of work later, the held clock has not moved');
    assert.ok(first <= startedBy, 'the held time was read when the callback started');
    // Outside the callback: the real time, 30 ms or more past the held reading.
    const outside = now();
    assert.ok(
      outside - first >= 30,
      `outside a callback now() is fresh (${outside - first} ms after the held reading)`,
    );
    const a = now();
    busy(15);
    assert.ok(now() - a >= 15, 'outside a callback the clock moves between calls');
  } finally {
    client.destroy();
    socket.destroy();
    server.close();
  }
});
