/**
 * Plain upstream connections of the HTTP proxy run on a bare TCP handle
 * connected with a TCPConnectWrap (src/proxy/http/transport.ts, through
 * http/handle-wire.ts), with no net.Socket made for them; TLS upstreams,
 * host names and Nodes without the handle internals keep net.Socket. Each
 * behaviour runs on both paths and must be the same: the path taken (no
 * net.Socket connected to the upstream on the handle path: Node's
 * `net.client.socket` diagnostics channel is published for every socket
 * net.connect makes), keep-alive reuse, proxy_socket_keepalive on the
 * descriptor, an upstream's FIN while the connection is cached, a refused
 * connect, a request body larger than the kernel takes at once, a reset
 * mid-body passed on as a cut (never a complete response) and the Upgrade
 * hand-over, where the handle becomes a net.Socket for the tunnel.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Socket } from 'node:net';
import { readKeepaliveFd } from '../../../src/keepalive/sockopt.js';
import { handleFd } from '../../../src/kernel/node-internals.js';
import { liveHttp } from '../../../src/metrics/live.js';
import type { UpstreamConnection } from '../../../src/proxy/http/transport.js';
import { modelFromText } from '../../model-text.js';
import {
  type ConnectionPath,
  closedPort,
  get,
  okResponse,
  onBothHttpPaths,
  RawClient,
  rawUpstream,
  startHttp,
  until,
} from './fixtures.js';

function cached(): UpstreamConnection[] {
  const out: UpstreamConnection[] = [];
  for (const g of liveHttp) for (const group of g.groups) out.push(...group.pool.idleConnections());
  return out;
}

/** Sockets net.connect made while `body` runs, for those connected to `port` when it ends. */
async function socketsConnectedTo(port: number, body: () => Promise<void>): Promise<number> {
  const made: Socket[] = [];
  const onSocket = (message: unknown) => made.push((message as { socket: Socket }).socket);
  subscribe('net.client.socket', onSocket);
  try {
    await body();
  } finally {
    unsubscribe('net.client.socket', onSocket);
  }
  return made.filter((s) => s.remotePort === port).length;
}

async function proxyTo(upstreamPort: number): Promise<Awaited<ReturnType<typeof startHttp>>> {
  const port = await closedPort();
  return startHttp(
    modelFromText(`http {
  upstream app { server 127.0.0.1:${upstreamPort}; keepalive 4; }
  server {
    listen 127.0.0.1:${port};
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_socket_keepalive 13s:5s:3; client_max_body_size 16m; }
  }
}
`),
  );
}

onBothHttpPaths(
  'an upstream connection to an IP literal is a TCP handle (no net.Socket), reused, with proxy_socket_keepalive on its descriptor',
  async (_t, path: ConnectionPath) => {
    const up = await rawUpstream((req, respond) => respond(okResponse(`ok ${req.url} ${req.body.length}`)));
    const lb = await proxyTo(up.port);
    try {
      const made = await socketsConnectedTo(up.port, async () => {
        const c = await RawClient.open(lb.port);
        for (const p of ['/one', '/two', '/three']) {
          c.send(get(p));
          const r = await c.response();
          assert.equal(r.status, 200);
          assert.equal(r.body.toString(), `ok ${p} 0`);
        }
        // A body over what the kernel takes in one write: held by libuv, written on as the upstream reads.
        const big = randomBytes(8 * 1024 * 1024);
        c.send(
          Buffer.concat([
            Buffer.from(`POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: ${big.length}\r\n\r\n`),
            big,
          ]),
        );
        const r = await c.response({ timeoutMs: 20_000 });
        assert.equal(r.body.toString(), `ok /big ${big.length}`);
        c.close();
      });
      assert.equal(made, path === 'handles' ? 0 : 1, `net.Sockets connected to the upstream (${path})`);
      assert.equal(up.accepted, 1, 'one upstream connection served all four requests');
      assert.equal(up.requests[3]!.body.length, 8 * 1024 * 1024);
      const [conn] = cached();
      assert.ok(conn, 'the connection is cached');
      const s = conn.socket;
      const fd = handleFd(s) ?? -1;
      assert.ok(fd >= 0, 'a descriptor for the kernel readings');
      assert.equal(s.remotePort, up.port);
      const k = readKeepaliveFd(fd);
      assert.deepEqual([k.enabled, k.idle, k.interval, k.count], [true, 13, 5, 3]);
      assert.ok(
        s.bytesRead > 0 && s.bytesWritten > 8 * 1024 * 1024,
        `${s.bytesRead} read, ${s.bytesWritten} written`,
      );
    } finally {
      await lb.close();
      await up.close();
    }
  },
);

onBothHttpPaths(
  "the upstream's FIN on a cached connection takes it out of the cache; the next request opens a new one",
  async (_t, path: ConnectionPath) => {
    const up = await rawUpstream((_req, respond) => respond(okResponse('ok')), { idleCloseMs: 200 });
    const lb = await proxyTo(up.port);
    try {
      const c = await RawClient.open(lb.port);
      c.send(get('/a'));
      assert.equal((await c.response()).status, 200);
      await until(() => up.accepted === 1 && cached().length === 1, `cached (${path})`);
      await until(() => cached().length === 0, 'dropped from the cache after the FIN');
      c.send(get('/b'));
      assert.equal((await c.response()).status, 200);
      assert.equal(up.accepted, 2);
      c.close();
      const logs = await lb.waitForRequests(2);
      assert.deepEqual(
        logs.map((l) => l.status),
        [200, 200],
      );
    } finally {
      await lb.close();
      await up.close();
    }
  },
);

onBothHttpPaths('a refused connect is a 502 with the errno in the log', async (_t, path: ConnectionPath) => {
  const lb = await proxyTo(await closedPort());
  try {
    const c = await RawClient.open(lb.port);
    c.send(get('/refused'));
    assert.equal((await c.response()).status, 502);
    c.close();
    const [log] = await lb.waitForRequests(1);
    assert.equal(log?.reason, 'connect_failed', path);
    assert.match(log?.detail ?? '', /ECONNREFUSED/);
  } finally {
    await lb.close();
  }
});

onBothHttpPaths(
  'an upstream reset mid-body (Content-Length) cuts the client, never a complete response',
  async (_t, path: ConnectionPath) => {
    let upstreamSocket: Socket | undefined;
    const up = await rawUpstream((req) => {
      upstreamSocket = req.socket;
      req.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nonly part of it');
    });
    const lb = await proxyTo(up.port);
    try {
      const c = await RawClient.open(lb.port);
      c.send(get('/cut'));
      // The head reached the client: the response is under way when the upstream resets.
      assert.equal((await c.response({ head: true, timeoutMs: 5_000 })).status, 200, path);
      upstreamSocket!.resetAndDestroy();
      // Cut (closed or reset), never completed: 15 of 100000 body bytes were sent.
      await c.waitClosed(5_000);
      const [log] = await lb.waitForRequests(1);
      assert.equal(log?.reason, 'upstream_reset');
    } finally {
      await lb.close();
      await up.close();
    }
  },
);

onBothHttpPaths(
  'an Upgrade on an upstream handle: the 101 and the bytes after it, then both ways through the tunnel',
  async (_t, path: ConnectionPath) => {
    const up = await rawUpstream((req) => {
      req.socket.removeAllListeners('data');
      req.socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhello',
      );
      req.socket.on('data', (d: Buffer) => req.socket.write(Buffer.from(d.toString().toUpperCase())));
    });
    const lb = await proxyTo(up.port);
    try {
      const c = await RawClient.open(lb.port);
      c.send('GET /up HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
      const r = await c.response();
      assert.equal(r.status, 101, path);
      // What follows the head, read as the tunnel passes it (RawClient keeps it unparsed).
      const rest = () => (c as unknown as { buf: Buffer }).buf.toString('latin1');
      await until(() => rest() === 'hello', 'the bytes after the 101');
      c.send('ping');
      await until(() => rest() === 'helloPING', 'the echo through the tunnel');
      c.close();
    } finally {
      await lb.close();
      await up.close();
    }
  },
);
