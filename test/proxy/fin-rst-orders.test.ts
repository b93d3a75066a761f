/**
 * FIN, RST and errors in every order on both legs of a stream session:
 * every session must end, write its one log record and give back its
 * sockets and its connection slot. Node refuses `resetAndDestroy()` on a
 * socket whose FIN is being sent (libuv's uv_tcp_close_reset returns EINVAL
 * during a shutdown) and then never closes its handle: a session whose
 * upstream sent FIN then RST back to back hung forever, unlogged, its fd
 * leaked. Bytes sent before a FIN arrive whole, before that FIN; a reset
 * before any FIN reaches the other side as a reset, never as a clean end.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import type { Socket } from 'node:net';
import { HandleSession } from '../../src/proxy/stream-handles.js';
import {
  backend,
  config,
  dial,
  onBothPaths,
  passTo,
  sha256,
  sleep,
  start,
  streamServer,
  within,
} from './fixtures.js';

/** Large enough to be in flight when the reset comes. */
const DATA = randomBytes(256 * 1024);
/** Small enough for the kernel to send it and the FIN at once, so the FIN precedes the RST on the wire. */
const SMALL = randomBytes(16 * 1024);

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Sends a FIN, then a RST as soon as the FIN is handed to the kernel (Node refuses a reset while the FIN is in flight). */
function finThenReset(s: Socket): void {
  s.end();
  s.once('finish', () => s.resetAndDestroy());
}

interface Seen {
  bytes: Buffer[];
  how: Promise<string>;
}

/**
 * What one side sees: its bytes and how the stream ended ('end', an error
 * code). Bounded. libuv reports data then RST as an 'end' (see
 * resetBehindEnd in src/proxy/writes.ts), so an 'end' is confirmed with a
 * zero-byte write, which fails with ECONNRESET only after a reset, as a
 * blocking read() in any other client would.
 */
function watch(s: Socket): Seen {
  const bytes: Buffer[] = [];
  s.on('data', (d: Buffer) => bytes.push(d));
  const how = within(
    new Promise<string>((resolve) => {
      s.once('end', () => {
        if (s.writableEnded) resolve('end');
        else
          s.write(Buffer.alloc(0), (e?: NodeJS.ErrnoException | null) =>
            resolve(e ? (e.code ?? 'error') : 'end'),
          );
      });
      s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      s.once('close', () => resolve('close'));
    }),
    10_000,
    'the socket to end',
  );
  return { bytes, how };
}

type Act = (ctx: { client: Socket; upstream: Socket }) => void | Promise<void>;

interface Case {
  name: string;
  act: Act;
  /** What the client must see: a clean end after the whole SMALL, or a reset. */
  client?: 'whole-then-end' | 'reset' | 'reset-or-whole';
}

const cases: Case[] = [
  {
    name: 'upstream: data, FIN, RST back to back',
    act: ({ upstream }) => {
      upstream.write(SMALL);
      finThenReset(upstream);
    },
    client: 'whole-then-end',
  },
  {
    name: 'upstream: data, RST (no FIN)',
    act: ({ upstream }) => {
      upstream.write(DATA, () => upstream.resetAndDestroy());
    },
    client: 'reset',
  },
  {
    name: 'upstream: data, FIN, RST with data still in flight (the FIN never leaves)',
    act: ({ upstream }) => {
      upstream.write(DATA);
      finThenReset(upstream);
    },
    client: 'reset',
  },
  {
    name: 'upstream FIN, then client data, then upstream RST',
    act: async ({ client, upstream }) => {
      upstream.end();
      await sleep(50);
      client.write('more');
      await sleep(50);
      upstream.resetAndDestroy();
    },
  },
  {
    name: 'client: data, FIN, RST back to back',
    act: ({ client }) => {
      client.write(DATA);
      finThenReset(client);
    },
  },
  {
    name: 'client FIN, upstream data, FIN, RST',
    act: async ({ client, upstream }) => {
      client.end();
      await sleep(50);
      upstream.write(SMALL);
      finThenReset(upstream);
    },
    client: 'whole-then-end',
  },
  {
    name: 'both FIN then both RST at once',
    act: ({ client, upstream }) => {
      finThenReset(client);
      finThenReset(upstream);
    },
  },
  {
    name: 'upstream FIN, client RST',
    act: async ({ client, upstream }) => {
      upstream.end();
      await sleep(50);
      client.resetAndDestroy();
    },
  },
  {
    name: 'client FIN, upstream RST',
    act: async ({ client, upstream }) => {
      client.end();
      await sleep(50);
      upstream.resetAndDestroy();
    },
  },
];

for (const c of cases) {
  onBothPaths(`${c.name}: the session ends, is logged and frees its fd and slot`, async () => {
    const accepted: Socket[] = [];
    const peer = await backend((s) => {
      accepted.push(s);
      s.on('data', () => {});
    });
    const lb = await start(config([streamServer({ proxyPass: passTo(peer.port) })]));
    try {
      // Warm up once so lazily opened fds (the event loop's, DNS) are not counted.
      const warm = await dial(lb.ports[0]!);
      warm.write('x');
      while (accepted.length === 0) await sleep(5);
      accepted[0]!.end();
      warm.end();
      await lb.waitForRecords(1);
      await within(
        (async () => {
          while (lb.runtime.sessionCount > 0 || !warm.destroyed) await sleep(10);
        })(),
        5000,
        'warm-up session to close',
      );
      const fdsBefore = openFds();

      const client = await dial(lb.ports[0]!, { allowHalfOpen: true });
      client.on('error', () => {});
      const seen = watch(client);
      client.write('hello');
      await within(
        (async () => {
          while (accepted.length < 2) await sleep(5);
        })(),
        5000,
        'upstream accept',
      );
      const upstream = accepted[1]!;
      await sleep(20);
      await c.act({ client, upstream });
      const how = await seen.how;

      // A client that saw the end closes its side too (a half-open session legitimately waits for that).
      client.end();
      const [, record] = await lb.waitForRecords(2);
      assert.ok(record, 'the session was logged');
      if (c.client === 'whole-then-end') {
        assert.equal(how, 'end', 'a clean end: the upstream sent FIN after all its data');
        assert.equal(sha256(seen.bytes), sha256(SMALL), 'every byte before the FIN arrived');
      } else if (c.client === 'reset-or-whole') {
        if (how === 'end')
          assert.equal(sha256(seen.bytes), sha256(DATA), 'a clean end only after every byte');
        else assert.equal(how, 'ECONNRESET');
      } else if (c.client === 'reset') {
        assert.equal(how, 'ECONNRESET', 'an upstream reset reaches the client as a reset');
        assert.ok(Buffer.concat(seen.bytes).length <= DATA.length);
      }
      // The test's own ends go too, so only a socket the proxy kept would hold an fd.
      client.destroy();
      upstream.destroy();
      await within(
        (async () => {
          while (lb.runtime.sessionCount > 0 || lb.runtime.limiter.active > 0) await sleep(10);
        })(),
        5000,
        'the session slot to be freed',
      );
      // Both proxy sockets closed, and the test's own two as well.
      await within(
        (async () => {
          while (openFds() > fdsBefore) await sleep(10);
        })(),
        5000,
        `fds back to ${fdsBefore} (now ${openFds()})`,
      );
    } finally {
      await lb.close();
      await peer.close();
    }
  });
}

onBothPaths(
  'a reset due while the FIN to the client is still in flight (stop deadline): the session still ends and frees its fd',
  async (_t, path) => {
    // The window is one turn of the event loop when the client reads, and
    // unbounded when it does not (libuv sends the FIN only once the socket is
    // writable again); the stop deadline landing in it is made certain here by
    // cutting every session from the same 'end' that made the proxy send the FIN.
    const accepted: Socket[] = [];
    const peer = await backend((s) => {
      accepted.push(s);
      s.on('data', () => {});
    });
    const lb = await start(config([streamServer({ proxyPass: passTo(peer.port) })]));
    try {
      const client = await dial(lb.ports[0]!, { allowHalfOpen: true });
      client.on('error', () => {});
      const seen = watch(client);
      client.write('hello');
      await within(
        (async () => {
          while (accepted.length < 1 || lb.runtime.liveSessions()[0]?.upstreamSocket === undefined)
            await sleep(5);
        })(),
        5000,
        'upstream accept',
      );
      const session = lb.runtime.liveSessions()[0]!;
      const proxyClient = session.client;
      let restore = () => {};
      if (path === 'sockets')
        session.upstreamSocket!.once('end', () => {
          assert.equal(proxyClient.writableEnded && !proxyClient.writableFinished, true, 'FIN in flight');
          lb.runtime.terminateAll();
        });
      else {
        // No 'end' event on a handle session: cut it from inside the upstream
        // EOF that has just asked for the FIN to the client (libuv sends it on
        // a later turn, once the socket is writable).
        const proto = HandleSession.prototype as unknown as {
          eof(this: unknown, from: { isClient: boolean }): void;
        };
        const eof = proto.eof;
        restore = () => {
          proto.eof = eof;
        };
        proto.eof = function (this: unknown, from: { isClient: boolean }) {
          eof.call(this, from);
          if (from.isClient) return;
          restore();
          lb.runtime.terminateAll();
        };
      }
      const before = openFds();
      try {
        accepted[0]!.write(SMALL);
        accepted[0]!.end();
        await seen.how;
        const [record] = await lb.waitForRecords(1);
        assert.equal(record!.reason, 'shutdown');
      } finally {
        restore();
      }
      assert.equal(lb.runtime.sessionCount, 0);
      assert.equal(proxyClient.destroyed, true);
      if (path === 'sockets')
        await within(
          new Promise<void>((resolve) =>
            proxyClient.closed ? resolve() : proxyClient.once('close', () => resolve()),
          ),
          5000,
          'the proxy side of the client connection to close (its fd released)',
        );
      // A handle session ends only once both handles are closed: its two fds are back
      // (the backend's side, in this process too, may have closed as well).
      else
        assert.ok(openFds() <= before - 2, `the two fds of the session released (${before} → ${openFds()})`);
      client.destroy();
    } finally {
      await lb.close();
      await peer.close();
    }
  },
);
