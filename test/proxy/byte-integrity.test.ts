/**
 * Not one byte lost, duplicated or reordered: many concurrent sessions move
 * random data both ways with random chunking and pauses; SHA-256 must match
 * on both ends, and the session log must count every byte.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import {
  backend,
  config,
  dial,
  onBothPaths,
  passTo,
  randomChunks,
  readAll,
  sha256,
  start,
  streamServer,
  within,
  writeAll,
} from './fixtures.js';

const SESSIONS = 16;
const BYTES = 384 * 1024; // per direction per session: 6 MB each way in total

interface Seen {
  received: Promise<string>;
  sent: string;
}

onBothPaths(
  `${SESSIONS} concurrent sessions, ${BYTES / 1024} KiB random each way, SHA-256 equal on both ends`,
  async () => {
    const atBackend: Seen[] = [];
    const peer = await backend((s: Socket) => {
      const chunks = randomChunks(BYTES, 16 * 1024);
      atBackend.push({ received: readAll(s).then(sha256), sent: sha256(chunks) });
      void writeAll(s, chunks, 7);
    });
    const lb = await start(config([streamServer({ proxyPass: passTo(peer.port) })]));
    try {
      const clients = await Promise.all(
        Array.from({ length: SESSIONS }, async () => {
          const s = await dial(lb.ports[0]!, { allowHalfOpen: true });
          const chunks = randomChunks(BYTES, 24 * 1024);
          const received = readAll(s);
          await writeAll(s, chunks, 5);
          return { sent: sha256(chunks), received: sha256(await received) };
        }),
      );
      await within(lb.waitForRecords(SESSIONS), 30_000, 'session records');
      const backendReceived = new Set(await Promise.all(atBackend.map((b) => b.received)));
      const backendSent = new Set(atBackend.map((b) => b.sent));
      assert.equal(atBackend.length, SESSIONS);
      for (const c of clients) {
        assert.ok(backendReceived.has(c.sent), 'client data reached the backend intact');
        assert.ok(backendSent.has(c.received), 'backend data reached the client intact');
      }
      for (const r of lb.records) {
        assert.equal(r.bytesFromClient, BYTES);
        assert.equal(r.bytesFromUpstream, BYTES);
        assert.ok(r.reason === 'client_closed' || r.reason === 'upstream_closed', r.reason);
      }
    } finally {
      await lb.close();
      await peer.close();
    }
  },
);

onBothPaths(
  'half-close: after the client FIN the upstream still sends 1 MiB, and the client gets all of it',
  async () => {
    const reply = randomBytes(1024 * 1024);
    const peer = await backend((s) => {
      s.on('data', () => {});
      // Answers only after the request is complete (client FIN), like an rsh/HTTP/1.0 exchange.
      s.once('end', () => {
        s.end(reply);
      });
    });
    const lb = await start(config([streamServer({ proxyPass: passTo(peer.port) })]));
    try {
      const s = await dial(lb.ports[0]!, { allowHalfOpen: true });
      const received = readAll(s);
      s.end('request');
      assert.equal(sha256(await within(received, 20_000, 'reply')), sha256([reply]));
      const [record] = await lb.waitForRecords(1);
      assert.equal(record!.reason, 'client_closed');
      assert.equal(record!.bytesFromClient, 7);
      assert.equal(record!.bytesFromUpstream, reply.length);
    } finally {
      await lb.close();
      await peer.close();
    }
  },
);

onBothPaths(
  'half-close the other way: upstream FIN first, the client can still send and the upstream gets it',
  async () => {
    let gotFromClient: Promise<Buffer[]> | undefined;
    const peer = await backend((s) => {
      gotFromClient = readAll(s);
      s.end('banner');
    });
    const lb = await start(config([streamServer({ proxyPass: passTo(peer.port) })]));
    try {
      const s = await dial(lb.ports[0]!, { allowHalfOpen: true });
      const banner = await within(readAll(s), 10_000, 'banner');
      assert.equal(Buffer.concat(banner).toString(), 'banner');
      const late = randomBytes(256 * 1024);
      s.end(late);
      assert.equal(sha256(await within(gotFromClient!, 10_000, 'late data')), sha256([late]));
      const [record] = await lb.waitForRecords(1);
      assert.equal(record!.reason, 'upstream_closed');
    } finally {
      await lb.close();
      await peer.close();
    }
  },
);
