/**
 * The `metrics` page counts what happened: a scripted scenario of N
 * requests on one keep-alive client connection, M of them hitting a reused
 * upstream connection that the upstream resets as the request arrives
 * (the stale keep-alive race, retried on a fresh connection), and K client
 * connections closed by keepalive_timeout. The counters equal N, M and K;
 * the exposition passes `promtool check metrics`; OpenMetrics is served when
 * the scraper asks for it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { test } from 'node:test';
import { hasCommand } from '../../src/netns/capability.js';
import { modelFromText } from '../model-text.js';
import { okResponse, RawClient, rawUpstream, startHttp } from '../proxy/http/fixtures.js';
import { closedPort, within } from '../support.js';
import { parseExposition, sampleValue } from './scrape.js';

const N = 10;
const M = 3;
const K = 2;

async function scenario(): Promise<{
  text: string;
  openMetrics: string;
  ports: { main: number; idle: number };
}> {
  let resets = 0;
  // Every connection's second request is reset on arrival, M times in all.
  const up = await rawUpstream((_req, respond) => respond(okResponse('ok')), {
    resetBeforeRequest: (index) => index === 1 && resets++ < M,
  });
  const main = await closedPort();
  const idle = await closedPort();
  const scrape = await closedPort();
  const lb = await startHttp(
    modelFromText(`events { worker_connections 64; }
http {
  upstream scripted { server 127.0.0.1:${up.port}; keepalive 8; keepalive_timeout 60s; }
  server {
    listen 127.0.0.1:${main};
    keepalive_timeout 60s;
    location / { proxy_pass http://scripted; proxy_http_version 1.1; }
  }
  server {
    listen 127.0.0.1:${idle};
    keepalive_timeout 1s;
    location / { proxy_pass http://scripted; proxy_http_version 1.1; }
  }
  server {
    listen 127.0.0.1:${scrape};
    location /metrics { metrics; }
  }
}
`),
  );
  try {
    const client = await RawClient.open(main);
    for (let i = 0; i < N; i++) {
      client.send(`GET /r/${i} HTTP/1.1\r\nHost: t\r\n\r\n`);
      const res = await client.response({ timeoutMs: 10_000 });
      assert.equal(res.status, 200, `request ${i}`);
    }
    client.close();
    assert.equal(resets, M + 1, 'the upstream reset M reused connections (and declined once more)');
    // K connections, one request each, then left idle past keepalive_timeout.
    for (let i = 0; i < K; i++) {
      const c = connect({ host: '127.0.0.1', port: idle });
      const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
      c.on('error', () => {});
      c.on('data', () => {});
      c.write('GET /idle HTTP/1.1\r\nHost: t\r\n\r\n');
      await within(closed, 10_000, 'the idle client closed by keepalive_timeout 1s');
    }
    const text = await (await fetch(`http://127.0.0.1:${scrape}/metrics`)).text();
    const om = await fetch(`http://127.0.0.1:${scrape}/metrics`, {
      headers: { accept: 'application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5' },
    });
    assert.match(om.headers.get('content-type') ?? '', /^application\/openmetrics-text; version=1\.0\.0/);
    return { text, openMetrics: await om.text(), ports: { main, idle } };
  } finally {
    await lb.close();
    await up.close();
  }
}

let result: Awaited<ReturnType<typeof scenario>> | undefined;

test(`counters equal a scripted scenario: ${N} requests, ${M} stale-connection retries, ${K} keepalive_timeout closes`, async () => {
  result = await scenario();
  const s = parseExposition(result.text);
  const main = { listener: `127.0.0.1:${result.ports.main}` };
  const idle = { listener: `127.0.0.1:${result.ports.idle}` };
  const up = { upstream: 'scripted' };
  assert.equal(sampleValue(s, 'keepwire_http_requests_total', main), N);
  assert.equal(sampleValue(s, 'keepwire_http_responses_total', { ...main, code: '2xx' }), N);
  assert.equal(sampleValue(s, 'keepwire_http_requests_ended_total', { ...main, reason: 'ok' }), N);
  assert.equal(sampleValue(s, 'keepwire_connections_accepted_total', main), 1);
  assert.equal(sampleValue(s, 'keepwire_connections_handled_total', main), 1);
  assert.equal(sampleValue(s, 'keepwire_upstream_retries_total', { ...up, kind: 'stale_connection' }), M);
  assert.equal(sampleValue(s, 'keepwire_upstream_retries_total', { ...up, kind: 'next_upstream' }), 0);
  // The first request and each retry opened a connection; every later
  // request (the K idle clients' too: one group, one cache) took a cached one.
  assert.equal(sampleValue(s, 'keepwire_upstream_connections_new_total', up), 1 + M);
  assert.equal(sampleValue(s, 'keepwire_upstream_connection_reuses_total', up), N - 1 + K);
  assert.equal(sampleValue(s, 'keepwire_upstream_idle_before_reuse_seconds_count', up), N - 1 + K);
  assert.equal(sampleValue(s, 'keepwire_client_idle_before_reuse_seconds_count', main), N - 1);
  assert.equal(sampleValue(s, 'keepwire_http_request_duration_seconds_count', main), N);
  assert.equal(
    sampleValue(s, 'keepwire_http_request_duration_seconds_bucket', { ...main, le: '+Inf' }),
    N,
    'the +Inf bucket holds every observation',
  );
  assert.equal(sampleValue(s, 'keepwire_client_idle_timeout_closes_total', idle), K);
  assert.equal(sampleValue(s, 'keepwire_client_idle_timeout_closes_total', main), 0);
  assert.equal(
    sampleValue(s, 'keepwire_upstream_failures_total', up),
    0,
    'a retried stale connection is no failure',
  );
  assert.equal(
    sampleValue(s, 'keepwire_upstream_keepalive_info', { ...up, keepalive: '8', keepalive_timeout: '60s' }),
    1,
  );
  assert.equal(sampleValue(s, 'keepwire_listener_keepalive_info', { ...main, so_keepalive: 'off' }), 1);
});

test('the exposition passes promtool check metrics', (t) => {
  assert.ok(result, 'the scenario ran');
  if (!hasCommand('promtool')) {
    const reason = 'promtool is missing: apt-get install prometheus (scripts/system-deps.sh)';
    if (process.env.CI === 'true') throw new Error(`CI=true: this test must run, but ${reason}`);
    t.skip(reason);
    return;
  }
  const r = spawnSync('promtool', ['check', 'metrics'], { input: result.text, encoding: 'utf8' });
  assert.equal(r.status, 0, `promtool: ${r.stdout}${r.stderr}`);
});

test('OpenMetrics on request: counter families without _total, info type, # EOF last, the same values', () => {
  assert.ok(result, 'the scenario ran');
  const om = result.openMetrics;
  assert.ok(om.endsWith('# EOF\n'), 'OpenMetrics ends with # EOF');
  assert.match(om, /^# TYPE keepwire_http_requests counter$/m);
  assert.match(om, /^# TYPE keepwire_listener_keepalive info$/m);
  assert.doesNotMatch(om, /^# TYPE \S+_total /m);
  const main = { listener: `127.0.0.1:${result.ports.main}` };
  const s = parseExposition(om);
  assert.equal(sampleValue(s, 'keepwire_http_requests_total', main), N);
  assert.equal(
    sampleValue(s, 'keepwire_upstream_retries_total', { upstream: 'scripted', kind: 'stale_connection' }),
    M,
  );
  // The 0.0.4 text for Prometheus' default Accept.
  assert.doesNotMatch(result.text, /# EOF/);
  assert.match(result.text, /^# TYPE keepwire_http_requests_total counter$/m);
});
