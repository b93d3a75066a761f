/**
 * The standing chaos suite: load through keepwire while its upstreams are
 * killed and restarted, reset mid-body and close idle keep-alive connections
 * without a hint. What must hold, whatever the faults:
 *   HTTP: 0 errors for idempotent GETs that failed before any response byte
 *   (another server or a fresh connection can answer them); 0 bodies that
 *   arrive complete-looking but altered or short (SHA-256 per response);
 *   0 POSTs that reach a backend twice; no fd growth.
 *   stream: every transfer either arrives whole (SHA-256) with a clean end,
 *   or ends in a reset: 0 altered, 0 silently truncated, 0 hung.
 * Bounded for CI (CHAOS_SECONDS, default 20 per part); KEEPWIRE_CHAOS_LONG=1
 * runs 300 s per part. The numbers of the last long run are in docs/chaos.md.
 */
import assert from 'node:assert/strict';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { Agent, createServer as createHttpServer, type Server as HttpServerT, request } from 'node:http';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { test } from 'node:test';
import { config, group, start, streamServer, server as streamUpstream } from '../proxy/fixtures.js';
import {
  httpConfig,
  httpGroup,
  httpServer,
  location,
  passToGroup,
  server,
  startHttp,
} from '../proxy/http/fixtures.js';
import { sleep, within } from '../support.js';

const SECONDS = process.env.KEEPWIRE_CHAOS_LONG === '1' ? 300 : Number(process.env.CHAOS_SECONDS ?? 20);

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

function sha(b: Buffer | Buffer[]): string {
  const h = createHash('sha256');
  for (const c of Array.isArray(b) ? b : [b]) h.update(c);
  return h.digest('hex');
}

/** Deterministic bytes from a seed (AES-128-CTR keystream): the client knows what it should get. */
function bytesFor(seed: number, n: number): Buffer {
  const key = createHash('sha256').update(String(seed)).digest().subarray(0, 16);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(n));
}

// ---- HTTP ----------------------------------------------------------------------

interface Backend {
  port: number;
  kill(): Promise<void>;
  restart(): Promise<void>;
}

async function httpBackend(posts: Map<string, number>): Promise<Backend> {
  let srv: HttpServerT;
  const sockets = new Set<Socket>();
  const make = () => {
    srv = createHttpServer({ keepAliveTimeout: 200 }, (req, res) => {
      if (req.method === 'POST') {
        const id = String(req.headers['x-id']);
        req.resume();
        req.on('end', () => {
          posts.set(id, (posts.get(id) ?? 0) + 1);
          res.end('posted');
        });
        return;
      }
      const seed = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('seed'));
      const body = bytesFor(seed, 64 * 1024 + (seed % 7) * 50_000);
      res.writeHead(200, { 'Content-Length': body.length, 'X-Sha256': sha(body) });
      // Two writes with a pause between them, so a kill can land mid-body.
      res.write(body.subarray(0, body.length >> 1));
      setTimeout(() => res.end(body.subarray(body.length >> 1)), 5);
    });
    srv.on('connection', (s: Socket) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
  };
  make();
  await new Promise<void>((resolve) => srv!.listen(0, '127.0.0.1', resolve));
  const port = (srv!.address() as AddressInfo).port;
  return {
    port,
    async kill() {
      // Like a process kill with requests in flight: reset every connection.
      const closed = new Promise<void>((resolve) => srv.close(() => resolve()));
      for (const s of sockets) s.resetAndDestroy();
      await closed;
    },
    async restart() {
      make();
      await new Promise<void>((resolve) => srv.listen(port, '127.0.0.1', resolve));
    },
  };
}

interface HttpCounts {
  getOk: number;
  getErrBeforeBody: number;
  getCutDetected: number;
  getAltered: number;
  postOk: number;
  postErr: number;
  /** What the client saw for each GET that failed before its head. */
  errors: { seed: number; saw: string }[];
}

function oneGet(agent: Agent, port: number, seed: number, c: HttpCounts): Promise<void> {
  return new Promise((resolve) => {
    let gotHead = false;
    const req = request({ host: '127.0.0.1', port, path: `/data?seed=${seed}`, agent }, (res) => {
      gotHead = true;
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => {
        if (!res.complete) c.getCutDetected++;
        else if (res.statusCode !== 200) {
          c.getErrBeforeBody++;
          c.errors.push({ seed, saw: `status ${res.statusCode}` });
        } else if (sha(parts) !== res.headers['x-sha256']) c.getAltered++;
        else c.getOk++;
        resolve();
      });
      res.on('error', () => {
        c.getCutDetected++;
        resolve();
      });
      res.on('aborted', () => undefined);
    });
    req.on('error', (e: Error) => {
      if (gotHead) return;
      c.getErrBeforeBody++;
      c.errors.push({ seed, saw: e.message });
      resolve();
    });
    req.end();
  });
}

function onePost(agent: Agent, port: number, id: string, c: HttpCounts): Promise<void> {
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/post', method: 'POST', agent, headers: { 'x-id': id } },
      (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) c.postOk++;
          else c.postErr++;
          resolve();
        });
        res.on('error', () => resolve());
      },
    );
    req.on('error', () => {
      c.postErr++;
      resolve();
    });
    req.end('x'.repeat(100));
  });
}

test(`chaos, HTTP: ${SECONDS} s of GETs and POSTs while backends are killed, restarted and close idle connections`, async (t) => {
  const posts = new Map<string, number>();
  const a = await httpBackend(posts);
  const b = await httpBackend(posts);
  const lb = await startHttp(
    httpConfig(
      [httpServer({ locations: [location({ proxyPass: passToGroup('app'), proxyReadTimeoutMs: 10_000 })] })],
      [httpGroup('app', [server(a.port, { failTimeoutMs: 500 }), server(b.port, { failTimeoutMs: 500 })])],
    ),
  );
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const fdsBefore = openFds();
  const c: HttpCounts = {
    getOk: 0,
    getErrBeforeBody: 0,
    getCutDetected: 0,
    getAltered: 0,
    postOk: 0,
    postErr: 0,
    errors: [],
  };
  const deadline = Date.now() + SECONDS * 1000;
  let kills = 0;
  try {
    const chaos = (async () => {
      for (let i = 0; Date.now() < deadline - 1000; i++) {
        await sleep(700);
        const victim = i % 2 === 0 ? a : b;
        await victim.kill();
        kills++;
        await sleep(200);
        await victim.restart();
      }
    })();
    let seed = 0;
    let postId = 0;
    const worker = async () => {
      while (Date.now() < deadline) {
        if (++seed % 5 === 0) await onePost(agent, lb.port, `p${postId++}`, c);
        else await oneGet(agent, lb.port, seed, c);
      }
    };
    await Promise.all([chaos, ...Array.from({ length: 12 }, worker)]);
    agent.destroy();
    const dupes = [...posts.values()].filter((n) => n > 1).length;
    t.diagnostic(
      `HTTP chaos ${SECONDS} s, ${kills} kills: ${JSON.stringify(c)}; duplicated POSTs ${dupes}; fds ${fdsBefore} -> ${openFds()}`,
    );
    assert.ok(c.getOk > 50, 'load ran');
    if (c.getErrBeforeBody > 0) {
      // What keepwire logged for them: the attempts and why each ended.
      for (const { seed, saw } of c.errors) {
        t.diagnostic(`GET seed=${seed}: ${saw}`);
        const path = `/data?seed=${seed}`;
        for (const r of lb.records)
          if ('path' in r && r.path === path) t.diagnostic(`  ${JSON.stringify(r)}`);
      }
      const reasons = new Map<string, number>();
      for (const r of lb.records) {
        const k = `${r.msg} ${(r as { reason?: string }).reason ?? ''} ${(r as { status?: number }).status ?? ''}`;
        reasons.set(k, (reasons.get(k) ?? 0) + 1);
      }
      t.diagnostic(`records: ${JSON.stringify([...reasons])}`);
    }
    assert.equal(
      c.getErrBeforeBody,
      0,
      'GETs that failed before any response byte (another server could answer)',
    );
    assert.equal(c.getAltered, 0, 'bodies complete-looking but altered or short');
    assert.equal(dupes, 0, 'POSTs that reached a backend twice');
    await within(
      (async () => {
        while (lb.runtime.sessionCount > 0 || openFds() > fdsBefore + 4) await sleep(50);
      })(),
      10_000,
      `fds back near ${fdsBefore}`,
    );
  } finally {
    agent.destroy();
    await lb.close();
    await a.kill();
    await b.kill();
  }
});

// ---- stream --------------------------------------------------------------------

/** A backend that reads an 8-byte request (seed, size) and streams bytesFor(seed, size), then FIN. */
async function streamBackend(): Promise<Backend> {
  let srv: Server;
  const sockets = new Set<Socket>();
  const make = () => {
    srv = createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
      let head = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        if (head.length >= 8) return;
        head = Buffer.concat([head, d]);
        if (head.length < 8) return;
        const data = bytesFor(head.readUInt32BE(0), head.readUInt32BE(4));
        let off = 0;
        const pump = () => {
          while (off < data.length) {
            const chunk = data.subarray(off, off + 64 * 1024);
            off += chunk.length;
            if (!s.write(chunk)) {
              s.once('drain', pump);
              return;
            }
          }
          s.end();
        };
        pump();
      });
    });
    srv.on('error', () => {});
  };
  make();
  await new Promise<void>((resolve) => srv!.listen(0, '127.0.0.1', resolve));
  const port = (srv!.address() as AddressInfo).port;
  return {
    port,
    async kill() {
      const closed = new Promise<void>((resolve) => srv.close(() => resolve()));
      for (const s of sockets) s.resetAndDestroy();
      await closed;
    },
    async restart() {
      make();
      await new Promise<void>((resolve) => srv.listen(port, '127.0.0.1', resolve));
    },
  };
}

interface StreamCounts {
  whole: number;
  reset: number;
  refused: number;
  altered: number;
  truncatedClean: number;
  hung: number;
}

function transfer(port: number, seed: number, size: number, c: StreamCounts): Promise<void> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    const parts: Buffer[] = [];
    let got = 0;
    let done = false;
    const finish = (kind: keyof StreamCounts) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      c[kind]++;
      s.destroy();
      resolve();
    };
    const timer = setTimeout(() => finish('hung'), 30_000);
    s.on('connect', () => {
      const head = Buffer.alloc(8);
      head.writeUInt32BE(seed, 0);
      head.writeUInt32BE(size, 4);
      s.write(head);
    });
    s.on('data', (d: Buffer) => {
      parts.push(d);
      got += d.length;
    });
    s.on('error', (e: NodeJS.ErrnoException) =>
      finish(got === 0 && e.code === 'ECONNREFUSED' ? 'refused' : 'reset'),
    );
    s.on('end', () => {
      // libuv reports data then RST as an end: a zero-byte write tells them apart.
      s.write(Buffer.alloc(0), (e) => {
        if (e) return finish('reset');
        if (got === 0 && size > 0) return finish('reset');
        if (got !== size) return finish('truncatedClean');
        finish(sha(parts) === sha(bytesFor(seed, size)) ? 'whole' : 'altered');
      });
    });
  });
}

test(`chaos, stream: ${SECONDS} s of checksummed transfers while upstreams are killed mid-transfer`, async (t) => {
  const a = await streamBackend();
  const b = await streamBackend();
  const lb = await start(
    config(
      [streamServer({ proxyPass: { kind: 'group', name: 'g' } })],
      [
        group('g', [
          streamUpstream(a.port, { failTimeoutMs: 500 }),
          streamUpstream(b.port, { failTimeoutMs: 500 }),
        ]),
      ],
    ),
  );
  const fdsBefore = openFds();
  const c: StreamCounts = { whole: 0, reset: 0, refused: 0, altered: 0, truncatedClean: 0, hung: 0 };
  const deadline = Date.now() + SECONDS * 1000;
  let kills = 0;
  try {
    const chaos = (async () => {
      for (let i = 0; Date.now() < deadline - 1000; i++) {
        await sleep(500);
        const victim = i % 2 === 0 ? a : b;
        await victim.kill();
        kills++;
        await sleep(150);
        await victim.restart();
      }
    })();
    let seed = randomBytes(2).readUInt16BE(0);
    const worker = async () => {
      while (Date.now() < deadline) {
        seed++;
        await transfer(lb.ports[0]!, seed, 256 * 1024 + (seed % 9) * 256 * 1024, c);
      }
    };
    await Promise.all([chaos, ...Array.from({ length: 8 }, worker)]);
    t.diagnostic(
      `stream chaos ${SECONDS} s, ${kills} kills: ${JSON.stringify(c)}; fds ${fdsBefore} -> ${openFds()}`,
    );
    assert.ok(c.whole > 10, 'load ran');
    assert.equal(c.altered, 0, 'altered transfers');
    assert.equal(c.truncatedClean, 0, 'transfers cut short but ended as if complete');
    assert.equal(c.hung, 0, 'hung transfers');
    await within(
      (async () => {
        while (lb.runtime.sessionCount > 0 || openFds() > fdsBefore + 4) await sleep(50);
      })(),
      10_000,
      `sessions ended and fds back near ${fdsBefore}`,
    );
  } finally {
    await lb.close();
    await a.kill();
    await b.kill();
  }
});
