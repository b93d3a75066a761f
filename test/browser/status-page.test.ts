/**
 * The `status` page in a real browser: headless Chromium loads it from a
 * running `keepwire serve`, the page fetches its own `?format=json` and
 * draws the connection table, which must come to show a client connection
 * the test holds idle, with the keepalive the kernel has for it (the
 * listen's so_keepalive) and its idle time against lb_idle_timeout. No
 * console error, no failed load; a screenshot is kept in test-artifacts/.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { closedPort, serveCli, within } from '../support.js';
import { ARTIFACTS, Browser, requireChromium } from './chromium.js';

async function idleClient(port: number): Promise<Socket> {
  const s = connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => {
    s.once('connect', () => resolve());
    s.once('error', reject);
  });
  const answered = new Promise<string>((resolve) => {
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (/\r\n\r\nhello$/.test(got)) resolve(got);
    });
  });
  s.write('GET /app HTTP/1.1\r\nHost: t\r\n\r\n');
  const head = await within(answered, 10_000, 'the proxied answer');
  assert.match(head, /^HTTP\/1.1 200/);
  return s;
}

test('the status page shows a known idle connection with its kernel keepalive, in headless Chromium, without console errors', async (t) => {
  if (!requireChromium(t)) return;
  const origin = createServer((_req, res) => res.end('hello'));
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => origin.close(() => resolve())));
  origin.unref();
  const port = await closedPort();
  const originPort = (origin.address() as AddressInfo).port;
  const kw = serveCli(
    t,
    `events { worker_connections 64; }
http {
  upstream app { server 127.0.0.1:${originPort}; keepalive 4; }
  server {
    listen 127.0.0.1:${port} so_keepalive=7s:3s:4;
    lb_idle_timeout 8s;
    location /app { proxy_pass http://app; proxy_http_version 1.1; }
    location /status { status; }
  }
}
`,
  );
  await kw.waitFor((l) => l.msg === 'started', 'keepwire started', 20_000);
  const client = await idleClient(port);
  t.after(() => client.destroy());
  const clientPort = client.localPort!;
  const browser = await Browser.launch();
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${port}/status`);
  // The row of the held connection, once it has been idle at least 2 s (kernel-granular).
  const row = await page.waitFor<string[]>(
    `(() => {
      for (const tr of document.querySelectorAll('#connections tbody tr')) {
        const cells = [...tr.children].map((td) => td.textContent);
        if (cells[4] === '127.0.0.1:${clientPort}' && /s$/.test(cells[6]) && parseFloat(cells[6]) >= 2) return cells;
      }
      return null;
    })()`,
    30_000,
    `a row for the idle client 127.0.0.1:${clientPort}`,
  );
  assert.equal(row[0], 'client');
  assert.equal(row[1], 'waiting');
  assert.equal(row[3], `127.0.0.1:${port}`);
  assert.equal(row[10], '7s:3s:4', 'the keepalive the kernel has for the accepted socket (so_keepalive)');
  assert.equal(row[11], '0', 'no unanswered probe on a healthy loopback connection');
  assert.match(row[7]!, /% of 8\.0 s$/, 'idle drawn against lb_idle_timeout');
  const listeners = await page.evaluate<string[]>(
    `[...document.querySelectorAll('#listeners tbody td')].map((td) => td.textContent)`,
  );
  assert.deepEqual(listeners.slice(0, 3), [`127.0.0.1:${port}`, 'http', '7s:3s:4']);
  const upstream = await page.evaluate<string[]>(
    `[...document.querySelectorAll('#upstreams tbody td')].map((td) => td.textContent)`,
  );
  assert.deepEqual(upstream.slice(0, 3), ['app', `127.0.0.1:${originPort}`, 'up']);
  const shot = await page.screenshot(join(ARTIFACTS, 'status-page.png'));
  process.stderr.write(`# screenshot: ${shot}\n`);
  assert.deepEqual(page.errors, [], `console: ${page.console.join(' | ')}`);
});
