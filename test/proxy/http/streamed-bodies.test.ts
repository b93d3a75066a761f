/**
 * Bodies stream both ways intact: large uploads and downloads with
 * Content-Length and chunked framing (checksums compared end to end),
 * trailers passed through in both directions, and Expect: 100-continue
 * answered by keepwire (413 at once for a declared body over the limit).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { sha256 as sha } from '../../support.js';
import { httpConfig, httpGroup, httpServer, RawClient, server, startHttp } from './fixtures.js';

/** A Node upstream: hashes what it receives; serves `size` random bytes on /download. */
async function hashingUpstream(download: Buffer) {
  const seen: { trailers: Record<string, string>; headers: http.IncomingHttpHeaders }[] = [];
  const srv = http.createServer((req, res) => {
    const h = createHash('sha256');
    let n = 0;
    req.on('data', (c: Buffer) => {
      h.update(c);
      n += c.length;
    });
    req.on('end', () => {
      seen.push({ trailers: req.trailers as Record<string, string>, headers: req.headers });
      if (req.url?.startsWith('/download')) {
        const chunked = req.url.includes('chunked');
        if (chunked) res.setHeader('Trailer', 'X-Checksum');
        else res.setHeader('Content-Length', download.length);
        // Write in pieces so the proxy sees many reads and backpressure.
        let at = 0;
        const pump = () => {
          while (at < download.length) {
            const piece = download.subarray(at, at + 64 * 1024);
            at += piece.length;
            if (!res.write(piece)) {
              res.once('drain', pump);
              return;
            }
          }
          if (chunked) res.addTrailers({ 'X-Checksum': sha(download) });
          res.end();
        };
        pump();
        return;
      }
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ n, sha: h.digest('hex') }));
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    port: (srv.address() as AddressInfo).port,
    seen,
    close: () => new Promise<void>((resolve) => srv.close(() => resolve())),
  };
}

async function setup(download = randomBytes(1024)) {
  const up = await hashingUpstream(download);
  const lb = await startHttp(
    httpConfig([httpServer({ clientMaxBodySize: 64 * 1024 * 1024 })], [httpGroup('app', [server(up.port)])]),
  );
  return {
    up,
    lb,
    close: async () => {
      await lb.close();
      await up.close();
      http.globalAgent.destroy();
    },
  };
}

function upload(port: number, body: Buffer, chunked: boolean, trailers?: Record<string, string>) {
  return new Promise<{ status: number; json: { n: number; sha: string } }>((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port,
      method: 'PUT',
      path: '/upload',
      headers: chunked
        ? { 'Transfer-Encoding': 'chunked', ...(trailers ? { Trailer: 'X-Sum' } : {}) }
        : { 'Content-Length': body.length },
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        text += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) }));
    });
    req.on('error', reject);
    for (let at = 0; at < body.length; at += 256 * 1024) req.write(body.subarray(at, at + 256 * 1024));
    if (trailers) req.addTrailers(trailers);
    req.end();
  });
}

test('a 16 MiB upload with Content-Length and one chunked with trailers arrive intact', async () => {
  const s = await setup();
  try {
    const body = randomBytes(16 * 1024 * 1024);
    const a = await upload(s.lb.port, body, false);
    assert.equal(a.status, 200);
    assert.deepEqual(a.json, { n: body.length, sha: sha(body) });
    const b = await upload(s.lb.port, body, true, { 'X-Sum': 'abc' });
    assert.deepEqual(b.json, { n: body.length, sha: sha(body) });
    assert.equal(s.up.seen[1]?.headers['transfer-encoding'], 'chunked');
    assert.equal(s.up.seen[1]?.trailers['x-sum'], 'abc', 'request trailers reach the upstream');
    const log = s.lb.requests();
    assert.equal(log[0]?.bytesReceived, body.length);
  } finally {
    await s.close();
  }
});

test('a 32 MiB download with Content-Length and one chunked with a trailer arrive intact', async () => {
  const data = randomBytes(32 * 1024 * 1024);
  const s = await setup(data);
  try {
    const c = await RawClient.open(s.lb.port);
    c.send('GET /download HTTP/1.1\r\nHost: t\r\n\r\n');
    const a = await c.response({ timeoutMs: 30_000 });
    assert.equal(a.headers['content-length'], String(data.length));
    assert.equal(sha(a.body), sha(data));
    c.send('GET /download/chunked HTTP/1.1\r\nHost: t\r\n\r\n');
    const b = await c.response({ timeoutMs: 30_000 });
    assert.equal(b.headers['transfer-encoding'], 'chunked');
    assert.equal(sha(b.body), sha(data));
    assert.equal(b.headers['trailer:x-checksum'], sha(data), 'the response trailer reaches the client');
    c.close();
    const log = await s.lb.waitForRequests(2);
    assert.equal(log[0]?.bytesSent, data.length);
  } finally {
    await s.close();
  }
});

test('Expect: 100-continue: keepwire answers 100, the body follows, the upstream gets no Expect', async () => {
  const s = await setup();
  try {
    const body = randomBytes(100_000);
    const c = await RawClient.open(s.lb.port);
    c.send(`POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`);
    const interim = await c.response({ timeoutMs: 5_000 });
    assert.equal(interim.status, 100);
    c.send(body);
    const res = await c.response();
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.body.toString()), { n: body.length, sha: sha(body) });
    assert.equal(s.up.seen[0]?.headers.expect, undefined);
    c.close();
  } finally {
    await s.close();
  }
});

test('Expect: 100-continue with a declared body over client_max_body_size: 413 without 100', async () => {
  const up = await hashingUpstream(Buffer.alloc(0));
  const lb = await startHttp(
    httpConfig([httpServer({ clientMaxBodySize: 1000 })], [httpGroup('app', [server(up.port)])]),
  );
  try {
    const c = await RawClient.open(lb.port);
    c.send('POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n');
    const res = await c.response({ timeoutMs: 5_000 });
    assert.equal(res.status, 413);
    assert.equal(res.headers.connection, 'close');
    assert.equal(up.seen.length, 0, 'nothing reached the upstream');
    assert.equal(lb.requests()[0]?.reason, 'body_too_large');
    c.close();
  } finally {
    await lb.close();
    await up.close();
  }
});
