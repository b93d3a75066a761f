/**
 * TLS session resumption across workers: the master makes one set of
 * session ticket keys per worker generation and hands it to every worker,
 * so a ticket one worker issued resumes on the other (nginx shares them the
 * same way through ssl_session_ticket_key files or its shared zone). With
 * keys of each worker's own, about half the resumptions would fall back to
 * a full handshake.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { makePki } from '../proxy/tls/pki.js';
import { closedPort } from '../support.js';
import { startMaster } from './workers-support.js';

/** One TLS 1.2 connection and request: its session, and whether it resumed `session`. */
function once(
  port: number,
  ca: Buffer,
  session?: Buffer,
): Promise<{ session: Buffer | undefined; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      port,
      host: '127.0.0.1',
      servername: 'h.test',
      ca,
      maxVersion: 'TLSv1.2',
      ...(session ? { session } : {}),
    });
    socket.resume();
    socket.on('error', reject);
    socket.on('secureConnect', () =>
      socket.write('GET / HTTP/1.1\r\nHost: h.test\r\nConnection: close\r\n\r\n'),
    );
    socket.on('end', () => {
      resolve({ session: socket.getSession(), reused: socket.isSessionReused() });
      socket.destroy();
    });
  });
}

test('worker_processes 2: a TLS session ticket from one worker resumes on every worker', async (t) => {
  const pki = makePki(t);
  if (!pki) return;
  const leaf = pki.issue('h.test');
  const port = await closedPort();
  const master = await startMaster(
    t,
    `worker_processes 2;
http {
    server {
        listen 127.0.0.1:${port} ssl reuseport;
        server_name h.test;
        ssl_certificate ${leaf.cert};
        ssl_certificate_key ${leaf.key};
        location / { return 200 "ok\\n"; }
    }
}
`,
  );
  // reuseport: a socket per worker, the kernel picks one by each connection's address and port, so
  // sequential connections reach both (on one shared socket the same worker can take all 40).
  const ca = pki.read(pki.ca);
  const first = await once(port, ca);
  assert.ok(first.session, 'the server gave a session ticket');
  // Which worker answered: the access log line of each request carries its pid.
  const pidsSeen = new Set<number>();
  const results: boolean[] = [];
  for (let i = 0; i < 40 && (pidsSeen.size < 2 || results.length < 10); i++) {
    const seen = master.lines.length;
    const r = await once(port, ca, first.session);
    results.push(r.reused);
    const line = await master.waitFor(
      (l) => master.lines.indexOf(l) >= seen && l.msg === 'request' && l.status === 200,
      `access line of connection ${i + 1}`,
    );
    pidsSeen.add(line.pid as number);
  }
  assert.equal(pidsSeen.size, 2, `connections reached both workers (${[...pidsSeen]})`);
  assert.deepEqual(
    results.map((r, i) => (r ? 'resumed' : `full handshake #${i + 1}`)),
    results.map(() => 'resumed'),
  );
});
