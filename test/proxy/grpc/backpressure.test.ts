/**
 * A large server-streaming call through grpc_pass with a client that stops
 * reading: HTTP/2 flow control reaches the grpc-js server through keepwire
 * (its writes block after a bounded amount, instead of keepwire buffering
 * the whole stream), and once the client reads again all 64 MiB arrive
 * intact, in order, with the server's trailers. The client is Node's http2
 * (a paused stream stops granting window); grpc-js's client keeps reading
 * into its own buffer while paused, so it cannot be the slow reader.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect as h2connect } from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { closedPort } from '../fixtures.js';
import type { RunningHttp } from '../http/fixtures.js';
import { type GrpcServer, startGrpcServer, startKeepwire } from './fixtures.js';

const MESSAGE = 64 * 1024;
const COUNT = 1024; // 64 MiB
/** What may sit in flow-control windows and socket buffers on the way (three legs): far below the stream. */
const BOUND = 16 * 1024 * 1024;

function chunk(i: number): Buffer {
  const b = Buffer.alloc(MESSAGE, i & 0xff);
  b.writeUInt32BE(i, 0);
  return b;
}

describe('grpc_pass backpressure: a 64 MiB server stream to a client that pauses', () => {
  let up: GrpcServer;
  let lb: RunningHttp;
  let port = 0;
  let written = 0;
  let blockedSince = 0;
  const sent = createHash('sha256');

  before(async () => {
    up = await startGrpcServer({
      serverStream: (call) => {
        let i = 0;
        const pump = () => {
          while (i < COUNT) {
            const c = chunk(i++);
            sent.update(c);
            written += c.length;
            if (!call.write(c)) {
              blockedSince = Date.now();
              call.once('drain', () => {
                blockedSince = 0;
                pump();
              });
              return;
            }
          }
          call.end();
        };
        pump();
      },
    });
    port = await closedPort();
    lb = await startKeepwire(`
      http {
        server {
          listen 127.0.0.1:${port};
          http2 on;
          location / { grpc_pass grpc://127.0.0.1:${up.port}; grpc_read_timeout 60s; }
        }
      }`);
  });

  after(async () => {
    await lb?.close();
    await up?.close();
  });

  it('the server is held back while the client does not read, then everything arrives', async () => {
    const session = h2connect(`http://127.0.0.1:${port}`);
    session.on('error', () => {});
    const call = session.request({
      ':method': 'POST',
      ':path': '/keepwire.test.Echo/ServerStream',
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    call.end(Buffer.from([0, 0, 0, 0, 2, 0x67, 0x6f]));
    call.pause();
    // The server's writes block and stay blocked for a second: the client's pause reached it.
    await new Promise<void>((resolve, reject) => {
      const t0 = Date.now();
      const tick = () => {
        if (blockedSince !== 0 && Date.now() - blockedSince >= 1_000) resolve();
        else if (Date.now() - t0 > 30_000)
          reject(new Error(`server never held back (${written} bytes written)`));
        else setTimeout(tick, 50);
      };
      tick();
    });
    assert.ok(written < BOUND, `${written} bytes left the server while the client read nothing`);
    const got = createHash('sha256');
    let pending: Buffer = Buffer.alloc(0);
    let n = 0;
    let inOrder = true;
    call.on('data', (b: Buffer) => {
      pending = pending.length === 0 ? b : Buffer.concat([pending, b]);
      while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
        const len = pending.readUInt32BE(1);
        const m = pending.subarray(5, 5 + len);
        if (m.readUInt32BE(0) !== n) inOrder = false;
        n++;
        got.update(m);
        pending = pending.subarray(5 + len);
      }
    });
    let trailers: Record<string, unknown> | undefined;
    call.on('trailers', (t) => {
      trailers = t;
    });
    call.resume();
    await new Promise<void>((resolve, reject) => {
      call.on('close', resolve);
      call.on('error', reject);
    });
    session.close();
    assert.equal(trailers?.['grpc-status'], '0');
    assert.equal(n, COUNT);
    assert.equal(pending.length, 0);
    assert.ok(inOrder);
    assert.equal(got.digest('hex'), sent.digest('hex'));
  });
});
