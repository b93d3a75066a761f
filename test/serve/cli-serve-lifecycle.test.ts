/**
 * The real `keepwire serve` process: reload on SIGHUP (live sessions stay,
 * a broken file is rejected with diagnostics and the running configuration
 * kept), graceful drain on SIGTERM, and a bad file at start is exit 1 with
 * `file:line:col` diagnostics, never a stack trace.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { ask, closedPort, dial, ending, namedBackend as named, serveCli, within } from '../support.js';

function conf(port: number, upstreamPort: number, extra = ''): string {
  return `worker_shutdown_timeout 1s;
stream {
    upstream app { server 127.0.0.1:${upstreamPort}; }
    server {
        listen 127.0.0.1:${port};
        proxy_pass app;
        ${extra}
    }
}
`;
}

test('serve: SIGHUP reloads (live session stays), rejects a broken file, SIGTERM drains then resets', async (t) => {
  const a = await named('A');
  t.after(() => a.close());
  const b = await named('B');
  t.after(() => b.close());
  const port = await closedPort();
  const p = serveCli(t, conf(port, a.port));
  const file = p.file;
  await p.waitFor((l) => l.msg === 'started', 'started line');
  const old = await dial(port);
  // Read while connected (a destroyed socket has no address).
  const oldClient = `127.0.0.1:${old.localPort}`;
  assert.equal(await ask(old), 'A');

  writeFileSync(file, conf(port, b.port));
  p.child.kill('SIGHUP');
  await p.waitFor((l) => l.msg === 'reloaded', 'reloaded line');
  const fresh = await dial(port);
  assert.equal(await ask(fresh), 'B');
  assert.equal(await ask(old), 'A');
  fresh.end();
  await p.waitFor((l) => l.msg === 'session' && l.reason === 'client_closed', 'session line');

  writeFileSync(file, conf(port, b.port, 'proxy_timeout 5parsecs;'));
  p.child.kill('SIGHUP');
  await p.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('reload rejected'), 'rejection');
  // stderr and stdout are separate pipes: the diagnostics may arrive after the log line.
  const diag = new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:7:\\d+: error`);
  await p.waitForStderr(diag).catch(() => {});
  assert.match(p.stderr(), diag);
  assert.equal(await ask(await dial(port)), 'B', 'still serving the last good configuration');

  const began = Date.now();
  const oldEnd = ending(old, 10_000);
  p.child.kill('SIGTERM');
  assert.deepEqual(await oldEnd, { kind: 'error', code: 'ECONNRESET' });
  assert.equal(await within(p.exited, 10_000, 'exit'), 0);
  const took = Date.now() - began;
  assert.ok(took >= 900 && took < 5000, `drain took ${took} ms for a 1s grace period`);
  // The session of `old` (the one to B the last `ask` opened is reset too; the order of their lines is not fixed).
  const shutdownLine = p.lines.find(
    (l) => l.msg === 'session' && l.reason === 'shutdown' && l.client === oldClient,
  );
  assert.ok(shutdownLine, `the reset session of ${oldClient} is logged with reason shutdown`);
  assert.equal(shutdownLine.upstream, `127.0.0.1:${a.port}`);
  for (const key of ['client', 'bytesFromClient', 'bytesFromUpstream', 'durationMs', 'idleTimeoutMs'])
    assert.ok(key in shutdownLine, key);
});

test('serve: SIGINT with no live session exits 0 at once', async (t) => {
  const port = await closedPort();
  const p = serveCli(t, conf(port, await closedPort()));
  await p.waitFor((l) => l.msg === 'started', 'started line');
  p.child.kill('SIGINT');
  assert.equal(await within(p.exited, 5000, 'exit'), 0);
  assert.ok(p.lines.some((l) => l.msg === 'stopped'));
});

test('serve: a bad file at start prints file:line:col diagnostics and exits 1, without a stack trace', async (t) => {
  const p = serveCli(
    t,
    'stream {\n  server {\n    listen 127.0.0.1:80, so_keepalive=60s::;\n    proxy_pass nowhere;\n  }\n}\n',
  );
  assert.equal(await within(p.exited, 10_000, 'exit'), 1);
  // 'exit' can come before the stderr pipe is read to its end.
  await p.waitForStderr(/keepwire\.conf:4:\d+: error/, 10_000).catch(() => {});
  assert.match(p.stderr(), /keepwire\.conf:3:\d+: error/);
  assert.match(p.stderr(), /keepwire\.conf:4:\d+: error/);
  assert.doesNotMatch(p.stderr(), /\n\s+at /);
});

test('serve: an address already in use is exit 1, one line with the listen position and address, and a hint', async (t) => {
  const a = await named('A');
  t.after(() => a.close());
  const p = serveCli(t, conf(a.port, a.port));
  assert.equal(await within(p.exited, 10_000, 'exit'), 1);
  assert.match(
    p.stderr(),
    new RegExp(
      `keepwire\\.conf:5:\\d+: error: cannot listen on 127\\.0\\.0\\.1:${a.port}: address already in use \\(EADDRINUSE\\)\n  hint: another process listens there: ss -ltnp 'sport = :${a.port}' shows which\n`,
    ),
  );
});
