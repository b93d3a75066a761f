/**
 * The CLI as SREs use it in shells and scripts: output into a pipe that
 * closes early, hostile config files, names that do not resolve, empty
 * files, nginx files, busy ports.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { MAIN, ROOT, tempDir, within } from '../support.js';

function keepwire(...args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs keepwire with its stdout read end closed before it writes: `keepwire ... | head -c0`. */
async function intoClosedPipe(
  args: string[],
): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const [code, signal] = await within(
    new Promise<[number | null, string | null]>((resolve) => child.once('close', (c, s) => resolve([c, s]))),
    30_000,
    `keepwire ${args.join(' ')}`,
  );
  return { code, signal, stderr };
}

test('output into a pipe closed early: no EPIPE stack trace, the command exits with its own code', async (t) => {
  const dir = tempDir('keepwire-epipe-', t);
  const bad = path.join(dir, 'bad.conf');
  writeFileSync(bad, 'stream { server { listen 127.0.0.1:1; proxy_timeout 5parsecs; } }\n');
  for (const [args, want] of [
    [['lab', '--list'], 0],
    [['check', '--json', '-c', path.join(ROOT, 'examples', 'keepwire.conf')], 0],
    [['check', '--json', '-c', bad], 1],
    [['--help'], 0],
  ] as [string[], number][]) {
    const r = await intoClosedPipe(args);
    assert.doesNotMatch(r.stderr, /EPIPE|\n\s+at /, `keepwire ${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr, '', `keepwire ${args.join(' ')} is quiet`);
    assert.deepEqual([r.code, r.signal], [want, null], `keepwire ${args.join(' ')}`);
  }
});

test('the LICENSE file carries the license package.json declares (MIT)', () => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { license: string };
  assert.equal(pkg.license, 'MIT');
  const text = readFileSync(path.join(ROOT, 'LICENSE'), 'utf8');
  assert.match(text, /^MIT License\n\nCopyright \(c\) \d{4} the keepwire authors\n/);
  assert.match(text, /THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND/);
});

// Raw control characters: C0 but tab and newline, DEL, C1 (U+009B is a CSI on some terminals).
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is its purpose
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

test('a binary file as a config: control characters escaped, never echoed; at most 20 diagnostics then a count', (t) => {
  const dir = tempDir('keepwire-garbage-', t);
  const file = path.join(dir, 'garbage.conf');
  const lines = ['\u001b[2J\u001b]0:owned\u0007evil\u009b31m on;'];
  for (let i = 0; i < 200; i++) lines.push(`x${i}\u0000\u0001\u007f;`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  const human = keepwire('check', '-c', file);
  assert.equal(human.code, 1);
  assert.doesNotMatch(
    human.stderr + human.stdout,
    RAW_CONTROL,
    'no raw control character reaches the terminal',
  );
  assert.match(human.stderr, /unknown directive "\\x1b\[2J\\x1b\]0:owned\\x07evil\\x9b31m"/);
  assert.equal(human.stderr.match(/: error: /g)?.length, 20, 'the first 20 diagnostics are shown');
  assert.match(human.stderr, /^\.\.\. 181 more errors not shown \(check --json lists them all\)$/m);
  assert.match(human.stderr, /test failed \(201 errors, 0 warnings\)/);

  const json = keepwire('check', '--json', '-c', file);
  assert.equal(json.code, 1);
  assert.doesNotMatch(json.stdout, RAW_CONTROL);
  const diagnostics = JSON.parse(json.stdout) as { message: string }[];
  assert.equal(diagnostics.length, 201, '--json lists every diagnostic');
  for (const d of diagnostics) assert.doesNotMatch(d.message, RAW_CONTROL, d.message);

  const serve = keepwire('serve', '-c', file);
  assert.equal(serve.code, 1);
  assert.doesNotMatch(serve.stderr + serve.stdout, RAW_CONTROL);
  assert.equal(serve.stderr.match(/: error: /g)?.length, 20);
});

test('an empty config: check refuses it with the error serve gives, both exit 1', (t) => {
  const dir = tempDir('keepwire-empty-', t);
  for (const text of ['', '# nothing yet\nworker_shutdown_timeout 5s;\n']) {
    const file = path.join(dir, 'empty.conf');
    writeFileSync(file, text);
    const check = keepwire('check', '-c', file);
    const serve = keepwire('serve', '-c', file);
    assert.equal(check.code, 1, check.stdout);
    assert.equal(serve.code, 1, serve.stdout);
    const line = `${file}:1:1: error: nothing to serve: no stream { server { ... } } or http { server { ... } } block`;
    assert.ok(check.stderr.includes(line), check.stderr);
    assert.ok(serve.stderr.includes(line), serve.stderr);
    assert.match(check.stderr, /test failed \(1 error, 0 warnings\)/);
  }
});

test('check on an nginx file points at doctor --nginx; a keepwire file with a typo does not get that hint', (t) => {
  const dir = tempDir('keepwire-nginxfile-', t);
  const nginx = path.join(dir, 'site.conf');
  writeFileSync(
    nginx,
    // worker_processes is keepwire's too (workers), so it is no sign of an nginx file.
    'user www-data;\nworker_processes auto;\nevents { worker_connections 768; }\nhttp {\n    sendfile on;\n    server { listen 127.0.0.1:8080; root /var/www/html; }\n}\n',
  );
  const r = keepwire('check', '-c', nginx);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    new RegExp(
      `^hint: .* looks like an nginx configuration \\(user, sendfile, root\\): .*run: keepwire doctor --nginx ${nginx.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`,
      'm',
    ),
  );
  const typo = path.join(dir, 'keepwire.conf');
  writeFileSync(typo, 'stream { server { listen 127.0.0.1:7000; proxy_pas 127.0.0.1:7001; } }\n');
  const t2 = keepwire('check', '-c', typo);
  assert.equal(t2.code, 1);
  assert.doesNotMatch(t2.stderr, /doctor --nginx/);
});

test('serve on a privileged port without the capability: one line with the address and a hint, exit 2 (missing capability)', (t) => {
  // Root without CAP_NET_BIND_SERVICE (setpriv drops it from the bounding set before exec).
  if (process.getuid?.() !== 0 || spawnSync('setpriv', ['--version']).status !== 0) {
    if (process.env.CI === 'true') assert.fail('needs root and setpriv(1) to drop CAP_NET_BIND_SERVICE');
    t.skip('needs root and setpriv(1) to drop CAP_NET_BIND_SERVICE');
    return;
  }
  const dir = tempDir('keepwire-eacces-', t);
  const file = path.join(dir, 'low.conf');
  writeFileSync(
    file,
    'stream {\n    server {\n        listen 127.0.0.1:81;\n        proxy_pass 127.0.0.1:7001;\n    }\n}\n',
  );
  const r = spawnSync(
    'setpriv',
    [
      '--bounding-set=-net_bind_service',
      '--inh-caps=-net_bind_service',
      process.execPath,
      MAIN,
      'serve',
      '-c',
      file,
    ],
    { encoding: 'utf8', timeout: 30_000 },
  );
  assert.equal(r.status, 2, r.stderr);
  assert.equal(
    r.stderr,
    `${file}:3:9: error: cannot listen on 127.0.0.1:81: permission denied (EACCES)\n  hint: ports below net.ipv4.ip_unprivileged_port_start (1024 by default) need CAP_NET_BIND_SERVICE (root has it unless dropped; systemd: AmbientCapabilities=CAP_NET_BIND_SERVICE)\n`,
  );
});

test('a host name that does not resolve: check and serve refuse it at its line, as nginx does at start', (t) => {
  // In a fresh network namespace (no route, no DNS traffic leaves this host)
  // `*.invalid` (RFC 2606) cannot resolve, and `localhost` still does from /etc/hosts.
  if (process.getuid?.() !== 0 || spawnSync('unshare', ['--version']).status !== 0) {
    if (process.env.CI === 'true') assert.fail('needs root and unshare(1) to isolate name resolution');
    t.skip('needs root and unshare(1) to isolate name resolution');
    return;
  }
  const dir = tempDir('keepwire-dns-', t);
  const file = path.join(dir, 'names.conf');
  writeFileSync(
    file,
    'http {\n    upstream app {\n        server app.invalid:8080;\n        server localhost:8081;\n    }\n    server {\n        listen 127.0.0.1:18080;\n        location / { proxy_pass http://app; }\n        location /b { proxy_pass http://backend.invalid:9; }\n    }\n}\n',
  );
  const isolated = (...args: string[]) => {
    const r = spawnSync('unshare', ['--net', process.execPath, MAIN, ...args], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  for (const r of [isolated('check', '-c', file), isolated('serve', '-c', file)]) {
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3:9: error: host not found in upstream "app\\.invalid:8080" \\(`,
        'm',
      ),
    );
    assert.match(r.stderr, /:9:9: error: host not found in proxy_pass "backend\.invalid:9"/);
    assert.match(r.stderr, /hint: "app\.invalid" does not resolve on this host/);
    assert.doesNotMatch(r.stderr, /localhost/);
    assert.equal(r.stdout.includes('"started"'), false, 'serve did not start');
  }
  const json = isolated('check', '--json', '-c', file);
  const codes = (JSON.parse(json.stdout) as { code: string }[]).map((d) => d.code);
  assert.deepEqual(codes, ['host-not-found', 'host-not-found']);
});
