/**
 * `status?format=json` lists live connections with what the kernel holds
 * for them: a client connection held idle appears with the keepalive
 * getsockopt reads on keepwire's accepted socket (so_keepalive), and the
 * upstream connection cached after its request with the one on keepwire's
 * connected socket (proxy_socket_keepalive), each with TCP_INFO's fields.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { fdOf } from '../../src/kernel/fd.js';
import { getIntOption, sockoptConstants } from '../../src/kernel/sockopt.js';
import { liveHttp } from '../../src/metrics/live.js';
import type { StatusConnection, StatusSnapshot } from '../../src/metrics/status.js';
import { modelFromText } from '../model-text.js';
import { okResponse, RawClient, rawUpstream, startHttp } from '../proxy/http/fixtures.js';
import { closedPort } from '../support.js';

/** TCP keepalive of a socket, each option read with its own getsockopt. */
function getsockopt(socket: Socket): { enabled: boolean; idle: number; interval: number; count: number } {
  const c = sockoptConstants();
  const fd = fdOf(socket);
  return {
    enabled: getIntOption(fd, c.SOL_SOCKET, c.SO_KEEPALIVE, 'SO_KEEPALIVE') !== 0,
    idle: getIntOption(fd, c.IPPROTO_TCP, c.TCP_KEEPIDLE, 'TCP_KEEPIDLE'),
    interval: getIntOption(fd, c.IPPROTO_TCP, c.TCP_KEEPINTVL, 'TCP_KEEPINTVL'),
    count: getIntOption(fd, c.IPPROTO_TCP, c.TCP_KEEPCNT, 'TCP_KEEPCNT'),
  };
}

test('status JSON lists an idle client and a cached upstream connection with the keepalive getsockopt reads', async (t) => {
  const up = await rawUpstream((_req, respond) => respond(okResponse('ok')));
  t.after(() => up.close());
  const port = await closedPort();
  const statusPort = await closedPort();
  const lb = await startHttp(
    modelFromText(`events { worker_connections 64; }
http {
  upstream kernelgroup { server 127.0.0.1:${up.port}; keepalive 4; }
  server {
    listen 127.0.0.1:${port} so_keepalive=9s:4s:5;
    lb_idle_timeout 350s;
    location / { proxy_pass http://kernelgroup; proxy_http_version 1.1; proxy_socket_keepalive 11s:6s:2; }
  }
  server { listen 127.0.0.1:${statusPort}; location /status { status; } }
}
`),
  );
  t.after(() => lb.close());
  const client = await RawClient.open(port);
  t.after(() => client.close());
  client.send('GET / HTTP/1.1\r\nHost: t\r\n\r\n');
  assert.equal((await client.response({ timeoutMs: 10_000 })).status, 200);

  const res = await fetch(`http://127.0.0.1:${statusPort}/status?format=json`);
  assert.equal(res.headers.get('content-type'), 'application/json');
  const snapshot = (await res.json()) as StatusSnapshot;

  // keepwire's own sockets for the two connections.
  let accepted: Socket | undefined;
  let cached: Socket | undefined;
  for (const g of liveHttp) {
    for (const f of g.frontends)
      for (const c of f.connections) if (c.remotePort === client.socket.localPort) accepted = c.socket;
    for (const group of g.groups) for (const conn of group.pool.idleConnections()) cached = conn.socket;
  }
  assert.ok(accepted && cached, 'keepwire holds both connections');

  const row = snapshot.connections.find(
    (c: StatusConnection) => c.side === 'client' && c.remote === `127.0.0.1:${client.socket.localPort}`,
  );
  assert.ok(row, `the idle client is listed: ${JSON.stringify(snapshot.connections)}`);
  assert.equal(row.state, 'waiting');
  assert.equal(row.lbIdleTimeoutMs, 350_000);
  assert.ok(!('error' in row.kernel), JSON.stringify(row.kernel));
  assert.deepEqual(row.kernel.keepalive, getsockopt(accepted));
  assert.deepEqual(row.kernel.keepalive, { enabled: true, idle: 9, interval: 4, count: 5 });
  assert.equal(row.kernel.probesUnanswered, 0);
  assert.equal(row.kernel.tcpState, 1, 'ESTABLISHED');
  assert.ok(row.kernel.rttUs > 0, 'an RTT was measured');

  const upRow = snapshot.connections.find((c: StatusConnection) => c.side === 'upstream');
  assert.ok(upRow, 'the cached upstream connection is listed');
  assert.equal(upRow.state, 'pooled');
  assert.equal(upRow.where, 'kernelgroup');
  assert.equal(upRow.remote, `127.0.0.1:${up.port}`);
  assert.ok(!('error' in upRow.kernel), JSON.stringify(upRow.kernel));
  assert.deepEqual(upRow.kernel.keepalive, getsockopt(cached));
  assert.deepEqual(upRow.kernel.keepalive, { enabled: true, idle: 11, interval: 6, count: 2 });

  const group = snapshot.upstreams.find((u) => u.name === 'kernelgroup');
  assert.deepEqual(group, {
    name: 'kernelgroup',
    idleConnections: 1,
    keepalive: 4,
    servers: [{ server: `127.0.0.1:${up.port}`, up: true, down: false, backup: false, fails: 0, active: 0 }],
  });
  assert.deepEqual(
    snapshot.listeners.find((l) => l.listen === `127.0.0.1:${port}`),
    { listen: `127.0.0.1:${port}`, kind: 'http', soKeepalive: '9s:4s:5', accepted: 1 },
  );
});
