/**
 * `keepwire completion bash|zsh`: the scripts are sourced by the real shells
 * and bash's completion function is driven the way bash drives it on TAB.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { MAIN, tempDir } from '../support.js';

const dir = tempDir('keepwire-completion-');

function keepwire(...args: string[]) {
  return spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 30_000 });
}

/** Completions bash offers for the command line `words` with the cursor on its last word. */
function bashComplete(script: string, words: string[]): string[] {
  const line = words.map((w) => `'${w}'`).join(' ');
  const driver = `source ${script}
COMP_WORDS=(${line}); COMP_CWORD=${words.length - 1}
_keepwire
printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = spawnSync('bash', ['--norc', '--noprofile', '-c', driver], {
    encoding: 'utf8',
    cwd: dir,
    timeout: 30_000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  return r.stdout.split('\n').filter((l) => l !== '');
}

describe('keepwire completion', () => {
  const bash = path.join(dir, 'keepwire.bash');
  const generated = keepwire('completion', 'bash');
  writeFileSync(bash, generated.stdout);
  writeFileSync(path.join(dir, 'keep.conf'), '');
  writeFileSync(path.join(dir, 'other.txt'), '');

  it('bash: prints a script that registers _keepwire for keepwire', () => {
    assert.equal(generated.status, 0, generated.stderr);
    const r = spawnSync('bash', ['--norc', '--noprofile', '-c', `source ${bash} && complete -p keepwire`], {
      encoding: 'utf8',
    });
    assert.equal(r.stdout.trim(), 'complete -o default -F _keepwire keepwire');
  });

  it("bash: completes commands, then that command's options", () => {
    assert.deepEqual(bashComplete(bash, ['keepwire', 'c']), ['check', 'completion']);
    assert.deepEqual(bashComplete(bash, ['keepwire', 'check', '--s']), ['--strict']);
    assert.deepEqual(bashComplete(bash, ['keepwire', 'serve', '-']), ['-c', '--config', '--help']);
    assert.deepEqual(bashComplete(bash, ['keepwire', 'completion', '']), ['bash', 'zsh', '--help']);
  });

  it('bash: files after -c, choices after --expiry', () => {
    assert.deepEqual(bashComplete(bash, ['keepwire', 'check', '-c', 'keep.c']), ['keep.conf']);
    assert.deepEqual(bashComplete(bash, ['keepwire', 'lab', '--expiry', '']), ['rst', 'drop']);
  });

  const zsh = spawnSync('zsh', ['--version'], { encoding: 'utf8' });
  // scripts/system-deps.sh installs zsh; under CI its absence is a failure, not a skip.
  if (zsh.error && process.env.CI === 'true') throw new Error('CI=true: zsh is not installed');
  it('zsh: the script parses and defines _keepwire with compinit loaded', {
    skip: zsh.error ? 'zsh is not installed' : false,
  }, () => {
    const file = path.join(dir, '_keepwire');
    const script = keepwire('completion', 'zsh');
    assert.equal(script.status, 0, script.stderr);
    writeFileSync(file, script.stdout);
    const syntax = spawnSync('zsh', ['-n', file], { encoding: 'utf8' });
    assert.equal(syntax.status, 0, syntax.stderr);
    const r = spawnSync(
      'zsh',
      [
        '-f',
        '-c',
        `autoload -Uz compinit && compinit -u -D && source ${file} && print -r -- $_comps[keepwire]`,
      ],
      { encoding: 'utf8', cwd: dir },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), '_keepwire');
  });

  it('an unknown shell is a usage error naming the choices', () => {
    const r = keepwire('completion', 'fish');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /Allowed choices are bash, zsh/);
  });
});
