/**
 * The signals a real `keepwire serve` process gets from tools written for
 * nginx: SIGUSR1 (logrotate's "reopen logs") must never open Node's
 * inspector — a debugger on 127.0.0.1:9229 that runs code as the user serve
 * runs as, usually root — and serve goes on serving; SIGUSR2 (binary
 * upgrade) does not kill it; SIGQUIT drains a request in flight, then exits
 * 0. An inspector inherited from NODE_OPTIONS makes a root keepwire refuse
 * to start.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { test } from 'node:test';
import { fetchRaw, get, okResponse, RawClient, rawUpstream } from '../proxy/http/fixtures.js';
import { closedPort, MAIN, serveCli, within } from '../support.js';

function conf(port: number, upstreamPort: number): string {
  return `worker_shutdown_timeout 10s;
http {
    upstream app { server 127.0.0.1:${upstreamPort}; }
    server {
        listen 127.0.0.1:${port};
        location / { proxy_pass http://app; }
    }
}
`;
}

/** TCP ports the process `pid` listens on, read from the kernel (its fds against /proc/PID/net/tcp{,6}). */
function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // The fd closed while we read the directory.
    }
  }
  const ports: number[] = [];
  for (const table of ['tcp', 'tcp6']) {
    for (const row of readFileSync(`/proc/${pid}/net/${table}`, 'utf8').split('\n').slice(1)) {
      const f = row.trim().split(/\s+/);
      // local_address is f[1] (HEX_IP:HEX_PORT), st is f[3] (0A = LISTEN), inode is f[9].
      if (f.length > 9 && f[3] === '0A' && inodes.has(f[9]!))
        ports.push(Number.parseInt(f[1]!.split(':')[1]!, 16));
    }
  }
  return ports.sort((a, b) => a - b);
}

test('serve: SIGUSR1 never opens an inspector (9229), logs that there are no log files to reopen, and serving goes on', async (t) => {
  const up = await rawUpstream((req, respond) => respond(okResponse(`up ${req.url}`)));
  t.after(() => up.close());
  const port = await closedPort();
  const serve = serveCli(t, conf(port, up.port));
  await serve.waitFor((l) => l.msg === 'started', 'started');
  const pid = serve.child.pid!;
  assert.deepEqual(listeningPorts(pid), [port]);

  for (let i = 1; i <= 2; i++) {
    serve.child.kill('SIGUSR1');
    await serve.waitFor(
      (l) => l.signal === 'SIGUSR1' && serve.lines.filter((x) => x.signal === 'SIGUSR1').length >= i,
      `reopen-logs line ${i} (the old code opened the inspector instead: ${JSON.stringify(serve.stderr())})`,
    );
  }
  const line = serve.lines.find((l) => l.signal === 'SIGUSR1')!;
  assert.match(String(line.msg), /nothing to reopen/);
  // A request through serve after the signal: the process is alive and its
  // event loop has turned many times since, so an inspector would be listening.
  const res = await fetchRaw(port, get('/after-usr1'));
  assert.equal(res.body.toString(), 'up /after-usr1');
  assert.deepEqual(listeningPorts(pid), [port], 'serve listens on its configured port only (no inspector)');
  assert.doesNotMatch(serve.stderr(), /Debugger listening/);
  assert.equal(serve.child.exitCode, null);
});

test('serve: SIGUSR2 (nginx binary upgrade) is logged as unsupported and does not stop serving', async (t) => {
  const up = await rawUpstream((req, respond) => respond(okResponse(`up ${req.url}`)));
  t.after(() => up.close());
  const port = await closedPort();
  const serve = serveCli(t, conf(port, up.port));
  await serve.waitFor((l) => l.msg === 'started', 'started');
  serve.child.kill('SIGUSR2');
  const line = await serve.waitFor((l) => l.signal === 'SIGUSR2', 'SIGUSR2 line (the old code died on it)');
  assert.match(String(line.msg), /not supported/);
  const res = await fetchRaw(port, get('/after-usr2'));
  assert.equal(res.body.toString(), 'up /after-usr2');
  assert.equal(serve.child.exitCode, null);
  assert.equal(serve.child.signalCode, null);
});

test('serve: SIGQUIT is a graceful stop: a request in flight completes, then exit 0', async (t) => {
  let release: (() => void) | undefined;
  const arrived = new Promise<void>((resolve) => {
    release = resolve;
  });
  let answer: (() => void) | undefined;
  const up = await rawUpstream((req, respond) => {
    answer = () => respond(okResponse(`up ${req.url}`));
    release!();
  });
  t.after(() => up.close());
  const port = await closedPort();
  const serve = serveCli(t, conf(port, up.port));
  await serve.waitFor((l) => l.msg === 'started', 'started');

  const client = await RawClient.open(port);
  t.after(() => client.close());
  client.send(get('/in-flight'));
  await within(arrived, 10_000, 'request at the upstream');
  serve.child.kill('SIGQUIT');
  await serve.waitFor((l) => l.msg === 'draining', 'draining line (the old code died on SIGQUIT)');
  // The listener is closed while draining: no new connection is accepted.
  await assert.rejects(RawClient.open(port), /ECONNREFUSED/);
  answer!();
  const res = await client.response({ timeoutMs: 10_000 });
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), 'up /in-flight');
  assert.equal(await within(serve.exited, 10_000, 'exit'), 0);
  const stopped = serve.lines.find((l) => l.msg === 'stopped');
  assert.deepEqual([stopped?.drained, stopped?.reset], [1, 0]);
  assert.ok(serve.lines.some((l) => l.msg === 'shutting down' && l.signal === 'SIGQUIT'));
});

test('keepwire refuses to run as root with an inspector opened from NODE_OPTIONS', async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('needs root: as another user keepwire only warns');
    return;
  }
  const child = spawn(process.execPath, [MAIN, 'recommend', '--lb-idle', '350s'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '--inspect=127.0.0.1:0' },
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const code = await within(
    new Promise<number | null>((resolve) => child.once('exit', resolve)),
    10_000,
    'keepwire exit',
  );
  assert.equal(code, 2, `stderr: ${err}`);
  assert.match(
    err,
    /keepwire: refusing to run as root with Node's inspector open on ws:\/\/127\.0\.0\.1:\d+/,
  );
  assert.match(err, /hint: unset NODE_OPTIONS/);
  assert.equal(out, '', 'the command did not run');
});
