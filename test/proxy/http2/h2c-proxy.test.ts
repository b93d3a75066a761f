/**
 * `http2 on`: h2c with prior knowledge, proxied to HTTP/1.1 upstreams as
 * HTTP/1.1 requests are, with real clients (curl, Node's http2 client,
 * h2load): routing and headers (`:authority` as Host, X-Forwarded-*,
 * proxy_set_header, cookies joined), bodies streamed both ways intact,
 * trailers of a chunked upstream response, 502/504 as responses and a
 * response cut mid-body as RST_STREAM INTERNAL_ERROR (never a short body
 * that looks whole), client_max_body_size (413), the header list limit
 * (400), SETTINGS_MAX_CONCURRENT_STREAMS, keepalive_requests and
 * keepalive_timeout as GOAWAY, and the access line's `protocol`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { LINGER_MS } from '../../../src/proxy/http/connection.js';
import type { RequestRecord } from '../../../src/proxy/http/index.js';
import { closedPort, sleep } from '../fixtures.js';
import type { RunningHttp } from '../http/fixtures.js';
import { curl, FRAME, frame, h2request, h2session, RawH2, startFromText } from './fixtures.js';

const sha = (b: Buffer | Buffer[]) => {
  const h = createHash('sha256');
  for (const x of Array.isArray(b) ? b : [b]) h.update(x);
  return h.digest('hex');
};

function upstreamHandler(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '';
  if (url.startsWith('/echo') || url.startsWith('/small')) {
    // The body streamed back as it arrives (chunked), with its checksum as a trailer.
    const h = createHash('sha256');
    res.setHeader('Trailer', 'x-body-sha256');
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    req.on('data', (c: Buffer) => {
      h.update(c);
      res.write(c);
    });
    req.on('end', () => {
      res.addTrailers({ 'x-body-sha256': h.digest('hex') });
      res.end();
    });
    return;
  }
  if (url.startsWith('/slow')) return; // never answers: proxy_read_timeout
  if (url.startsWith('/cut')) {
    res.writeHead(200, { 'content-length': '100000' });
    res.write(Buffer.alloc(1000, 0x61));
    setTimeout(() => req.socket.destroy(), 50);
    return;
  }
  req.resume();
  req.on('end', () => {
    const body = JSON.stringify({ url, headers: req.headers });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
}

describe('http2 on: h2c with prior knowledge to an HTTP/1.1 upstream', () => {
  let up: Server;
  let lb: RunningHttp;
  let port: number;
  let plainPort: number;

  before(async () => {
    up = createServer(upstreamHandler);
    await new Promise<void>((resolve) => up.listen(0, '127.0.0.1', resolve));
    const upPort = (up.address() as AddressInfo).port;
    port = await closedPort();
    plainPort = await closedPort();
    const down = await closedPort();
    lb = await startFromText(`
      http {
        upstream app { server 127.0.0.1:${upPort}; keepalive 8; }
        server {
          listen 127.0.0.1:${port};
          http2 on;
          client_max_body_size 16m;
          location / { proxy_http_version 1.1; proxy_set_header X-Test h2; proxy_pass http://app; }
          location /slow { proxy_http_version 1.1; proxy_read_timeout 1s; proxy_pass http://app; }
          location /small { client_max_body_size 1k; proxy_http_version 1.1; proxy_pass http://app; }
          location /down { proxy_pass http://127.0.0.1:${down}; }
        }
        server { listen 127.0.0.1:${plainPort}; location / { proxy_http_version 1.1; proxy_pass http://app; } }
      }`);
  });

  after(async () => {
    await lb?.close();
    await new Promise((resolve) => up?.close(resolve));
  });

  const records = (path: string) => lb.requests().filter((r: RequestRecord) => r.path === path);

  it('serves curl --http2-prior-knowledge with :authority as Host and the proxy headers, logged as HTTP/2.0', async () => {
    const r = await curl([
      '--http2-prior-knowledge',
      '-D',
      '-',
      '-H',
      'Cookie: a=1',
      `http://127.0.0.1:${port}/headers?q=1`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^HTTP\/2 200/);
    const seen = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as {
      url: string;
      headers: Record<string, string>;
    };
    assert.equal(seen.url, '/headers?q=1');
    assert.equal(seen.headers.host, `127.0.0.1:${port}`);
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    assert.equal(seen.headers['x-test'], 'h2');
    assert.equal(seen.headers.cookie, 'a=1');
    const line = (await lb.waitForRequests(1)).find((x) => x.path === '/headers?q=1');
    assert.equal(line?.protocol, 'HTTP/2.0');
    assert.equal(line?.status, 200);
    assert.equal(line?.host, `127.0.0.1:${port}`);
  });

  it('still serves HTTP/1.1 on the same listener (no protocol field on its access line)', async () => {
    const r = await curl(['--http1.1', '-D', '-', `http://127.0.0.1:${port}/h1`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^HTTP\/1\.1 200/);
    await lb.waitForRequests(2);
    assert.equal(records('/h1')[0]?.protocol, undefined);
  });

  it('does not speak HTTP/2 on a server without http2 on', async () => {
    const r = await curl(['--http2-prior-knowledge', `http://127.0.0.1:${plainPort}/`], 5_000);
    assert.notEqual(r.code, 0);
  });

  it('joins cookie fields with "; " and drops TE (Node http2 client)', async () => {
    const s = await h2session(port);
    try {
      const r = await h2request(s, { ':path': '/headers', cookie: ['a=1', 'b=2'], te: 'trailers' });
      assert.equal(r.status, 200);
      const seen = JSON.parse(r.body.toString()) as { headers: Record<string, string> };
      assert.equal(seen.headers.cookie, 'a=1; b=2');
      assert.equal(seen.headers.te, undefined);
    } finally {
      s.close();
    }
  });

  it('streams request and response bodies both ways intact, concurrently on one connection', async () => {
    const s = await h2session(port);
    try {
      const bodies = [0, 1, 2, 3].map(() => [
        randomBytes(700_000),
        randomBytes(900_000),
        randomBytes(400_000),
      ]);
      const results = await Promise.all(
        bodies.map((parts, i) =>
          // Even streams declare content-length, odd ones do not (chunked upstream).
          h2request(
            s,
            i % 2 === 0
              ? {
                  ':method': 'POST',
                  ':path': `/echo/${i}`,
                  'content-length': String(parts.reduce((n, p) => n + p.length, 0)),
                }
              : { ':method': 'POST', ':path': `/echo/${i}` },
            parts,
          ),
        ),
      );
      for (const [i, r] of results.entries()) {
        assert.equal(r.status, 200);
        assert.equal(sha(r.body), sha(bodies[i]!), `response body of stream ${i}`);
        // The upstream's own checksum of what it received, passed on as a trailer.
        assert.equal(r.trailers?.['x-body-sha256'], sha(bodies[i]!), `request body of stream ${i}`);
      }
    } finally {
      s.close();
    }
  });

  it('answers 502 when the upstream refuses and 504 on proxy_read_timeout, as responses', async () => {
    const s = await h2session(port);
    try {
      const down = await h2request(s, { ':path': '/down' });
      assert.equal(down.status, 502);
      const t0 = Date.now();
      const slow = await h2request(s, { ':path': '/slow' });
      assert.equal(slow.status, 504);
      assert.ok(Date.now() - t0 >= 900, 'after proxy_read_timeout');
      // The connection goes on.
      assert.equal((await h2request(s, { ':path': '/after' })).status, 200);
    } finally {
      s.close();
    }
  });

  it('resets the stream with INTERNAL_ERROR when the upstream dies mid-body (a cut body never looks whole)', async () => {
    const s = await h2session(port);
    try {
      await assert.rejects(h2request(s, { ':path': '/cut' }), /INTERNAL_ERROR/);
      assert.equal((await h2request(s, { ':path': '/after-cut' })).status, 200);
    } finally {
      s.close();
    }
  });

  it('answers 413 over client_max_body_size, declared or streamed', async () => {
    const s = await h2session(port);
    try {
      const declared = await h2request(
        s,
        { ':method': 'POST', ':path': '/small', 'content-length': '2048' },
        randomBytes(2048),
      );
      assert.equal(declared.status, 413);
      const streamed = await h2request(s, { ':method': 'POST', ':path': '/small' }, [
        randomBytes(1000),
        randomBytes(1000),
      ]);
      assert.equal(streamed.status, 413);
      assert.equal((await h2request(s, { ':path': '/after-413' })).status, 200);
    } finally {
      s.close();
    }
  });

  it('answers 400 to a header over large_client_header_buffers, as nginx', async () => {
    const s = await h2session(port);
    try {
      const big = await h2request(s, { ':path': '/big', 'x-big': 'a'.repeat(9000) });
      assert.equal(big.status, 400);
      assert.match(big.body.toString(), /Request Header Or Cookie Too Large/);
      const fine = await h2request(s, { ':path': '/fine', 'x-big': 'a'.repeat(7000) });
      assert.equal(fine.status, 200);
    } finally {
      s.close();
    }
  });

  it('announces http2_max_concurrent_streams (default 128) and serves h2load with many concurrent streams', async () => {
    const s = await h2session(port);
    try {
      assert.equal(s.remoteSettings.maxConcurrentStreams, 128);
    } finally {
      s.close();
    }
    const out = await new Promise<string>((resolve, reject) => {
      execFile(
        'h2load',
        ['-n', '600', '-c', '3', '-m', '64', `http://127.0.0.1:${port}/load`],
        { timeout: 60_000 },
        (error, stdout) => (error ? reject(error) : resolve(stdout)),
      );
    });
    assert.match(out, /requests: 600 total, 600 started, 600 done, 600 succeeded/);
    assert.match(out, /status codes: 600 2xx/);
  });
});

describe('http2 keep-alive rules per connection, as nginx', () => {
  it('sends GOAWAY after keepalive_requests streams and closes an idle connection after keepalive_timeout', async () => {
    const up = createServer((req, res) => {
      req.resume();
      res.end('ok');
    });
    await new Promise<void>((resolve) => up.listen(0, '127.0.0.1', resolve));
    const port = await closedPort();
    const lb = await startFromText(`
      http {
        server {
          listen 127.0.0.1:${port};
          http2 on;
          http2_max_concurrent_streams 16;
          keepalive_requests 3;
          keepalive_timeout 1s;
          location / { proxy_pass http://127.0.0.1:${(up.address() as AddressInfo).port}; }
        }
      }`);
    try {
      const s = await h2session(port);
      assert.equal(s.remoteSettings.maxConcurrentStreams, 16);
      const goaway = new Promise<number>((resolve) => s.once('goaway', (code: number) => resolve(code)));
      for (let i = 0; i < 3; i++) assert.equal((await h2request(s, { ':path': `/${i}` })).status, 200);
      assert.equal(await goaway, 0);
      s.destroy();

      const idle = await h2session(port);
      const t0 = Date.now();
      const closed = new Promise<number>((resolve) => idle.once('close', () => resolve(Date.now() - t0)));
      const code = await new Promise<number>((resolve) => idle.once('goaway', (c: number) => resolve(c)));
      assert.equal(code, 0);
      const ms = await closed;
      assert.ok(ms >= 900 && ms < 5_000, `idle connection closed after ${ms} ms (keepalive_timeout 1s)`);

      // A client that ignores the GOAWAY and never closes is closed after the lingering time:
      // its writes (PINGs) then meet a closed socket.
      const deaf = await RawH2.open(port, true);
      deaf.hello();
      await deaf.waitFor((f) => f.type === FRAME.SETTINGS && (f.flags & 1) === 0, 5_000, 'server SETTINGS');
      deaf.write(frame(FRAME.SETTINGS, 1, 0));
      await deaf.waitFor((f) => f.type === FRAME.GOAWAY, 5_000, 'GOAWAY at keepalive_timeout');
      const goneAt = Date.now();
      while (!deaf.closed && Date.now() - goneAt < LINGER_MS * 3) {
        deaf.write(frame(FRAME.PING, 0, 0, Buffer.alloc(8)));
        await sleep(250);
      }
      const lingered = Date.now() - goneAt;
      assert.ok(deaf.closed, 'closed by keepwire');
      assert.ok(
        lingered >= LINGER_MS - 500,
        `closed ${lingered} ms after GOAWAY (lingering ${LINGER_MS} ms)`,
      );
      deaf.close();
    } finally {
      await lb.close();
      await new Promise((resolve) => up.close(resolve));
    }
  });
});
