/**
 * Rapid reset (CVE-2023-44487): a client that opens streams and resets them
 * at once makes the proxy start (and cancel) upstream requests as fast as it
 * can write frames. keepwire closes such a connection with GOAWAY
 * ENHANCE_YOUR_CALM once the client has reset more than twice
 * http2_max_concurrent_streams of its streams before their responses (and
 * most of those it opened), logs it, and stays responsive to other
 * clients; a client that cancels a few streams keeps its connection.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { closedPort, sleep } from '../fixtures.js';
import { FRAME, frame, getHeaderBlock, h2request, h2session, RawH2, startFromText } from './fixtures.js';

const END_STREAM_HEADERS = 0x5;
const CANCEL = 0x8;
const ENHANCE_YOUR_CALM = 0xb;

function rst(stream: number, code: number): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(code);
  return frame(FRAME.RST_STREAM, 0, stream, p);
}

test('a client resetting streams as fast as it opens them gets GOAWAY ENHANCE_YOUR_CALM; the server stays responsive', async () => {
  // An upstream slow enough that every reset lands before its response.
  const up = createServer((req, res) => {
    req.resume();
    setTimeout(() => res.end('ok'), 300);
  });
  await new Promise<void>((resolve) => up.listen(0, '127.0.0.1', resolve));
  const port = await closedPort();
  const lb = await startFromText(`
    http {
      server {
        listen 127.0.0.1:${port};
        http2 on;
        http2_max_concurrent_streams 16;
        location / { proxy_pass http://127.0.0.1:${(up.address() as AddressInfo).port}; }
      }
    }`);
  try {
    const authority = `127.0.0.1:${port}`;
    // A client cancelling a few streams (fewer than the bound) keeps its connection.
    const polite = await RawH2.open(port);
    polite.hello();
    await polite.waitFor((f) => f.type === FRAME.SETTINGS && (f.flags & 1) === 0, 5_000, 'server SETTINGS');
    polite.write(frame(FRAME.SETTINGS, 1, 0));
    let id = 1;
    // Spread out: Node 26's http2 itself refuses (ENHANCE_YOUR_CALM) a stream right after a burst of 20 cancels.
    for (let burst = 0; burst < 4; burst++) {
      for (let i = 0; i < 5; i++, id += 2)
        polite.write(
          Buffer.concat([
            frame(FRAME.HEADERS, END_STREAM_HEADERS, id, getHeaderBlock(authority)),
            rst(id, CANCEL),
          ]),
        );
      await sleep(200);
    }
    await sleep(500);
    polite.write(frame(FRAME.HEADERS, END_STREAM_HEADERS, id, getHeaderBlock(authority)));
    const answered = await polite.waitFor(
      (f) => f.type === FRAME.HEADERS && f.stream === id,
      10_000,
      'the response after 20 cancels',
    );
    assert.ok(answered);
    assert.equal(polite.frames.filter((f) => f.type === FRAME.GOAWAY).length, 0);
    polite.close();

    // The flood: HEADERS + RST_STREAM pairs, written in bursts across event-loop turns.
    const flood = await RawH2.open(port);
    flood.hello();
    await flood.waitFor((f) => f.type === FRAME.SETTINGS && (f.flags & 1) === 0, 5_000, 'server SETTINGS');
    flood.write(frame(FRAME.SETTINGS, 1, 0));
    id = 1;
    for (let burst = 0; burst < 50 && !flood.closed; burst++) {
      const frames: Buffer[] = [];
      for (let i = 0; i < 10; i++, id += 2)
        frames.push(frame(FRAME.HEADERS, END_STREAM_HEADERS, id, getHeaderBlock(authority)), rst(id, CANCEL));
      flood.write(Buffer.concat(frames));
      await sleep(5);
    }
    const goaway = await flood.waitFor((f) => f.type === FRAME.GOAWAY, 10_000, 'GOAWAY');
    assert.equal(goaway.payload.readUInt32BE(4), ENHANCE_YOUR_CALM);
    await flood.waitClosed(10_000);
    // Closed at the bound: the 33rd reset with max_concurrent_streams 16, long before the 500 streams sent.
    const line = lb.records.find((r) => r.msg === 'http2_reset_flood');
    assert.ok(line !== undefined && line.msg === 'http2_reset_flood', 'http2_reset_flood logged');
    assert.equal(line.resets, 33);

    // Another client is served as usual.
    const s = await h2session(port);
    try {
      assert.equal((await h2request(s, { ':path': '/after' })).status, 200);
    } finally {
      s.close();
    }
  } finally {
    await lb.close();
    await new Promise((resolve) => up.close(resolve));
  }
});
