/**
 * Plain HTTP/1.1 client connections run on the bare TCP handle the listener
 * accepted (src/proxy/http/handle-wire.ts), with no net.Socket made for
 * them; a socket is made over the handle only when something needs one (an
 * Upgrade tunnel, HTTP/2). Each behaviour runs on both paths (handles, and
 * net.Socket: the fallback and the TLS path) and must be the same: keep-alive,
 * pipelining, Connection: close, request bodies (Content-Length, chunked, a
 * large upload through a slow upstream), a large response to a slow reader,
 * client_header_timeout and keepalive_timeout, the lingering close after an
 * early 413, a client gone mid-response, the Upgrade hand-over, h2c, parking
 * and stop. The first test also checks the path taken: no net.Socket is
 * accepted on the handle path (Node's `net.server.socket` diagnostics
 * channel, published for every socket net makes for an accepted connection).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { once } from 'node:events';
import http from 'node:http';
import { connect as h2connect } from 'node:http2';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { readKeepaliveFd } from '../../../src/keepalive/sockopt.js';
import { handleFd } from '../../../src/kernel/node-internals.js';
import { liveHttp } from '../../../src/metrics/live.js';
import { parking, parkingCounts } from '../../../src/proxy/http/parked.js';
import type { HttpFrontend } from '../../../src/proxy/http/server.js';
import {
  type ConnectionPath,
  get,
  httpConfig,
  httpGroup,
  httpServer,
  listen,
  location,
  okResponse,
  onBothHttpPaths,
  passToGroup,
  RawClient,
  rawUpstream,
  server,
  sleep,
  startHttp,
  until,
} from './fixtures.js';

function frontends(): HttpFrontend[] {
  const out: HttpFrontend[] = [];
  for (const g of liveHttp) out.push(...g.frontends);
  return out;
}

function liveConnections(): number {
  let n = 0;
  for (const f of frontends()) n += f.liveCount;
  return n;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Sockets net made for connections accepted on `port` (the proxy's), counted while `body` runs. */
async function socketsAcceptedOn(port: number, body: () => Promise<void>): Promise<number> {
  let n = 0;
  const onSocket = (message: unknown) => {
    const s = (message as { socket: Socket }).socket;
    if (s.localPort === port) n++;
  };
  subscribe('net.server.socket', onSocket);
  try {
    await body();
  } finally {
    unsubscribe('net.server.socket', onSocket);
  }
  return n;
}

onBothHttpPaths(
  'keep-alive, pipelined requests and Connection: close on one connection; the handle path makes no net.Socket',
  async (_t, path: ConnectionPath) => {
    const up = await rawUpstream((req, respond) => respond(okResponse(`ok ${req.url} ${req.body.length}`)));
    const lb = await startHttp(httpConfig([httpServer()], [httpGroup('app', [server(up.port)])]));
    try {
      const made = await socketsAcceptedOn(lb.port, async () => {
        const c = await RawClient.open(lb.port);
        c.send(get('/one'));
        let r = await c.response();
        assert.equal(r.status, 200);
        assert.equal(r.body.toString(), 'ok /one 0');
        assert.notEqual(r.headers.connection, 'close');
        // The status page's reading of the connection: addresses and the descriptor.
        const conns = frontends().flatMap((f) => [...f.connections]);
        assert.equal(conns.length, 1);
        const s = conns[0]!.socket;
        assert.equal(s.remotePort, c.socket.localPort);
        assert.equal(s.localPort, lb.port);
        assert.ok((handleFd(s) ?? -1) >= 0, 'a descriptor for the kernel readings');
        assert.equal(conns[0]!.clientText, `127.0.0.1:${c.socket.localPort}`);
        // Three pipelined in one write: answered in order.
        c.send(get('/a') + get('/b') + get('/c'));
        for (const p of ['/a', '/b', '/c']) {
          r = await c.response();
          assert.equal(r.body.toString(), `ok ${p} 0`);
        }
        c.send('POST /last HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello');
        r = await c.response();
        assert.equal(r.body.toString(), 'ok /last 5');
        assert.equal(r.headers.connection, 'close');
        await c.waitClosed(5_000);
      });
      assert.equal(made, path === 'handles' ? 0 : 1, `net.Sockets accepted on the proxy's port (${path})`);
      const logs = await lb.waitForRequests(5);
      assert.deepEqual(
        logs.map((l) => [l.path, l.status]),
        [
          ['/one', 200],
          ['/a', 200],
          ['/b', 200],
          ['/c', 200],
          ['/last', 200],
        ],
      );
      await until(() => liveConnections() === 0, 'connection freed');
    } finally {
      await lb.close();
      await up.close();
    }
  },
);

onBothHttpPaths(
  'so_keepalive on the listen reaches each accepted connection as the kernel reports it; the handle path still makes no net.Socket',
  async (_t, path: ConnectionPath) => {
    const up = await rawUpstream((req, respond) => respond(okResponse(`ok ${req.url}`)));
    const lb = await startHttp(
      httpConfig(
        [httpServer({ listens: [listen(0, { enable: true, idle: 7, interval: 3, count: 4 })] })],
        [httpGroup('app', [server(up.port)])],
      ),
    );
    try {
      const made = await socketsAcceptedOn(lb.port, async () => {
        const c = await RawClient.open(lb.port);
        c.send(get('/ka'));
        const r = await c.response();
        assert.equal(r.status, 200);
        const conns = frontends().flatMap((f) => [...f.connections]);
        assert.equal(conns.length, 1);
        const fd = handleFd(conns[0]!.socket) ?? -1;
        assert.ok(fd >= 0, 'a descriptor');
        const k = readKeepaliveFd(fd);
        assert.deepEqual([k.enabled, k.idle, k.interval, k.count], [true, 7, 3, 4]);
        c.socket.destroy();
      });
      assert.equal(made, path === 'handles' ? 0 : 1, `net.Sockets accepted on the proxy's port (${path})`);
      await until(() => liveConnections() === 0, 'connection freed');
    } finally {
      await lb.close();
      await up.close();
    }
  },
);

/** An upstream that hashes request bodies while reading them slowly (a pause per MiB), and serves `download`. */
async function slowHashingUpstream(download: Buffer) {
  const srv = http.createServer((req, res) => {
    if (req.url === '/download') {
      req.resume();
      res.setHeader('Content-Length', download.length);
      res.end(download);
      return;
    }
    const h = createHash('sha256');
    let n = 0;
    let nextPause = 1 << 20;
    req.on('data', (c: Buffer) => {
      h.update(c);
      n += c.length;
      if (n >= nextPause) {
        nextPause += 1 << 20;
        req.pause();
        setTimeout(() => req.resume(), 5);
      }
    });
    req.on('end', () => res.end(JSON.stringify({ n, sha: h.digest('hex') })));
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    port: (srv.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        srv.closeAllConnections();
        srv.close(() => resolve());
      }),
  };
}

onBothHttpPaths(
  'request bodies (Content-Length, chunked, 24 MiB through a slow upstream) and a 16 MiB response to a slow reader arrive intact',
  async () => {
    const download = randomBytes(16 << 20);
    const up = await slowHashingUpstream(download);
    const lb = await startHttp(
      httpConfig([httpServer({ clientMaxBodySize: 64 << 20 })], [httpGroup('app', [server(up.port)])]),
    );
    try {
      const c = await RawClient.open(lb.port);
      c.send('POST /cl HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world');
      let r = await c.response();
      assert.deepEqual(JSON.parse(r.body.toString()), { n: 11, sha: sha(Buffer.from('hello world')) });
      c.send(
        'POST /ch HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
      );
      r = await c.response();
      assert.deepEqual(JSON.parse(r.body.toString()), { n: 11, sha: sha(Buffer.from('hello world')) });
      // A body far over the kernel's buffers: the proxy pauses reading the client while the upstream lags.
      const big = randomBytes(24 << 20);
      c.send(`POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: ${big.length}\r\n\r\n`);
      for (let at = 0; at < big.length; at += 1 << 20) c.send(big.subarray(at, at + (1 << 20)));
      r = await c.response({ timeoutMs: 60_000 });
      assert.deepEqual(JSON.parse(r.body.toString()), { n: big.length, sha: sha(big) });
      // A response the client does not read for a while: the proxy's writes wait (drain) and go on.
      c.socket.pause();
      c.send(get('/download'));
      await sleep(300);
      c.socket.resume();
      r = await c.response({ timeoutMs: 60_000 });
      assert.equal(r.status, 200);
      assert.equal(r.body.length, download.length);
      assert.equal(sha(r.body), sha(download));
      c.close();
    } finally {
      await lb.close();
      await up.close();
    }
  },
);

onBothHttpPaths(
  'client_header_timeout answers 408 and closes; keepalive_timeout closes an idle connection',
  async () => {
    const up = await rawUpstream((req, respond) => respond(okResponse(`ok ${req.url}`)));
    const lb = await startHttp(
      httpConfig(
        [httpServer({ clientHeaderTimeoutMs: 300, keepaliveTimeoutMs: 1_000 })],
        [httpGroup('app', [server(up.port)])],
      ),
    );
    try {
      const slow = await RawClient.open(lb.port);
      slow.send('GET / HTTP/1.1\r\nHost: t\r\n');
      const r408 = await slow.response({ timeoutMs: 5_000 });
      assert.equal(r408.status, 408);
      await slow.waitClosed(3_000);
      const idle = await RawClient.open(lb.port);
      idle.send(get('/x'));
      assert.equal((await idle.response()).status, 200);
      const idleFrom = Date.now();
      await idle.waitClosed(6_000);
      const waited = Date.now() - idleFrom;
      assert.ok(waited >= 500, `closed after ${waited} ms, before keepalive_timeout (1 s)`);
      await until(() => liveConnections() === 0, 'connections freed');
    } finally {
      await lb.close();
      await up.close();
    }
  },
);

onBothHttpPaths(
  'after an early 413 the connection lingers: the client still sending its body reads the answer, then a FIN (no reset)',
  async () => {
    const up = await rawUpstream((_req, respond) => respond(okResponse('unexpected')));
    const lb = await startHttp(
      httpConfig([httpServer({ clientMaxBodySize: 1000 })], [httpGroup('app', [server(up.port)])]),
    );
    try {
      // Half-open allowed: the proxy's FIN after the 413 must not end the client's sending.
      const s = connect({ host: '127.0.0.1', port: lb.port, allowHalfOpen: true });
      await once(s, 'connect');
      let error: Error | undefined;
      s.on('error', (e) => {
        error = e;
      });
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => chunks.push(d));
      const ended = once(s, 'end');
      const size = 4 << 20;
      s.write(`POST / HTTP/1.1\r\nHost: t\r\nContent-Length: ${size}\r\n\r\n`);
      // The body keeps coming after the 413 is out: read and dropped, never reset.
      const piece = Buffer.alloc(64 * 1024, 0x78);
      for (let sent = 0; sent < size; sent += piece.length) {
        if (!s.write(piece)) await once(s, 'drain');
        if (error !== undefined) break;
      }
      s.end();
      await Promise.race([ended, sleep(10_000).then(() => assert.fail('no FIN within 10 s'))]);
      assert.equal(error, undefined, `the client saw ${error?.message}`);
      const text = Buffer.concat(chunks).toString('latin1');
      assert.match(text, /^HTTP\/1\.1 413 /);
      assert.match(text, /\r\nConnection: close\r\n/i);
      assert.equal(up.requests.length, 0);
      s.destroy();
      await until(() => liveConnections() === 0, 'connection freed');
    } finally {
      await lb.close();
      await up.close();
    }
  },
);

onBothHttpPaths(
  'a client gone mid-response: the request is logged client_closed and the connection freed',
  async () => {
    // An endless chunked response, 64 KiB every 5 ms, until the proxy goes away.
    const srv = createServer((s) => {
      s.on('error', () => {});
      s.once('data', () => {
        s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
        const piece = `10000\r\n${'y'.repeat(0x10000)}\r\n`;
        const t = setInterval(() => {
          if (s.destroyed) clearInterval(t);
          else s.write(piece);
        }, 5);
        s.on('close', () => clearInterval(t));
      });
    });
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const port = (srv.address() as AddressInfo).port;
    const lb = await startHttp(httpConfig([httpServer()], [httpGroup('app', [server(port)])]));
    try {
      const c = await RawClient.open(lb.port);
      c.send(get('/stream'));
      const r = await c.response({ head: true });
      assert.equal(r.status, 200);
      await sleep(50);
      c.close();
      const [log] = await lb.waitForRequests(1);
      assert.equal(log?.reason, 'client_closed');
      await until(() => liveConnections() === 0, 'connection freed');
    } finally {
      await lb.close();
      srv.close();
    }
  },
);

onBothHttpPaths(
  'Upgrade: after the 101 the connection is a tunnel, with the bytes sent behind the request, both ways, and the FIN',
  async () => {
    const upstreamEnded = { v: false };
    const srv = createServer((s) => {
      s.on('error', () => {});
      let open = false;
      s.on('data', (d: Buffer) => {
        if (!open) {
          const end = d.indexOf('\r\n\r\n');
          if (end < 0) return;
          open = true;
          s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n');
          d = d.subarray(end + 4);
        }
        if (d.length > 0) s.write(d.toString('latin1').toUpperCase());
      });
      s.on('end', () => {
        upstreamEnded.v = true;
        s.end();
      });
    });
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const port = (srv.address() as AddressInfo).port;
    const lb = await startHttp(
      httpConfig(
        [httpServer({ locations: [location({ proxyPass: passToGroup('app') })] })],
        [httpGroup('app', [server(port)])],
      ),
    );
    try {
      const c = await RawClient.open(lb.port);
      // Bytes behind the request (sent before the 101) belong to the tunnel.
      c.send('GET /chat HTTP/1.1\r\nHost: t\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nfirst;');
      const r = await c.response();
      assert.equal(r.status, 101);
      let got = '';
      c.socket.removeAllListeners('data');
      c.socket.on('data', (d: Buffer) => {
        got += d.toString('latin1');
      });
      await until(() => got === 'FIRST;', `the held bytes echoed (got ${JSON.stringify(got)})`);
      c.send('second');
      await until(() => got === 'FIRST;SECOND', `bytes after the 101 echoed (got ${JSON.stringify(got)})`);
      c.socket.end();
      await until(() => upstreamEnded.v, 'the client FIN passed to the upstream');
      await c.waitClosed(5_000);
      await until(() => liveConnections() === 0, 'connection freed');
    } finally {
      await lb.close();
      srv.close();
    }
  },
);

onBothHttpPaths('HTTP/2 with prior knowledge (h2c) on a plain address is handed over whole', async () => {
  const up = await rawUpstream((req, respond) => respond(okResponse(`h2 ${req.url}`)));
  const lb = await startHttp(
    httpConfig([httpServer({ http2: true })], [httpGroup('app', [server(up.port)])]),
  );
  const session = h2connect(`http://127.0.0.1:${lb.port}`);
  session.on('error', () => {});
  try {
    for (const p of ['/x', '/y']) {
      const req = session.request({ ':path': p, ':authority': 't' });
      const parts: Buffer[] = [];
      req.on('data', (d: Buffer) => parts.push(d));
      const [headers] = (await once(req, 'response')) as [Record<string, unknown>];
      await once(req, 'end');
      assert.equal(headers[':status'], 200);
      assert.equal(Buffer.concat(parts).toString(), `h2 ${p}`);
    }
    session.close();
    await until(() => liveConnections() === 0, 'connection freed');
  } finally {
    session.destroy();
    await lb.close();
    await up.close();
  }
});

onBothHttpPaths(
  'an idle connection is parked, answers its next request, and stop closes it at once',
  async () => {
    const saved = { ...parking };
    parking.afterMs = 50;
    parking.sweepMs = 50;
    const up = await rawUpstream((req, respond) => respond(okResponse(`ok ${req.url}`)));
    const lb = await startHttp(httpConfig([httpServer()], [httpGroup('app', [server(up.port)])]));
    let closed = false;
    try {
      const c = await RawClient.open(lb.port);
      c.send(get('/1'));
      assert.equal((await c.response()).body.toString(), 'ok /1');
      let parks = parkingCounts.parks;
      await until(() => parkingCounts.parks > parks, 'connection parked');
      c.send(get('/2'));
      assert.equal((await c.response()).body.toString(), 'ok /2');
      parks = parkingCounts.parks;
      await until(() => parkingCounts.parks > parks, 'connection parked again');
      const stopping = lb.close();
      closed = true;
      await c.waitClosed(5_000);
      await stopping;
      assert.equal(parkingCounts.parked, 0);
      assert.equal(liveConnections(), 0);
    } finally {
      Object.assign(parking, saved);
      if (!closed) await lb.close();
      await up.close();
    }
  },
);
