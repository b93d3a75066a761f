/**
 * The real `keepwire serve` process: reload on SIGHUP (live sessions stay,
 * a broken file is rejected with diagnostics and the running configuration
 * kept), graceful drain on SIGTERM, and a bad file at start is exit 1 with
 * `file:line:col` diagnostics, never a stack trace.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { backend, closedPort, dial, ending, within } from '../proxy/fixtures.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

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

interface Proc {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  stderr: () => string;
  waitFor(pred: (l: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
}

function run(file: string): Proc {
  const child = spawn(process.execPath, [MAIN, 'serve', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  let err = '';
  let buf = '';
  let waiters: (() => void)[] = [];
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl = buf.indexOf('\n');
    while (nl >= 0) {
      lines.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
      buf = buf.slice(nl + 1);
      nl = buf.indexOf('\n');
    }
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    lines,
    stderr: () => err,
    exited,
    waitFor(pred, what) {
      return within(
        (async () => {
          for (let i = 0; i < 1000; i++) {
            const found = lines.find(pred);
            if (found) return found;
            await new Promise<void>((resolve) => waiters.push(resolve));
          }
          throw new Error(`no ${what}`);
        })(),
        10_000,
        what,
      );
    },
  };
}

const named = (name: string) =>
  backend((s: Socket) => {
    s.on('data', () => s.write(name));
    s.on('end', () => s.end());
  });

async function ask(s: Socket): Promise<string> {
  const answer = new Promise<string>((resolve, reject) => {
    s.once('data', (d) => resolve(d.toString()));
    s.once('error', reject);
  });
  s.write('?');
  return within(answer, 5000, 'answer');
}

test('serve: SIGHUP reloads (live session stays), rejects a broken file, SIGTERM drains then resets', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'keepwire-serve-'));
  const file = join(dir, 'keepwire.conf');
  const a = await named('A');
  const b = await named('B');
  const port = await closedPort();
  writeFileSync(file, conf(port, a.port));
  const p = run(file);
  try {
    await p.waitFor((l) => l.msg === 'started', 'started line');
    const old = await dial(port);
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
    for (let i = 0; i < 100 && !diag.test(p.stderr()); i++) await new Promise((r) => setTimeout(r, 20));
    assert.match(p.stderr(), diag);
    assert.equal(await ask(await dial(port)), 'B', 'still serving the last good configuration');

    const began = Date.now();
    const oldEnd = ending(old, 10_000);
    p.child.kill('SIGTERM');
    assert.deepEqual(await oldEnd, { kind: 'error', code: 'ECONNRESET' });
    assert.equal(await within(p.exited, 10_000, 'exit'), 0);
    const took = Date.now() - began;
    assert.ok(took >= 900 && took < 5000, `drain took ${took} ms for a 1s grace period`);
    const shutdownLine = p.lines.find((l) => l.msg === 'session' && l.reason === 'shutdown');
    assert.ok(shutdownLine, 'the reset session is logged with reason shutdown');
    assert.equal(shutdownLine.upstream, `127.0.0.1:${a.port}`);
    for (const key of ['client', 'bytesFromClient', 'bytesFromUpstream', 'durationMs', 'idleTimeoutMs'])
      assert.ok(key in shutdownLine, key);
  } finally {
    p.child.kill('SIGKILL');
    await a.close();
    await b.close();
  }
});

test('serve: SIGINT with no live session exits 0 at once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'keepwire-serve-'));
  const file = join(dir, 'keepwire.conf');
  const port = await closedPort();
  writeFileSync(file, conf(port, await closedPort()));
  const p = run(file);
  try {
    await p.waitFor((l) => l.msg === 'started', 'started line');
    p.child.kill('SIGINT');
    assert.equal(await within(p.exited, 5000, 'exit'), 0);
    assert.ok(p.lines.some((l) => l.msg === 'stopped'));
  } finally {
    p.child.kill('SIGKILL');
  }
});

test('serve: a bad file at start prints file:line:col diagnostics and exits 1, without a stack trace', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'keepwire-serve-'));
  const file = join(dir, 'keepwire.conf');
  writeFileSync(
    file,
    'stream {\n  server {\n    listen 127.0.0.1:80, so_keepalive=60s::;\n    proxy_pass nowhere;\n  }\n}\n',
  );
  const p = run(file);
  assert.equal(await within(p.exited, 10_000, 'exit'), 1);
  assert.match(p.stderr(), /keepwire\.conf:3:\d+: error/);
  assert.match(p.stderr(), /keepwire\.conf:4:\d+: error/);
  assert.doesNotMatch(p.stderr(), /\n\s+at /);
});

test('serve: an address already in use is exit 1 with the listen position', async () => {
  const a = await named('A');
  const dir = mkdtempSync(join(tmpdir(), 'keepwire-serve-'));
  const file = join(dir, 'keepwire.conf');
  writeFileSync(file, conf(a.port, a.port));
  try {
    const p = run(file);
    assert.equal(await within(p.exited, 10_000, 'exit'), 1);
    assert.match(p.stderr(), /keepwire\.conf:5:\d+: cannot listen on .*EADDRINUSE/);
  } finally {
    await a.close();
  }
});
