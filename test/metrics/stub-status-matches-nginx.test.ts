/**
 * `stub_status` answers in nginx's exact text, so nginx dashboards and the
 * nginx Prometheus exporter read keepwire unchanged: the same scenario
 * against Debian's nginx (stub_status is built in: --with-http_stub_status_module)
 * and keepwire (one connection probed at start, one keep-alive connection
 * left idle after a request, then the status request) gives byte-identical
 * bodies, numbers included, and the same Content-Type.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { modelFromText } from '../model-text.js';
import { startHttp } from '../proxy/http/fixtures.js';
import { requireNginx, startLocalNginx } from '../proxy/http/nginx-peer.js';
import { closedPort, within } from '../support.js';

/** Opens a connection, sends one request, reads its answer and leaves the connection idle. */
async function idleAfterOneRequest(port: number): Promise<Socket> {
  const s = connect({ host: '127.0.0.1', port });
  s.on('error', () => {});
  let got = '';
  const answered = new Promise<void>((resolve) =>
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (got.endsWith('\r\n\r\nx')) resolve();
    }),
  );
  s.write('GET /x HTTP/1.1\r\nHost: t\r\n\r\n');
  await within(answered, 10_000, 'the answer to /x');
  return s;
}

async function stub(port: number): Promise<{ body: string; type: string | null }> {
  const r = await fetch(`http://127.0.0.1:${port}/basic_status`, { headers: { connection: 'close' } });
  return { body: await r.text(), type: r.headers.get('content-type') };
}

/** The stub_status answer once the start-up probe connection is gone (2 active: the idle one and this). */
async function settled(port: number): Promise<{ body: string; type: string | null }> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const s = await stub(port);
    if (s.body.startsWith('Active connections: 2 ') || Date.now() > deadline) return s;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const LOCATIONS = `
    location /x { return 200 "x"; }
    location /basic_status { stub_status; }
`;

test("stub_status is byte for byte nginx's: Active, accepts handled requests, Reading Writing Waiting", async (t) => {
  if (!requireNginx(t)) return;
  const nginx = await startLocalNginx(`server { listen 127.0.0.1:PORT; ${LOCATIONS} }`);
  t.after(() => nginx.stop());
  const port = await closedPort();
  const kw = await startHttp(
    modelFromText(`events { worker_connections 64; }
http { server { listen 127.0.0.1:${port}; ${LOCATIONS} } }
`),
  );
  t.after(() => kw.close());
  // startLocalNginx made one connection to see nginx listening: keepwire gets the same.
  const probe = connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve) => probe.once('connect', () => resolve()));
  probe.destroy();

  const idleN = await idleAfterOneRequest(nginx.port);
  const idleK = await idleAfterOneRequest(port);
  t.after(() => {
    idleN.destroy();
    idleK.destroy();
  });
  const fromNginx = await settled(nginx.port);
  const fromKeepwire = await settled(port);
  assert.match(
    fromNginx.body,
    /^Active connections: \d+ \nserver accepts handled requests\n \d+ \d+ \d+ \nReading: \d+ Writing: \d+ Waiting: \d+ \n$/,
    'the shape of nginx stub_status',
  );
  assert.equal(
    fromNginx.body,
    'Active connections: 2 \nserver accepts handled requests\n 3 3 2 \nReading: 0 Writing: 1 Waiting: 1 \n',
  );
  assert.equal(fromKeepwire.body, fromNginx.body);
  assert.equal(fromKeepwire.type, fromNginx.type);
});
