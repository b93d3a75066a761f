/**
 * The CLI as SREs use it in shells and scripts: output into a pipe that
 * closes early, hostile config files, names that do not resolve, empty
 * files, nginx files, busy ports.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { MAIN, ROOT, tempDir, within } from '../support.js';

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
