/**
 * An application restart behind its only upstream server: the proxy must
 * send the next request to it as soon as it listens again. nginx never
 * marks the one peer of a group unavailable (`peers->single`: max_fails is
 * ignored, and a bare `proxy_pass ADDRESS` is such a group); before this,
 * one refused connect kept the server out for fail_timeout (10 s).
 */
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server as HttpServerT, request } from 'node:http';
import { type AddressInfo, createServer, type Server } from 'node:net';
import { test } from 'node:test';
import { config, dial, group, passTo, server, start, streamServer, within } from './fixtures.js';
import { httpConfig, httpGroup, httpServer, location, passToPort, startHttp } from './http/fixtures.js';

function listenTcp(port: number): Promise<Server> {
  const srv = createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => resolve(srv));
  });
}

function closeServer(srv: Server | HttpServerT): Promise<void> {
  return new Promise((resolve) => {
    (srv as HttpServerT).closeAllConnections?.();
    srv.close(() => resolve());
  });
}

/** One echo round trip through the stream proxy: the answer, or how it failed. */
async function roundTrip(port: number): Promise<string> {
  const s = await dial(port);
  const got = new Promise<string>((resolve) => {
    s.once('data', (d) => resolve(d.toString()));
    s.once('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code}`));
    s.once('end', () => resolve('closed'));
  });
  s.write('ping');
  try {
    return await within(got, 5000, 'round trip');
  } finally {
    s.destroy();
  }
}

for (const kind of ['bare proxy_pass', 'one-server upstream'] as const) {
  test(`stream, ${kind}: after a restart the next session reaches the server at once`, async () => {
    let backendSrv = await listenTcp(0);
    const port = (backendSrv.address() as AddressInfo).port;
    const cfg =
      kind === 'bare proxy_pass'
        ? config([streamServer({ proxyPass: passTo(port) })])
        : config([streamServer({ proxyPass: { kind: 'group', name: 'g' } })], [group('g', [server(port)])]);
    const lb = await start(cfg);
    try {
      assert.equal(await roundTrip(lb.ports[0]!), 'ping');
      await closeServer(backendSrv);
      assert.notEqual(await roundTrip(lb.ports[0]!), 'ping', 'the stopped server cannot answer');
      backendSrv = await listenTcp(port);
      assert.equal(await roundTrip(lb.ports[0]!), 'ping', 'back at once, not after fail_timeout (10 s)');
      const records = await lb.waitForRecords(3);
      assert.equal(records[1]!.reason, 'connect_failed');
    } finally {
      await lb.close();
      await closeServer(backendSrv);
    }
  });
}

function listenHttp(port: number): Promise<HttpServerT> {
  const srv = createHttpServer((_req, res) => res.end('up'));
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => resolve(srv));
  });
}

function get(port: number): Promise<number> {
  return within(
    new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    }),
    5000,
    'GET through the proxy',
  );
}

for (const kind of ['bare proxy_pass', 'one-server upstream'] as const) {
  test(`http, ${kind}: after a restart the next request reaches the server at once`, async () => {
    let app = await listenHttp(0);
    const port = (app.address() as AddressInfo).port;
    const cfg =
      kind === 'bare proxy_pass'
        ? httpConfig([httpServer({ locations: [location({ proxyPass: passToPort(port) })] })])
        : httpConfig([httpServer()], [httpGroup('app', [server(port)])]);
    const lb = await startHttp(cfg);
    try {
      assert.equal(await get(lb.port), 200);
      await closeServer(app);
      assert.equal(await get(lb.port), 502, 'the stopped server cannot answer');
      app = await listenHttp(port);
      assert.equal(await get(lb.port), 200, 'back at once, not after fail_timeout (10 s)');
    } finally {
      await lb.close();
      await closeServer(app);
    }
  });
}
