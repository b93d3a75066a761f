/**
 * A lab run that is interrupted leaves nothing behind: Ctrl-C removes its
 * namespaces itself, and after a SIGKILL `keepwire lab --cleanup` does.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { listNamespaces } from '../../src/netns/index.js';
import { requireNetns } from '../require-netns.js';

const run = promisify(execFile);
const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

async function startLab(): Promise<{ child: ChildProcess; names: string[] }> {
  const child = spawn(
    process.execPath,
    [MAIN, 'lab', 'long-request/no-keepalive', 'dead-peer/idle-no-keepalive'],
    {
      stdio: 'ignore',
    },
  );
  // Wait until the run is mid-scenario: its namespaces exist and its processes run in them.
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const names = (await listNamespaces()).filter((n) => n.pid === child.pid).map((n) => n.ns);
    if (names.length >= 6) {
      await new Promise((r) => setTimeout(r, 1500));
      return { child, names: (await listNamespaces()).filter((n) => n.pid === child.pid).map((n) => n.ns) };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error('the lab did not build its namespaces within 15s');
}

async function assertNothingLeft(names: string[]): Promise<void> {
  const left = (await listNamespaces()).map((n) => n.ns);
  for (const name of names) assert.ok(!left.includes(name), `${name} is gone`);
  const { stdout: links } = await run('ip', ['-o', 'link', 'show']);
  assert.ok(!/\bkw[0-9a-f]{8}[ab]\b/.test(links), 'no keepwire veth in the root namespace');
  const { stdout: tables } = await run('nft', ['list', 'tables']);
  assert.ok(!/keepwire_lb|vanish/.test(tables), 'no keepwire nft table in the root namespace');
}

test('Ctrl-C (SIGINT) mid-scenario: the lab removes its namespaces and exits 130', async (t) => {
  if (!requireNetns(t)) return;
  const { child, names } = await startLab();
  assert.ok(names.length >= 6);
  child.kill('SIGINT');
  const [code] = (await once(child, 'exit')) as [number];
  assert.equal(code, 130);
  await assertNothingLeft(names);
});

test('SIGKILL mid-scenario: keepwire lab --cleanup removes what the run left', async (t) => {
  if (!requireNetns(t)) return;
  const { child, names } = await startLab();
  child.kill('SIGKILL');
  await once(child, 'exit');
  const before = (await listNamespaces()).map((n) => n.ns);
  assert.ok(
    names.every((n) => before.includes(n)),
    'the killed run left its namespaces',
  );
  const { stdout } = await run(process.execPath, [MAIN, 'lab', '--cleanup']);
  assert.match(stdout, /removed \d+ namespaces/);
  await assertNothingLeft(names);
});

test('right after kill -9, before the parent reaps the run (a zombie), lab --cleanup removes its namespaces', async (t) => {
  if (!requireNetns(t)) return;
  const { child, names } = await startLab();
  const pid = child.pid!;
  child.kill('SIGKILL');
  // Everything below is synchronous: Node cannot reap the child meanwhile, so it stays a
  // zombie, as under a shell script that runs the cleanup on the next line.
  const deadline = Date.now() + 10_000;
  const state = () => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
  while (state() !== 'Z') {
    assert.ok(Date.now() < deadline, 'the killed lab becomes a zombie');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
  const stdout = execFileSync(process.execPath, [MAIN, 'lab', '--cleanup'], { encoding: 'utf8' });
  assert.equal(state(), 'Z', 'still not reaped when the cleanup ran');
  assert.match(stdout, /removed \d+ namespaces/);
  await once(child, 'exit');
  await assertNothingLeft(names);
});

test('keepwire lab rejects unknown scenarios and bad options with exit 2', async () => {
  for (const args of [
    ['lab', 'nope'],
    ['lab', 'long-request/nope'],
    ['lab', '--lb-idle', '0s'],
    ['lab', '--expiry', 'fin'],
  ]) {
    const r = await run(process.execPath, [MAIN, ...args]).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    );
    assert.equal(r.code, 2, `keepwire ${args.join(' ')}`);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  }
});
