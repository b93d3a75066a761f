/**
 * Chromium's own WebSocket client through an L7 hop: headless Chromium →
 * nginx (proxy_read_timeout 2s, WebSocket upgrade: an ALB stand-in) →
 * keepwire → a `ws` origin. With `websocket_heartbeat 500ms` the page stays
 * idle for 2.5× the L7 idle timeout and still exchanges a message each way;
 * without it, the same idle gets the tunnel closed by nginx (the control:
 * proof that the first case is the heartbeat's doing). The heartbeats are
 * counted in keepwire_websocket_heartbeats_total.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { WebSocketServer } from 'ws';
import { parseExposition, sampleValue } from '../metrics/scrape.js';
import { modelFromText } from '../model-text.js';
import { startHttp } from '../proxy/http/fixtures.js';
import { requireNginx, startLocalNginx } from '../proxy/http/nginx-peer.js';
import { closedPort, sleep } from '../support.js';
import { Browser, requireChromium } from './chromium.js';

const LB_IDLE_MS = 2000;

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>ws</title></head>
<body><script>
window.received = [];
window.wsClosed = null;
window.ws = new WebSocket("ws://" + location.host + "/ws");
ws.onopen = () => { window.opened = true; };
ws.onmessage = (e) => window.received.push(String(e.data));
ws.onclose = (e) => { window.wsClosed = { code: e.code, at: Date.now() }; };
</script></body></html>`;

async function run(heartbeat: boolean): Promise<{
  opened: boolean;
  closed: unknown;
  received: string[];
  originGot: string[];
  heartbeats: number;
  errors: string[];
}> {
  const originGot: string[] = [];
  const origin = createServer((req, res) => {
    if (req.url === '/page') {
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.end(PAGE);
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  const wss = new WebSocketServer({ server: origin, path: '/ws' });
  const peers: import('ws').WebSocket[] = [];
  wss.on('connection', (ws) => {
    peers.push(ws);
    ws.on('message', (data) => {
      originGot.push(String(data));
      ws.send(`echo:${String(data)}`);
    });
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const port = await closedPort();
  const metricsPort = await closedPort();
  const kw = await startHttp(
    modelFromText(`events { worker_connections 64; }
http {
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://127.0.0.1:${(origin.address() as AddressInfo).port};
      proxy_read_timeout 60s;
      ${heartbeat ? 'websocket_heartbeat 500ms both;' : ''}
    }
  }
  server { listen 127.0.0.1:${metricsPort}; location /metrics { metrics; } }
}
`),
  );
  const nginx = await startLocalNginx(`server {
    listen 127.0.0.1:PORT;
    location / {
      proxy_pass http://127.0.0.1:${port};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout ${LB_IDLE_MS / 1000}s;
      proxy_send_timeout ${LB_IDLE_MS / 1000}s;
    }
  }`);
  const browser = await Browser.launch();
  try {
    const page = await browser.newPage(800, 600);
    await page.goto(`http://127.0.0.1:${nginx.port}/page`);
    await page.waitFor('window.opened === true', 15_000, 'the WebSocket to open');
    // Idle both ways for 2.5x the L7 hop's idle timeout.
    await sleep(2.5 * LB_IDLE_MS);
    const closed = await page.evaluate<unknown>('window.wsClosed');
    let received: string[] = [];
    if (closed === null) {
      await page.evaluate('window.ws.send("from-chromium-after-idle"), true');
      for (const p of peers) p.send('from-origin-after-idle');
      received = await page.waitFor<string[]>(
        'window.received.length >= 2 ? window.received : null',
        10_000,
        'both messages after the idle period',
      );
    }
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const heartbeats = sampleValue(parseExposition(text), 'keepwire_websocket_heartbeats_total', {
      listener: `127.0.0.1:${port}`,
    });
    return { opened: true, closed, received, originGot, heartbeats, errors: page.errors };
  } finally {
    await browser.close();
    nginx.stop();
    await kw.close();
    for (const p of peers) p.terminate();
    await new Promise<void>((resolve) => origin.close(() => resolve()));
  }
}

test('Chromium WebSocket through an L7 hop (nginx, 2s idle) and keepwire with websocket_heartbeat: idle 5s, then a message each way', async (t) => {
  if (!requireChromium(t) || !requireNginx(t)) return;
  const r = await run(true);
  assert.equal(r.closed, null, 'the tunnel survived the L7 idle timeout');
  assert.deepEqual(
    [...r.received].sort(),
    ['echo:from-chromium-after-idle', 'from-origin-after-idle'],
    'both directions delivered after the idle period',
  );
  assert.deepEqual(r.originGot, ['from-chromium-after-idle']);
  assert.ok(r.heartbeats >= 4, `Pongs sent while idle (keepwire_websocket_heartbeats_total ${r.heartbeats})`);
  assert.deepEqual(r.errors, []);
});

test('control: without websocket_heartbeat the same idle period gets the WebSocket closed by the L7 hop', async (t) => {
  if (!requireChromium(t) || !requireNginx(t)) return;
  const r = await run(false);
  assert.equal(
    typeof (r.closed as { code?: unknown } | null)?.code,
    'number',
    'nginx closed the idle tunnel at its proxy_read_timeout (the page saw a close event)',
  );
  assert.equal(r.heartbeats, 0);
});
