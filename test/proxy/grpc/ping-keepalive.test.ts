/**
 * grpc_ping_interval / grpc_ping_without_calls / too_many_pings, seen by
 * the server: a raw HTTP/2 upstream (Node's http2 server) answers gRPC calls
 * by hand and counts the PINGs keepwire sends (session 'ping' events).
 *   - a call held quiet gets a PING every interval (gRPC keepalive_time);
 *   - an upstream connection without calls is not pinged unless
 *     grpc_ping_without_calls is on (keepalive_permit_without_calls);
 *   - GOAWAY ENHANCE_YOUR_CALM "too_many_pings" (what grpc-go and grpc-core
 *     servers send; grpc-js 1.14 servers do not police PINGs, so the raw
 *     server sends it as they do) doubles the interval for that server,
 *     logged, and the next connection is pinged at the doubled interval.
 */
import assert from 'node:assert/strict';
import {
  type ClientHttp2Session,
  constants,
  createServer as createH2Server,
  type Http2Server,
  connect as h2connect,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import { type AddressInfo, createServer as createNetServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { closedPort } from '../fixtures.js';
import type { RunningHttp } from '../http/fixtures.js';
import { FRAME, frame } from '../http2/fixtures.js';
import { grpcRecords, startKeepwire } from './fixtures.js';

function message(payload: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

interface Upstream {
  server: Http2Server;
  port: number;
  /** PING arrival times per session, in session order. */
  pings: number[][];
  sessions: ServerHttp2Session[];
  /** Streams held open (answered with headers, then quiet). */
  held: ServerHttp2Stream[];
  onPing?: (session: ServerHttp2Session, index: number) => void;
  close(): Promise<void>;
}

/** Answers /Quick at once (one message, grpc-status 0); /Hold with headers, then nothing until released. */
async function rawGrpcUpstream(): Promise<Upstream> {
  const server = createH2Server();
  const u: Upstream = {
    server,
    port: 0,
    pings: [],
    sessions: [],
    held: [],
    close: async () => {
      for (const s of u.sessions) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  server.on('session', (session: ServerHttp2Session) => {
    const index = u.sessions.length;
    u.sessions.push(session);
    u.pings.push([]);
    session.on('ping', () => {
      u.pings[index]!.push(Date.now());
      u.onPing?.(session, index);
    });
    session.on('error', () => {});
  });
  server.on('stream', (stream: ServerHttp2Stream, headers) => {
    stream.on('error', () => {});
    stream.resume();
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    if (String(headers[':path']).endsWith('/Hold')) {
      u.held.push(stream);
      return;
    }
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(message(Buffer.from('done')));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  u.port = (server.address() as AddressInfo).port;
  return u;
}

/** A call through keepwire with Node's http2 client; resolves with the response headers (the call may stay open). */
function call(
  session: ClientHttp2Session,
  path: string,
): Promise<{ headers: Record<string, unknown>; done: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    stream.end(message(Buffer.from('x')));
    stream.on('error', () => {});
    stream.resume();
    const done = new Promise<void>((r) => stream.on('close', () => r()));
    const timer = setTimeout(() => reject(new Error(`no response to ${path}`)), 20_000);
    stream.on('response', (headers) => {
      clearTimeout(timer);
      resolve({ headers, done });
    });
  });
}

function waitFor<T>(what: string, ms: number, check: () => T | undefined): Promise<T> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = () => {
      const v = check();
      if (v !== undefined) resolve(v);
      else if (Date.now() - t0 > ms) reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
      else setTimeout(tick, 50);
    };
    tick();
  });
}

function clientSession(port: number): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = h2connect(`http://127.0.0.1:${port}`);
    s.once('remoteSettings', () => resolve(s));
    s.once('error', reject);
  });
}

describe('grpc_ping_interval 1s: PINGs on a connection with a call in flight', () => {
  let up: Upstream;
  let lb: RunningHttp;
  let client: ClientHttp2Session;

  before(async () => {
    up = await rawGrpcUpstream();
    const port = await closedPort();
    lb = await startKeepwire(`
      http {
        upstream g { server 127.0.0.1:${up.port}; keepalive_timeout 60s; }
        server {
          listen 127.0.0.1:${port};
          http2 on;
          location /quiet/ { grpc_pass grpc://g; grpc_ping_interval 1s; grpc_read_timeout 60s; }
        }
      }`);
    client = await clientSession(port);
  });

  after(async () => {
    client?.destroy();
    await lb?.close();
    await up?.close();
  });

  it('a call held quiet gets a PING about every second; an idle connection (without_calls off) gets none', async () => {
    const held = await call(client, '/quiet/x.Y/Hold');
    assert.equal(held.headers[':status'], 200);
    const pings = await waitFor('3 PINGs', 15_000, () =>
      up.pings[0]!.length >= 3 ? up.pings[0] : undefined,
    );
    for (let i = 1; i < pings.length; i++) {
      const gap = pings[i]! - pings[i - 1]!;
      assert.ok(gap >= 900, `PINGs ${gap} ms apart, under the 1 s interval`);
    }
    // The call ends: the connection stays in the pool (keepalive_timeout 60s) without calls.
    const h = up.held[0]!;
    h.on('wantTrailers', () => h.sendTrailers({ 'grpc-status': '0' }));
    h.end();
    await held.done;
    const before = up.pings[0]!.length;
    const quietFrom = Date.now();
    // Over 3 intervals without a call: no PING (gRPC's keepalive_permit_without_calls false).
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const late = up.pings[0]!.filter((t) => t > quietFrom + 1_100);
    assert.equal(late.length, 0, `${up.pings[0]!.length - before} PINGs on a connection without calls`);
    assert.equal(up.sessions.length, 1);
  });
});

describe('grpc_ping_without_calls on: an idle pooled connection is pinged too', () => {
  let up: Upstream;
  let lb: RunningHttp;
  let client: ClientHttp2Session;

  before(async () => {
    up = await rawGrpcUpstream();
    const port = await closedPort();
    lb = await startKeepwire(`
      http {
        upstream g { server 127.0.0.1:${up.port}; keepalive_timeout 60s; }
        server {
          listen 127.0.0.1:${port};
          http2 on;
          location / { grpc_pass grpc://g; grpc_ping_interval 1s; grpc_ping_without_calls on; }
        }
      }`);
    client = await clientSession(port);
  });

  after(async () => {
    client?.destroy();
    await lb?.close();
    await up?.close();
  });

  it('PINGs keep coming after the only call ended', async () => {
    const c = await call(client, '/x.Y/Quick');
    await c.done;
    const endedAt = Date.now();
    const pings = await waitFor('2 PINGs after the call', 15_000, () => {
      const after = up.pings[0]!.filter((t) => t > endedAt);
      return after.length >= 2 ? after : undefined;
    });
    assert.ok(pings.length >= 2);
  });
});

describe('GOAWAY ENHANCE_YOUR_CALM "too_many_pings" doubles the PING interval for that server', () => {
  let up: Upstream;
  let lb: RunningHttp;
  let client: ClientHttp2Session;

  before(async () => {
    up = await rawGrpcUpstream();
    // grpc-go's answer to a client pinging under its MinTime: GOAWAY ENHANCE_YOUR_CALM with debug data "too_many_pings".
    up.onPing = (session, index) => {
      if (index === 0 && up.pings[0]!.length === 1)
        session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM, 0, Buffer.from('too_many_pings'));
    };
    const port = await closedPort();
    lb = await startKeepwire(`
      http {
        upstream g { server 127.0.0.1:${up.port}; keepalive_timeout 60s; }
        server {
          listen 127.0.0.1:${port};
          http2 on;
          location / { grpc_pass grpc://g; grpc_ping_interval 1s; grpc_read_timeout 60s; }
        }
      }`);
    client = await clientSession(port);
  });

  after(async () => {
    client?.destroy();
    await lb?.close();
    await up?.close();
  });

  it('logs grpc_too_many_pings with the new interval; the next connection is pinged every 2 s', async () => {
    const first = await call(client, '/x.Y/Hold');
    assert.equal(first.headers[':status'], 200);
    const record = await waitFor('grpc_too_many_pings', 15_000, () =>
      grpcRecords(lb).find((r) => r.msg === 'grpc_too_many_pings'),
    );
    assert.equal(record.pingIntervalMs, 2000);
    assert.equal(record.upstream, `127.0.0.1:${up.port}`);
    assert.match(record.detail, /doubled from 1000 ms to 2000 ms/);
    // The GOAWAY'd connection takes no new call: the next one opens a second connection.
    const second = await call(client, '/x.Y/Hold');
    assert.equal(second.headers[':status'], 200);
    assert.equal(up.sessions.length, 2);
    const pings = await waitFor('3 PINGs on the second connection', 20_000, () =>
      up.pings[1]!.length >= 3 ? up.pings[1] : undefined,
    );
    for (let i = 1; i < pings.length; i++) {
      const gap = pings[i]! - pings[i - 1]!;
      assert.ok(gap >= 1_800, `PINGs ${gap} ms apart after too_many_pings (want the doubled 2 s)`);
    }
    for (const s of up.held) s.close();
  });
});

describe('grpc_ping_timeout: a server that stops answering PINGs is dropped', () => {
  let raw: Server;
  let lb: RunningHttp;
  let client: ClientHttp2Session;
  const sockets: Socket[] = [];
  let pings = 0;

  before(async () => {
    // A hand-written HTTP/2 server: SETTINGS, answers a call's HEADERS with `:status 200` (HPACK
    // static index 8), then never acknowledges a PING (a server stuck above a live TCP connection).
    raw = createNetServer((socket) => {
      sockets.push(socket);
      socket.on('error', () => {});
      socket.write(frame(FRAME.SETTINGS, 0, 0));
      let buf = Buffer.alloc(0);
      let preface = false;
      socket.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (!preface) {
          if (buf.length < 24) return;
          buf = buf.subarray(24);
          preface = true;
        }
        while (buf.length >= 9) {
          const len = buf.readUIntBE(0, 3);
          if (buf.length < 9 + len) return;
          const type = buf[3]!;
          const flags = buf[4]!;
          const stream = buf.readUInt32BE(5) & 0x7fffffff;
          buf = buf.subarray(9 + len);
          if (type === FRAME.SETTINGS && (flags & 1) === 0) socket.write(frame(FRAME.SETTINGS, 1, 0));
          else if (type === FRAME.HEADERS) socket.write(frame(FRAME.HEADERS, 4, stream, Buffer.from([0x88])));
          else if (type === FRAME.PING && (flags & 1) === 0) pings++;
        }
      });
    });
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    const port = await closedPort();
    lb = await startKeepwire(`
      http {
        server {
          listen 127.0.0.1:${port};
          http2 on;
          location / {
            grpc_pass grpc://127.0.0.1:${(raw.address() as AddressInfo).port};
            grpc_ping_interval 1s;
            grpc_ping_timeout 1s;
            grpc_read_timeout 60s;
          }
        }
      }`);
    client = await clientSession(port);
  });

  after(async () => {
    client?.destroy();
    await lb?.close();
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => raw?.close(resolve));
  });

  it('no ACK within grpc_ping_timeout: connection closed, logged, the call in flight reset (not left hanging)', async () => {
    const c = await call(client, '/x.Y/Hold');
    assert.equal(c.headers[':status'], 200);
    const record = await waitFor('grpc_ping_timeout', 15_000, () =>
      grpcRecords(lb).find((r) => r.msg === 'grpc_ping_timeout'),
    );
    assert.match(record.detail, /no PING ACK within grpc_ping_timeout \(1000 ms\)/);
    assert.ok(pings >= 1);
    await c.done;
    const rec = (await lb.waitForRequests(1))[0]!;
    assert.equal(rec.reason, 'upstream_reset');
    assert.match(rec.detail ?? '', /client stream reset/);
  });
});
