/**
 * Starting `keepwire serve` with and without workers: `worker_processes 1`
 * stays one process (and a reload to 2 is refused with what to do), a
 * master whose address is taken exits 1 with the one-line bind error,
 * `reuseport` works in one process on every Node (Node 20 ignores
 * listen's reusePort: a second process on the port failed with
 * EADDRINUSE), and `check` says what reuseport does.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fetchRaw, get } from '../proxy/http/fixtures.js';
import { closedPort, MAIN, serveCli, within } from '../support.js';
import { childrenOf } from './workers-support.js';

function conf(port: number, workers: number, listenParams = ''): string {
  return `worker_processes ${workers};
http {
    server {
        listen 127.0.0.1:${port}${listenParams};
        location / { return 200 "hi\\n"; }
    }
}
`;
}

test('worker_processes 1 is one process; a reload to 2 is refused (needs a restart) and serving goes on', async (t) => {
  const port = await closedPort();
  const serve = serveCli(t, conf(port, 1));
  await serve.waitFor((l) => l.msg === 'started', 'started');
  assert.deepEqual(childrenOf(serve.child.pid!), []);
  writeFileSync(serve.file, conf(port, 2));
  serve.child.kill('SIGHUP');
  const refused = await serve.waitFor((l) => /reload rejected/.test(String(l.msg)), 'reload rejected');
  assert.match(String(refused.error), /worker_processes 2 needs a restart/);
  await serve.waitForStderr(/worker_processes 2 needs a restart/, 10_000);
  assert.deepEqual(childrenOf(serve.child.pid!), []);
  assert.equal((await fetchRaw(port, get('/'))).status, 200);
});

test('worker_processes 2 on a taken address: the master exits 1 with the bind error, no worker started', async (t) => {
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  t.after(() => taken.close());
  const port = (taken.address() as { port: number }).port;
  const serve = serveCli(t, conf(port, 2));
  assert.equal(await within(serve.exited, 30_000, 'master exit'), 1);
  assert.match(
    serve.stderr(),
    new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: address already in use`),
  );
  assert.equal(
    serve.lines.filter((l) => l.msg === 'worker started').length,
    0,
    'no worker is forked before every socket is bound',
  );
});

test('listen reuseport in one process: two serve processes share the port (SO_REUSEPORT through libc, Node 20 too)', async (t) => {
  const port = await closedPort();
  const a = serveCli(t, conf(port, 1, ' reuseport'));
  await a.waitFor((l) => l.msg === 'started', 'first started');
  const b = serveCli(t, conf(port, 1, ' reuseport'));
  await b.waitFor((l) => l.msg === 'started', 'second started');
  assert.equal((await fetchRaw(port, get('/'))).status, 200);
});

test('keepwire check says what reuseport does on the running Node', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keepwire-check-'));
  try {
    const file = join(dir, 'keepwire.conf');
    writeFileSync(file, conf(8080, 2, ' reuseport'));
    const r = spawnSync(process.execPath, [MAIN, 'check', '-c', file], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /note: reuseport: SO_REUSEPORT is set through libc before bind on every Node/);
    assert.match(r.stderr, /one socket per worker in one SO_REUSEPORT group/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
