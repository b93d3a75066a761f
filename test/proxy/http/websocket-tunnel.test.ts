/**
 * WebSocket through keepwire: the handshake is passed with its Upgrade and
 * Connection: upgrade, frames are echoed through the tunnel, both tunnel
 * sockets carry their TCP keepalive, and proxy_read_timeout is the tunnel's
 * idle timeout. The WebSocket side is written by hand (RFC 6455 §1.3, §5.2).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { readKeepalive } from '../../../src/keepalive/socket.js';
import { UpgradeTunnel } from '../../../src/proxy/http/streaming.js';
import {
  httpConfig,
  httpGroup,
  httpServer,
  listen,
  location,
  passToGroup,
  RawClient,
  server,
  sleep,
  startHttp,
} from './fixtures.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** One frame, masked when from a client; payloads under 64 KiB. */
function frame(payload: Buffer, mask: boolean): Buffer {
  const len = payload.length;
  const head =
    len < 126
      ? Buffer.from([0x82, (mask ? 0x80 : 0) | len])
      : Buffer.from([0x82, (mask ? 0x80 : 0) | 126, len >> 8, len & 255]);
  if (!mask) return Buffer.concat([head, payload]);
  const key = randomBytes(4);
  const masked = Buffer.from(payload.map((b, i) => b ^ key[i % 4]!));
  return Buffer.concat([head, key, masked]);
}

/** Parses complete frames off `buf`; returns payloads and what is left. */
function unframe(buf: Buffer): { payloads: Buffer[]; rest: Buffer } {
  const payloads: Buffer[] = [];
  let at = 0;
  for (;;) {
    if (buf.length - at < 2) break;
    const masked = (buf[at + 1]! & 0x80) !== 0;
    let len = buf[at + 1]! & 0x7f;
    let off = at + 2;
    if (len === 126) {
      if (buf.length - at < 4) break;
      len = buf.readUInt16BE(at + 2);
      off = at + 4;
    }
    const keyLen = masked ? 4 : 0;
    if (buf.length < off + keyLen + len) break;
    const key = buf.subarray(off, off + keyLen);
    const data: Buffer = Buffer.from(buf.subarray(off + keyLen, off + keyLen + len));
    if (masked) for (let i = 0; i < data.length; i++) data[i] = data[i]! ^ key[i % 4]!;
    payloads.push(data);
    at = off + keyLen + len;
  }
  return { payloads, rest: buf.subarray(at) };
}

async function wsEchoServer() {
  const sockets: Socket[] = [];
  const srv = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => {});
    let buf: Buffer = Buffer.alloc(0);
    let open = false;
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!open) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        buf = buf.subarray(end + 4);
        const key = /sec-websocket-key:\s*(\S+)/i.exec(head)?.[1] ?? '';
        const accept = createHash('sha1')
          .update(key + GUID)
          .digest('base64');
        const ok = /\r\nupgrade:\s*websocket/i.test(head) && /\r\nconnection:[^\r]*upgrade/i.test(head);
        if (!ok) {
          socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
          return;
        }
        socket.write(
          `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
        );
        open = true;
      }
      const { payloads, rest } = unframe(buf);
      buf = rest;
      for (const p of payloads) socket.write(frame(p, false));
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    port: (srv.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        srv.close(() => resolve());
      }),
  };
}

async function handshake(port: number) {
  const c = await RawClient.open(port);
  const key = randomBytes(16).toString('base64');
  c.send(
    `GET /chat HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  const res = await c.response({ timeoutMs: 5_000 });
  return { c, res, key };
}

test('WebSocket echo through the tunnel, with keepalive on both tunnel sockets', async () => {
  const ws = await wsEchoServer();
  const lb = await startHttp(
    httpConfig(
      [
        httpServer({
          listens: [listen(0, { enable: true, idle: 7, interval: 3, count: 4 })],
          locations: [
            location({
              proxyPass: passToGroup('app'),
              proxySocketKeepalive: { enable: true, idle: 11, interval: 2, count: 5 },
            }),
          ],
        }),
      ],
      [httpGroup('app', [server(ws.port)])],
    ),
  );
  try {
    const { c, res, key } = await handshake(lb.port);
    assert.equal(res.status, 101);
    assert.equal(
      res.headers['sec-websocket-accept'],
      createHash('sha1')
        .update(key + GUID)
        .digest('base64'),
    );
    const sent: Buffer[] = [];
    let received: Buffer[] = [];
    let buf: Buffer = Buffer.alloc(0);
    c.socket.removeAllListeners('data');
    c.socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const { payloads, rest } = unframe(buf);
      buf = rest;
      received = received.concat(payloads);
    });
    for (let i = 0; i < 50; i++) {
      const p = randomBytes(1 + ((i * 977) % 60_000));
      sent.push(p);
      c.send(frame(p, true));
    }
    const deadline = Date.now() + 10_000;
    while (received.length < sent.length && Date.now() < deadline) await sleep(10);
    assert.equal(received.length, sent.length);
    for (let i = 0; i < sent.length; i++) assert.ok(received[i]!.equals(sent[i]!), `frame ${i}`);

    const tunnels = [...lb.runtime.httpGeneration!.frontends[0]!.tunnels];
    assert.equal(tunnels.length, 1);
    const tunnel = tunnels[0] as UpgradeTunnel;
    assert.ok(tunnel instanceof UpgradeTunnel);
    const ck = readKeepalive(tunnel.client);
    assert.deepEqual([ck.enabled, ck.idle, ck.interval, ck.count], [true, 7, 3, 4]);
    const uk = readKeepalive(tunnel.upstream!);
    assert.deepEqual([uk.enabled, uk.idle, uk.interval, uk.count], [true, 11, 2, 5]);
    c.close();
    const [log] = await lb.waitForRequests(1);
    assert.equal(log?.status, 101);
    assert.equal(log?.reason, 'client_closed');
  } finally {
    await lb.close();
    await ws.close();
  }
});

test('proxy_read_timeout is the idle timeout of the tunnel', async () => {
  const ws = await wsEchoServer();
  const lb = await startHttp(
    httpConfig(
      [httpServer({ locations: [location({ proxyPass: passToGroup('app'), proxyReadTimeoutMs: 500 })] })],
      [httpGroup('app', [server(ws.port)])],
    ),
  );
  try {
    const { c, res } = await handshake(lb.port);
    assert.equal(res.status, 101);
    // Traffic within the timeout keeps the tunnel open past it.
    for (let i = 0; i < 4; i++) {
      await sleep(250);
      c.send(frame(Buffer.from('ping'), true));
    }
    assert.equal(c.closed, false, 'active tunnel still open after 1 s');
    const t0 = Date.now();
    await c.waitClosed(5_000);
    const idle = Date.now() - t0;
    assert.ok(idle >= 300 && idle < 3_000, `closed after ${idle} ms idle`);
    const [log] = await lb.waitForRequests(1);
    assert.match(String(log?.detail), /proxy_read_timeout/);
  } finally {
    await lb.close();
    await ws.close();
  }
});
