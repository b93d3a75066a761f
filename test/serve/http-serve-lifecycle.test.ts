/**
 * The real `keepwire serve` process with an http {} block: it is served (no
 * "not served" warning), one JSON access line per request, SIGHUP swaps the
 * configuration while a request in flight on the old one completes, and
 * SIGTERM lets a request in flight finish (with Connection: close) before
 * exiting 0.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { closedPort } from '../proxy/fixtures.js';
import { fetchRaw, get, okResponse, RawClient, rawUpstream, sleep, within } from '../proxy/http/fixtures.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function conf(port: number, upstreamPort: number, extraLocation = ''): string {
  return `worker_shutdown_timeout 5s;
http {
    upstream app { server 127.0.0.1:${upstreamPort}; keepalive 4; }
    server {
        listen 127.0.0.1:${port};
        location / { proxy_pass http://app; proxy_http_version 1.1; }
        ${extraLocation}
    }
}
`;
}

test('serve runs http {}: access log, SIGHUP reload with a request in flight, SIGTERM drain', async () => {
  const up = await rawUpstream((req, respond) => {
    const delay = req.url.startsWith('/slow') ? 800 : 0;
    setTimeout(() => respond(okResponse(`up ${req.url}`)), delay);
  });
  const port = await closedPort();
  const dir = mkdtempSync(join(tmpdir(), 'keepwire-http-serve-'));
  const file = join(dir, 'keepwire.conf');
  writeFileSync(file, conf(port, up.port));
  const child = spawn(process.execPath, [MAIN, 'serve', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  let buf = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      lines.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
      buf = buf.slice(nl + 1);
    }
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const waitLine = (pred: (l: Record<string, unknown>) => boolean, what: string) =>
    within(
      (async () => {
        for (let i = 0; i < 500; i++) {
          const found = lines.find(pred);
          if (found) return found;
          await sleep(20);
        }
        throw new Error(`no ${what}`);
      })(),
      15_000,
      what,
    );
  try {
    await waitLine((l) => l.msg === 'started', 'started');
    assert.doesNotMatch(stderr, /not served/);

    const first = await fetchRaw(port, get('/a'));
    assert.equal(first.body.toString(), 'up /a');
    const access = await waitLine((l) => l.msg === 'request' && l.path === '/a', 'access line');
    assert.equal(access.status, 200);
    assert.equal(access.upstream, `127.0.0.1:${up.port}`);
    for (const key of ['method', 'bytesSent', 'upstreamConnect', 'retries', 'timings', 'reason'])
      assert.ok(key in access, key);
    // The access line is serialised apart from pino: it keeps pino's info-line fields.
    assert.equal(access.level, 30);
    assert.equal(access.pid, child.pid);
    assert.ok(!Number.isNaN(Date.parse(String(access.time))), `time ${access.time}`);

    // A slow request on the old configuration, then reload.
    const slow = await RawClient.open(port);
    slow.send(get('/slow-1'));
    await sleep(100);
    writeFileSync(file, conf(port, up.port, 'location /v { return 200 "v2"; }'));
    child.kill('SIGHUP');
    await waitLine((l) => l.msg === 'reloaded', 'reloaded');
    const v2 = await fetchRaw(port, get('/v'));
    assert.equal(v2.body.toString(), 'v2');
    const slowRes = await slow.response({ timeoutMs: 5_000 });
    assert.equal(
      slowRes.body.toString(),
      'up /slow-1',
      'the request in flight finished on the old configuration',
    );
    slow.close();

    // SIGTERM with a request in flight: it completes, then the process exits 0.
    const last = await RawClient.open(port);
    last.send(get('/slow-2'));
    await sleep(100);
    child.kill('SIGTERM');
    const lastRes = await last.response({ timeoutMs: 5_000 });
    assert.equal(lastRes.status, 200);
    assert.equal(lastRes.headers.connection, 'close');
    assert.equal(await within(exited, 10_000, 'exit'), 0);
    assert.ok(lines.some((l) => l.msg === 'stopped'));
  } finally {
    child.kill('SIGKILL');
    await up.close();
  }
});
