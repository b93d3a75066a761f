/** man/keepwire.1 is generated from --help and must be current; groff renders it without warnings. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { renderManPage } from '../../src/cli/manpage.js';
import { MAIN, ROOT } from '../support.js';

const FILE = path.join(ROOT, 'man', 'keepwire.1');

test('man/keepwire.1 is current (regenerate with npm run docs:man)', () => {
  assert.equal(readFileSync(FILE, 'utf8'), renderManPage());
});

test('the man page documents every command and option that --help shows', () => {
  const page = readFileSync(FILE, 'utf8');
  const top = spawnSync(process.execPath, [MAIN, '--help'], { encoding: 'utf8' }).stdout;
  const commands = [...top.matchAll(/^ {2}([a-z]+)\b/gm)]
    .map((m) => m[1] as string)
    .filter((c) => c !== 'help');
  assert.ok(commands.includes('serve') && commands.includes('completion'), commands.join(' '));
  for (const command of commands) {
    assert.match(page, new RegExp(`^\\.SS "keepwire ${command} `, 'm'), `${command} has a section`);
    const help = spawnSync(process.execPath, [MAIN, command, '--help'], { encoding: 'utf8' }).stdout;
    for (const [, long] of help.matchAll(/^ {2}(?:-\w, )?(--[a-z-]+)/gm))
      assert.ok(
        page.includes((long as string).replace(/-/g, '\\-')),
        `${command} ${long} is in the man page`,
      );
  }
});

const groff = spawnSync('groff', ['--version'], { encoding: 'utf8' });
test('groff renders it with every warning enabled and none given', {
  skip: groff.error ? 'groff is not installed (Debian package: groff-base)' : false,
}, () => {
  const r = spawnSync('groff', ['-man', '-ww', '-z', '-Tutf8', FILE], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  assert.equal(r.stderr, '');
});
