/**
 * Client and upstream reads reach the HTTP proxy as views of one shared
 * read buffer (src/proxy/reads.ts `handView`/`readsViewTo`), which the next
 * read on any connection overwrites. Whatever outlives its read must be
 * copied first: a large body a slow client has not taken yet (held by
 * libuv for a partial write), a response head split across upstream reads,
 * an incomplete request head, a pipelined request waiting for the one before
 * it. Each test makes other traffic pass through the proxy exactly while
 * those bytes wait, so a kept view would be overwritten: the bytes would
 * come out corrupted (a wrong checksum, a 400, a wrong path).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { fdOf, setIntOption, sockoptConstants } from '../../../src/kernel/index.js';
import { within } from '../../support.js';
import { httpConfig, httpGroup, httpServer, type RunningHttp, server, startHttp } from './fixtures.js';

const BIG = 8 * 1024 * 1024;
/** Linux's SO_RCVBUF. */
const SO_RCVBUF = 8;

/** Bytes that repeat with no period near 64 KiB, so an overwritten region differs. */
function pattern(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >>> 13)) & 0xff;
  return b;
}
const BIG_BODY = pattern(BIG);
const BIG_SHA = createHash('sha256').update(BIG_BODY).digest('hex');
const FILL = Buffer.alloc(256 * 1024, 0xee);

/** What the upstream does with a request, by path; `split` heads wait for the test between pieces. */
interface Upstream {
  port: number;
  /** Resolved by the test to let a held response go on. */
  gates: Map<string, () => void>;
  close(): Promise<void>;
}

async function upstream(): Promise<Upstream> {
  const gates = new Map<string, () => void>();
  const gate = (name: string) => new Promise<void>((resolve) => gates.set(name, resolve));
  const sockets = new Set<Socket>();
  const srv = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.setNoDelay(true);
    let buf = '';
    let busy = false;
    const next = async (): Promise<void> => {
      while (!busy) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.slice(0, end);
        const len = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + len) return;
        const body = buf.slice(end + 4, end + 4 + len);
        buf = buf.slice(end + 4 + len);
        const path = head.split(' ')[1] ?? '';
        busy = true;
        if (path === '/big') {
          s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${BIG}\r\n\r\n`);
          s.write(BIG_BODY);
        } else if (path === '/split') {
          const text = 'HTTP/1.1 200 OK\r\nX-Split: one-two-three\r\nContent-Length: 5\r\n\r\nsplit';
          // Three writes, each after the test has run other traffic through the proxy.
          s.write(text.slice(0, 20));
          await gate('split1');
          s.write(text.slice(20, 40));
          await gate('split2');
          s.write(text.slice(40));
        } else if (path === '/fill') {
          // Reads that cover the whole shared buffer (64 KiB), not only its start.
          s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${FILL.length}\r\n\r\n`);
          s.write(FILL);
        } else if (path === '/held') {
          await gate('held');
          s.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nheld');
        } else {
          const answer = `${path} ${createHash('sha256').update(body, 'latin1').digest('hex').slice(0, 16)}`;
          s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${answer.length}\r\n\r\n${answer}`);
        }
        busy = false;
      }
    };
    s.on('data', (d) => {
      buf += d.toString('latin1');
      void next();
    });
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  return {
    port: (srv.address() as AddressInfo).port,
    gates,
    async close() {
      for (const s of sockets) s.destroy();
      srv.close();
      await once(srv, 'close');
    },
  };
}

/** Waits (bounded) for the upstream to reach a gate, then opens it. */
async function open(up: Upstream, name: string): Promise<void> {
  await within(
    (async () => {
      while (!up.gates.has(name)) await new Promise((r) => setImmediate(r));
    })(),
    10_000,
    `upstream waiting at ${name}`,
  );
  const go = up.gates.get(name)!;
  up.gates.delete(name);
  go();
}

/** A keep-alive client reading whole responses (Content-Length framed). */
class Client {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  readonly socket: Socket;
  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      for (const w of this.waiters.splice(0)) w();
    });
    this.socket.on('error', () => {});
  }
  /** The next response's status line and body. */
  async response(timeoutMs = 20_000): Promise<{ status: string; head: string; body: Buffer }> {
    return within(
      (async () => {
        for (;;) {
          const end = this.buf.indexOf('\r\n\r\n');
          if (end >= 0) {
            const head = this.buf.subarray(0, end).toString('latin1');
            const len = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
            if (this.buf.length >= end + 4 + len) {
              const body = Buffer.from(this.buf.subarray(end + 4, end + 4 + len));
              this.buf = this.buf.subarray(end + 4 + len);
              return { status: head.split('\r\n')[0]!, head, body };
            }
          }
          await new Promise<void>((r) => this.waiters.push(r));
        }
      })(),
      timeoutMs,
      'a response',
    );
  }
  async get(path: string): Promise<string> {
    this.socket.write(`GET ${path} HTTP/1.1\r\nHost: test\r\n\r\n`);
    const r = await this.response();
    assert.match(r.status, /^HTTP\/1\.1 200/);
    return r.body.toString('latin1');
  }
  close(): void {
    this.socket.destroy();
  }
}

/** Requests on another connection, each a read on both of the proxy's legs. */
async function otherTraffic(port: number, n: number): Promise<void> {
  const c = new Client(port);
  try {
    for (let i = 0; i < n; i++) assert.match(await c.get(`/other-${i}`), new RegExp(`^/other-${i} `));
  } finally {
    c.close();
  }
}

describe('HTTP proxy: bytes kept past a read are not views of the shared read buffer', () => {
  let up: Upstream;
  let proxy: RunningHttp;
  before(async () => {
    up = await upstream();
    proxy = await startHttp(httpConfig([httpServer()], [httpGroup('app', [server(up.port)])]));
  });
  after(async () => {
    await proxy?.close();
    await up?.close();
  });

  it('a large body a slow client takes late comes out intact while other connections read', async () => {
    // The client takes one read at a time and lets another connection's
    // request through the proxy between two: the proxy's writes to it go
    // partial, libuv holds the unwritten bytes, and every other request
    // reads into the shared buffer meanwhile.
    const slow = connect(proxy.port, '127.0.0.1');
    slow.on('error', () => {});
    slow.pause();
    await once(slow, 'connect');
    // A small receive buffer (autotuning off): with tcp_rmem's 32 MiB maximum
    // the whole body would fit in the kernel and no write of the proxy's
    // would ever be partial.
    setIntOption(fdOf(slow), sockoptConstants().SOL_SOCKET, SO_RCVBUF, 16 * 1024, 'SO_RCVBUF');
    const parts: Buffer[] = [];
    let got = 0;
    let wake: (() => void) | undefined;
    slow.on('data', (d: Buffer) => {
      slow.pause();
      parts.push(d);
      got += d.length;
      wake?.();
    });
    const other = new Client(proxy.port);
    try {
      slow.write('GET /big HTTP/1.1\r\nHost: test\r\n\r\n');
      let headBytes = -1;
      await within(
        (async () => {
          while (headBytes < 0 || got < headBytes + BIG) {
            const before = got;
            slow.resume();
            if (got === before) await new Promise<void>((r) => (wake = r));
            if (headBytes < 0) {
              const end = Buffer.concat(parts).indexOf('\r\n\r\n');
              if (end >= 0) headBytes = end + 4;
            }
            assert.equal((await other.get('/fill')).length, FILL.length);
          }
        })(),
        120_000,
        'the large response',
      );
      const all = Buffer.concat(parts);
      assert.match(all.subarray(0, 15).toString('latin1'), /^HTTP\/1\.1 200/);
      const body = all.subarray(headBytes);
      assert.equal(body.length, BIG);
      assert.equal(
        createHash('sha256').update(body).digest('hex'),
        BIG_SHA,
        'body bytes changed in the proxy',
      );
    } finally {
      slow.destroy();
      other.close();
    }
  });

  it('a response head split across upstream reads, with other reads between its pieces', async () => {
    const c = new Client(proxy.port);
    try {
      c.socket.write('GET /split HTTP/1.1\r\nHost: test\r\n\r\n');
      await open(up, 'split1');
      await otherTraffic(proxy.port, 5);
      await open(up, 'split2');
      await otherTraffic(proxy.port, 5);
      const r = await c.response();
      assert.match(r.status, /^HTTP\/1\.1 200/);
      assert.match(r.head, /\r\nX-Split: one-two-three/i);
      assert.equal(r.body.toString(), 'split');
    } finally {
      c.close();
    }
  });

  it('an incomplete request head, and a body, completed after other connections read', async () => {
    const c = new Client(proxy.port);
    try {
      const body = pattern(3000).toString('latin1');
      const text = `POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
      const expected = createHash('sha256').update(body, 'latin1').digest('hex').slice(0, 16);
      // A piece ending inside the head, then one with the rest of the head and part of the body.
      c.socket.write(text.slice(0, 30), 'latin1');
      await otherTraffic(proxy.port, 5);
      c.socket.write(text.slice(30, 1000), 'latin1');
      await otherTraffic(proxy.port, 5);
      c.socket.write(text.slice(1000), 'latin1');
      const r = await c.response();
      assert.match(r.status, /^HTTP\/1\.1 200/);
      assert.equal(r.body.toString(), `/upload ${expected}`);
    } finally {
      c.close();
    }
  });

  it('a pipelined request waits for the one before it while other connections read', async () => {
    const c = new Client(proxy.port);
    try {
      // Both requests in one write: the second waits in the proxy while the first is answered.
      c.socket.write(
        'GET /held HTTP/1.1\r\nHost: test\r\n\r\nGET /pipelined-second HTTP/1.1\r\nHost: test\r\n\r\n',
      );
      await within(
        (async () => {
          while (!up.gates.has('held')) await new Promise((r) => setImmediate(r));
        })(),
        10_000,
        'the first request at the upstream',
      );
      await otherTraffic(proxy.port, 10);
      await open(up, 'held');
      const first = await c.response();
      assert.equal(first.body.toString(), 'held');
      const second = await c.response();
      assert.match(second.status, /^HTTP\/1\.1 200/);
      assert.match(second.body.toString(), /^\/pipelined-second /);
    } finally {
      c.close();
    }
  });
});
