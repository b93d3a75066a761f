/**
 * http2_ping_interval / http2_ping_timeout (keepwire's downstream PING
 * keepalive): a quiet connection gets a PING every interval (a real client,
 * Node's http2, answers them and keeps its connection), and a client that
 * never answers (a raw HTTP/2 speaker: preface, SETTINGS, its ACK, then
 * silence) is closed with GOAWAY once the timeout passes after the PING,
 * with the reason logged.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { closedPort } from '../fixtures.js';
import type { RunningHttp } from '../http/fixtures.js';
import { FRAME, frame, h2request, h2session, RawH2, startFromText } from './fixtures.js';

describe('http2_ping_interval 1s; http2_ping_timeout 1s', () => {
  let up: Server;
  let lb: RunningHttp;
  let port: number;

  before(async () => {
    up = createServer((req, res) => {
      req.resume();
      res.end('ok');
    });
    await new Promise<void>((resolve) => up.listen(0, '127.0.0.1', resolve));
    port = await closedPort();
    lb = await startFromText(`
      http {
        server {
          listen 127.0.0.1:${port};
          http2 on;
          http2_ping_interval 1s;
          http2_ping_timeout 1s;
          location / { proxy_pass http://127.0.0.1:${(up.address() as AddressInfo).port}; }
        }
      }`);
  });

  after(async () => {
    await lb?.close();
    await new Promise((resolve) => up?.close(resolve));
  });

  it('pings a quiet client every interval; a client that answers keeps its connection', async () => {
    const s = await h2session(port);
    try {
      const t0 = Date.now();
      const at: number[] = [];
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${at.length} PINGs in 15 s`)), 15_000);
        s.on('ping', () => {
          at.push(Date.now());
          if (at.length === 3) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      assert.ok(at[0]! - t0 >= 900, `first PING ${at[0]! - t0} ms after connect, not before the interval`);
      for (let i = 1; i < at.length; i++) {
        const gap = at[i]! - at[i - 1]!;
        // The interval, never sooner; at most one interval late (frames the proxy cannot see are
        // only noticed when its timer looks), with room for a loaded machine.
        assert.ok(gap >= 900 && gap < 4_000, `PING gap ${gap} ms`);
      }
      assert.equal(s.closed || s.destroyed, false);
      assert.equal((await h2request(s, { ':path': '/alive' })).status, 200);
      assert.equal(lb.records.filter((r) => r.msg === 'http2_ping_timeout').length, 0);
    } finally {
      s.close();
    }
  });

  it('closes a connection whose client never acknowledges the PING, after the timeout, and logs why', async () => {
    const c = await RawH2.open(port);
    try {
      c.hello();
      await c.waitFor((f) => f.type === FRAME.SETTINGS && (f.flags & 1) === 0, 5_000, 'server SETTINGS');
      c.write(frame(FRAME.SETTINGS, 1, 0));
      const t0 = Date.now();
      await c.waitFor((f) => f.type === FRAME.PING && (f.flags & 1) === 0, 10_000, 'a PING from keepwire');
      const pingAt = Date.now();
      assert.ok(pingAt - t0 >= 900, `PING ${pingAt - t0} ms after the client went quiet`);
      await c.waitClosed(10_000);
      const closedAfter = Date.now() - pingAt;
      assert.ok(
        closedAfter >= 900 && closedAfter < 6_000,
        `closed ${closedAfter} ms after the PING (timeout 1s)`,
      );
      const goaway = c.frames.find((f) => f.type === FRAME.GOAWAY);
      assert.ok(goaway, 'GOAWAY before the close');
      const line = lb.records.find((r) => r.msg === 'http2_ping_timeout');
      assert.ok(line, 'http2_ping_timeout logged');
      assert.match(String((line as { detail: string }).detail), /no PING ACK within http2_ping_timeout/);
    } finally {
      c.close();
    }
  });
});
