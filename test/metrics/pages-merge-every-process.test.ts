/**
 * The pages are the whole server's: under worker processes `gather(topic)`
 * returns one answer per process (the transport of src/serve/gather.ts),
 * and the pages sum counters and histograms, keep an upstream server up
 * when any process has it up, and re-sort the processes' connection
 * tables together, cut to status_connections. Here the transport answers
 * with this process's snapshot twice, as two identical workers would.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Family, mergeFamilies, render } from '../../src/metrics/exposition.js';
import { stubStatusText } from '../../src/metrics/pages.js';
import { mergeStatus, type StatusConnection, type StatusSnapshot } from '../../src/metrics/status.js';
import { collectLocal, setGatherTransport } from '../../src/serve/gather.js';
import { modelFromText } from '../model-text.js';
import { okResponse, RawClient, rawUpstream, startHttp } from '../proxy/http/fixtures.js';
import { closedPort } from '../support.js';
import { parseExposition, sampleValue } from './scrape.js';

test('metrics, stub_status and status sum and merge the answers of every serving process', async (t) => {
  const up = await rawUpstream((_req, respond) => respond(okResponse('ok')));
  t.after(() => up.close());
  const port = await closedPort();
  const pages = await closedPort();
  const lb = await startHttp(
    modelFromText(`events { worker_connections 64; }
http {
  upstream merged { server 127.0.0.1:${up.port}; keepalive 4; }
  server { listen 127.0.0.1:${port}; location / { proxy_pass http://merged; proxy_http_version 1.1; } }
  server {
    listen 127.0.0.1:${pages};
    location /metrics { metrics; }
    location /basic_status { stub_status; }
    location /status { status; status_connections 1; }
  }
}
`),
  );
  t.after(() => lb.close());
  const client = await RawClient.open(port);
  t.after(() => client.close());
  for (let i = 0; i < 3; i++) {
    client.send('GET / HTTP/1.1\r\nHost: t\r\n\r\n');
    assert.equal((await client.response({ timeoutMs: 10_000 })).status, 200);
  }
  const one = parseExposition(render((await collectLocal('metrics')) as Family[], false));
  const listener = { listener: `127.0.0.1:${port}` };
  assert.equal(sampleValue(one, 'keepwire_http_requests_total', listener), 3);

  // Two "workers", each answering with this process's own collector.
  setGatherTransport(async (topic) => [await collectLocal(topic), await collectLocal(topic)]);
  t.after(() => setGatherTransport(undefined));

  const two = parseExposition(await (await fetch(`http://127.0.0.1:${pages}/metrics`)).text());
  assert.equal(sampleValue(two, 'keepwire_http_requests_total', listener), 6, 'counters summed');
  assert.equal(
    sampleValue(two, 'keepwire_http_request_duration_seconds_count', listener),
    6,
    'histograms summed',
  );
  assert.equal(
    sampleValue(two, 'keepwire_upstream_server_up', { upstream: 'merged', server: `127.0.0.1:${up.port}` }),
    1,
    'up is up in any process, not summed',
  );
  assert.equal(
    sampleValue(two, 'keepwire_listener_keepalive_info', { ...listener, so_keepalive: 'off' }),
    1,
    'info stays 1',
  );

  const stub = await (await fetch(`http://127.0.0.1:${pages}/basic_status`)).text();
  assert.match(stub, /^Active connections: (\d+) \n/);
  const active = Number(/^Active connections: (\d+)/.exec(stub)![1]);
  assert.equal(active % 2, 0, `both processes' connections counted: ${stub}`);

  const status = (await (
    await fetch(`http://127.0.0.1:${pages}/status?format=json`)
  ).json()) as StatusSnapshot;
  assert.equal(status.connections.length, 1, 'cut to status_connections');
  const own = (await collectLocal('status')) as StatusSnapshot;
  assert.equal(status.connectionsTotal, 2 * own.connectionsTotal);
  assert.equal(status.upstreams.find((u) => u.name === 'merged')!.idleConnections, 2, 'cache sizes summed');
});

test('mergeStatus re-sorts the processes connection tables together, most idle first', () => {
  const conn = (pid: number, idleMs: number): StatusConnection => ({
    side: 'client',
    state: 'waiting',
    where: '127.0.0.1:80',
    local: '127.0.0.1:80',
    remote: `127.0.0.1:${1000 + idleMs}`,
    pid,
    ageMs: idleMs,
    idleMs,
    bytesReceived: 0,
    bytesSent: 0,
    lbIdleTimeoutMs: null,
    kernel: { error: 'test' },
  });
  const snap = (pid: number, idles: number[]): StatusSnapshot => ({
    pid,
    at: 0,
    listeners: [],
    upstreams: [],
    events: [],
    connectionsTotal: idles.length,
    connections: idles.map((i) => conn(pid, i)),
  });
  const merged = mergeStatus([snap(1, [900, 300, 100]), snap(2, [800, 700, 50])], 4);
  assert.deepEqual(
    merged.connections.map((c) => [c.pid, c.idleMs]),
    [
      [1, 900],
      [2, 800],
      [2, 700],
      [1, 300],
    ],
  );
  assert.equal(merged.connectionsTotal, 6);
});

test('stub_status of merged families: Active is every process connection', () => {
  const fam = (n: number): Family[] => [
    {
      name: 'keepwire_connections',
      help: '',
      type: 'gauge',
      samples: [
        { labels: { listener: 'a', state: 'reading' }, value: 0 },
        { labels: { listener: 'a', state: 'writing' }, value: 1 },
        { labels: { listener: 'a', state: 'waiting' }, value: n },
      ],
    },
    {
      name: 'keepwire_connections_accepted',
      help: '',
      type: 'counter',
      samples: [{ labels: { listener: 'a' }, value: 10 }],
    },
    {
      name: 'keepwire_connections_handled',
      help: '',
      type: 'counter',
      samples: [{ labels: { listener: 'a' }, value: 9 }],
    },
    {
      name: 'keepwire_http_requests',
      help: '',
      type: 'counter',
      samples: [{ labels: { listener: 'a' }, value: 20 }],
    },
  ];
  assert.equal(
    stubStatusText(mergeFamilies([fam(2), fam(3)])),
    'Active connections: 7 \nserver accepts handled requests\n 20 18 40 \nReading: 0 Writing: 2 Waiting: 5 \n',
  );
});
