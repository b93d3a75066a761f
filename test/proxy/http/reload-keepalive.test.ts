/**
 * A reload must not cut keep-alive clients. keepwire keeps its listeners
 * across a reload, so the old generation has no reason to close a client
 * connection the client may be sending its next request on: it closes one
 * only right after a response that said `Connection: close`, or at
 * keepalive_timeout. Before, idle connections were closed at the reload and
 * busy ones after a response that had announced keep-alive: the client's
 * next request met a closed connection (1,193 resets in 60 reloads).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  closedPort,
  get,
  httpConfig,
  httpGroup,
  httpServer,
  listen,
  okResponse,
  RawClient,
  rawUpstream,
  server,
  startHttp,
} from './fixtures.js';

/** A fixed port, as in a real configuration: the reload keeps the listener. */
function configOn(upstreamPort: number, port: number): ReturnType<typeof httpConfig>;
function configOn(upstreamPort: number): Promise<ReturnType<typeof httpConfig>>;
function configOn(upstreamPort: number, port?: number) {
  const make = (p: number) =>
    httpConfig([httpServer({ listens: [listen(p)] })], [httpGroup('app', [server(upstreamPort)])]);
  return port === undefined ? closedPort().then(make) : make(port);
}

test('reload: an idle keep-alive client connection stays open; its next request is answered, with Connection: close', async () => {
  const up = await rawUpstream((req, respond) => respond(okResponse(`v ${req.url}`)));
  const cfg = await configOn(up.port);
  const lb = await startHttp(cfg);
  try {
    const c = await RawClient.open(lb.port);
    c.send(get('/1'));
    const first = await c.response();
    assert.equal(first.status, 200);
    assert.notEqual(first.headers.connection, 'close');
    await lb.runtime.apply(configOn(up.port, lb.port));
    // The old generation must not close the connection now: the client may be sending on it.
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(c.closed, false, 'not closed by the reload');
    c.send(get('/2'));
    const second = await c.response();
    assert.equal(second.status, 200);
    assert.equal(second.body.toString(), 'v /2');
    assert.equal(second.headers.connection, 'close', 'the old generation says it closes');
    await c.waitClosed(5000);
  } finally {
    await lb.close();
    await up.close();
  }
});

test('reload during a response that announced keep-alive: the connection is not closed after it', async () => {
  let finish: (() => void) | undefined;
  const up = await rawUpstream((req, respond) => {
    if (req.url !== '/slow') {
      respond(okResponse(`v ${req.url}`));
      return;
    }
    // The head and part of the body now, the rest after the reload.
    respond('HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nslow');
    finish = () => req.socket.write(' done');
  });
  const lb = await startHttp(await configOn(up.port));
  try {
    const c = await RawClient.open(lb.port);
    const headArrived = new Promise((resolve) => c.socket.once('data', resolve));
    c.send(get('/slow'));
    await headArrived;
    await lb.runtime.apply(configOn(up.port, lb.port));
    finish!();
    const slow = await c.response();
    assert.equal(slow.body.toString(), 'slow done');
    assert.notEqual(
      slow.headers.connection,
      'close',
      'its head left before the reload, announcing keep-alive',
    );
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(c.closed, false, 'not closed after a response that announced keep-alive');
    c.send(get('/after'));
    const next = await c.response();
    assert.equal(next.status, 200);
    assert.equal(next.headers.connection, 'close');
    await c.waitClosed(5000);
  } finally {
    await lb.close();
    await up.close();
  }
});
