/**
 * Upgrade request smuggling (issue 22, defect 2). Until the upstream answers
 * 101 an Upgrade request is an ordinary request (RFC 9110 §7.8): its body is
 * forwarded with its own framing and under client_max_body_size, and bytes
 * pipelined after it are held, not written upstream; if the upstream refuses
 * the upgrade they are parsed as the next request, so access rules
 * (`location /admin { return 403; }`) hold for them. Only bytes after a 101
 * belong to the tunnel. The backend records every byte it receives, which
 * proves what crossed.
 */
import assert from 'node:assert/strict';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import {
  httpConfig,
  httpGroup,
  httpServer,
  location,
  passToGroup,
  RawClient,
  server,
  sleep,
  startHttp,
} from './fixtures.js';

interface Recording {
  port: number;
  /** Every byte received, all connections in order of arrival. */
  bytes(): string;
  /** Requests the backend framed (by Content-Length or chunked). */
  heads: string[];
  bodies: string[];
  close(): Promise<void>;
}

const REFUSAL = 'HTTP/1.1 426 Upgrade Required\r\nContent-Length: 5\r\n\r\nnope\n';

/**
 * A backend that records every byte and frames requests as an HTTP/1.1
 * server would (Content-Length or chunked), answering each with `answer`.
 */
async function recordingBackend(answer: (head: string, socket: Socket) => void): Promise<Recording> {
  const received: Buffer[] = [];
  const heads: string[] = [];
  const bodies: string[] = [];
  const sockets = new Set<Socket>();
  const srv = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    let buf = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      received.push(d);
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        let at = end + 4;
        let body = '';
        const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
          const fin = buf.indexOf('\r\n0\r\n\r\n', at - 2);
          if (fin < 0) return;
          body = buf.subarray(at, fin + 7).toString('latin1');
          at = fin + 7;
        } else if (cl) {
          const n = Number(cl[1]);
          if (buf.length < at + n) return;
          body = buf.subarray(at, at + n).toString('latin1');
          at += n;
        }
        buf = buf.subarray(at);
        heads.push(head);
        bodies.push(body);
        answer(head, socket);
      }
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    port: (srv.address() as AddressInfo).port,
    bytes: () => Buffer.concat(received).toString('latin1'),
    heads,
    bodies,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        srv.close(() => resolve());
      }),
  };
}

async function proxyTo(port: number) {
  return startHttp(
    httpConfig(
      [
        httpServer({
          clientMaxBodySize: 1024 * 1024,
          locations: [
            location({ prefix: '/admin', returnDirective: { code: 403, text: 'admin is closed\n' } }),
            location({ prefix: '/', proxyPass: passToGroup('app') }),
          ],
        }),
      ],
      [httpGroup('app', [server(port)])],
    ),
  );
}

const UPGRADE_HEAD = 'GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n';
const ADMIN = 'GET /admin HTTP/1.1\r\nHost: t\r\n\r\n';

test('a request pipelined after a refused Upgrade is not sent upstream: it is parsed as the next request and its access rule holds', async () => {
  const backend = await recordingBackend((_head, s) => s.write(REFUSAL));
  const lb = await proxyTo(backend.port);
  try {
    const c = await RawClient.open(lb.port);
    c.send(`${UPGRADE_HEAD}\r\n${ADMIN}`);
    const first = await c.response({ timeoutMs: 5_000 });
    assert.equal(first.status, 426);
    assert.equal(first.body.toString(), 'nope\n');
    const second = await c.response({ timeoutMs: 5_000 });
    assert.equal(second.status, 403);
    assert.equal(second.body.toString(), 'admin is closed\n');
    c.close();
    assert.equal(backend.heads.length, 1);
    assert.doesNotMatch(backend.bytes(), /admin/, 'nothing of the pipelined request reached the backend');
  } finally {
    await lb.close();
    await backend.close();
  }
});

test('an Upgrade request body is forwarded with its own Content-Length: the backend frames one request', async () => {
  const backend = await recordingBackend((_head, s) => s.write(REFUSAL));
  const lb = await proxyTo(backend.port);
  try {
    const c = await RawClient.open(lb.port);
    c.send(`${UPGRADE_HEAD}Content-Length: ${ADMIN.length}\r\n\r\n${ADMIN}`);
    const res = await c.response({ timeoutMs: 5_000 });
    assert.equal(res.status, 426);
    // Anything more the backend parsed would arrive as a second answer; give it a moment.
    await sleep(200);
    c.close();
    assert.equal(backend.heads.length, 1, 'one request framed by the backend');
    assert.match(backend.heads[0]!, new RegExp(`\\r\\nContent-Length: ${ADMIN.length}(\\r\\n|$)`, 'i'));
    assert.equal(backend.bodies[0], ADMIN, 'the body arrived as the body');
  } finally {
    await lb.close();
    await backend.close();
  }
});

test('a chunked Upgrade request body is forwarded chunked: the backend frames one request', async () => {
  const backend = await recordingBackend((_head, s) => s.write(REFUSAL));
  const lb = await proxyTo(backend.port);
  try {
    const c = await RawClient.open(lb.port);
    c.send(
      `${UPGRADE_HEAD}Transfer-Encoding: chunked\r\n\r\n${ADMIN.length.toString(16)}\r\n${ADMIN}\r\n0\r\n\r\n`,
    );
    const res = await c.response({ timeoutMs: 5_000 });
    assert.equal(res.status, 426);
    await sleep(200);
    c.close();
    assert.equal(backend.heads.length, 1, 'one request framed by the backend');
    assert.match(backend.heads[0]!, /\r\nTransfer-Encoding: chunked/i);
    assert.ok(backend.bodies[0]!.includes(ADMIN), 'the body arrived inside the chunked framing');
  } finally {
    await lb.close();
    await backend.close();
  }
});

test('an Upgrade request body over client_max_body_size gets 413 and nothing reaches the backend', async () => {
  const backend = await recordingBackend((_head, s) => s.write(REFUSAL));
  const lb = await proxyTo(backend.port);
  try {
    const c = await RawClient.open(lb.port);
    c.send(`${UPGRADE_HEAD}Content-Length: 99999999\r\n\r\n${ADMIN}`);
    const res = await c.response({ timeoutMs: 5_000 });
    assert.equal(res.status, 413);
    c.close();
    await sleep(200);
    assert.equal(backend.bytes(), '', 'no byte reached the backend');
  } finally {
    await lb.close();
    await backend.close();
  }
});

test('bytes sent after an Upgrade request cross only after the 101, then belong to the tunnel', async () => {
  let beforeSwitch: string | undefined;
  const backend = await recordingBackend((_head, s) => {
    // The 101 comes late: what arrived until then is all keepwire sent before it.
    setTimeout(() => {
      beforeSwitch = backend.bytes();
      s.removeAllListeners('data');
      s.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
      s.on('data', (d: Buffer) => s.write(d));
    }, 300);
  });
  const lb = await proxyTo(backend.port);
  try {
    const c = await RawClient.open(lb.port);
    c.send(`${UPGRADE_HEAD}\r\nHELLO ${ADMIN}`);
    const res = await c.response({ timeoutMs: 5_000 });
    assert.equal(res.status, 101);
    const deadline = Date.now() + 5_000;
    const echoed = () => (c as unknown as { buf: Buffer }).buf.toString('latin1');
    while (!echoed().includes(`HELLO ${ADMIN}`) && Date.now() < deadline) await sleep(10);
    assert.equal(echoed(), `HELLO ${ADMIN}`, 'the held bytes went into the tunnel after the 101');
    assert.ok(beforeSwitch !== undefined);
    assert.doesNotMatch(beforeSwitch, /HELLO/, 'nothing past the request head crossed before the 101');
    assert.equal(backend.heads.length, 1);
    c.close();
  } finally {
    await lb.close();
    await backend.close();
  }
});
