import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { segmentMatcher } from '../../src/config/glob.js';
import { loadConfig } from '../../src/config/index.js';
import { tempDir } from '../support.js';
import { expectDiagnostic } from './support.js';

const dir = tempDir('keepwire-include-');

function write(rel: string, text: string): string {
  const file = path.join(dir, rel);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
  return file;
}

describe('include', () => {
  it('expands globs relative to the including file, in sorted order, inside the including block', () => {
    const main = write(
      'glob/keepwire.conf',
      'stream {\n    include upstreams/*.conf;\n    include servers/s?.conf;\n    include none/*.conf;\n}\n',
    );
    write('glob/upstreams/b.conf', 'upstream b { server 127.0.0.1:2; }\n');
    write('glob/upstreams/a.conf', 'upstream a { server 127.0.0.1:1; }\n');
    write('glob/upstreams/.hidden.conf', 'this is not read;\n');
    write('glob/servers/s1.conf', 'server { listen 127.0.0.1:7001; proxy_pass a; }\n');
    write('glob/servers/s2.conf', 'server { listen 127.0.0.1:7002; proxy_pass b; }\n');
    write('glob/servers/s10.conf', 'server { listen 127.0.0.1:7010; proxy_pass nowhere; }\n');
    const r = loadConfig(main);
    assert.deepEqual(r.diagnostics, []);
    assert.deepEqual([...r.config!.stream!.upstreams.keys()], ['a', 'b']);
    assert.deepEqual(
      r.config!.stream!.servers.map((s) => s.listens[0]!.address.port),
      [7001, 7002],
    );
    // Positions in included files name those files.
    assert.ok(r.config!.stream!.servers[0]!.source.file.endsWith(path.join('glob', 'servers', 's1.conf')));
    assert.equal(r.config!.stream!.servers[0]!.source.line, 1);
  });

  it('reports a missing file at the include argument', () => {
    const main = write('missing/keepwire.conf', 'stream {\n    include   nothere.conf;\n}\n');
    const d = expectDiagnostic(loadConfig(main), { code: 'include-not-found', line: 2, col: 15 });
    assert.ok(d.message.includes('nothere.conf'));
  });

  it('reports errors inside included files at their own file and line', () => {
    const main = write('nested/keepwire.conf', 'stream {\n  include conf.d/bad.conf;\n}\n');
    write(
      'nested/conf.d/bad.conf',
      '# bad\nserver {\n  listen 80, so_keepalive=on;\n  proxy_pass 127.0.0.1:1;\n}\n',
    );
    const r = loadConfig(main);
    assert.equal(r.diagnostics.length, 1);
    const d = r.diagnostics[0]!;
    assert.equal(d.code, 'comma-separator');
    assert.ok(d.file.endsWith(path.join('nested', 'conf.d', 'bad.conf')));
    assert.deepEqual([d.line, d.col], [3, 12]);
  });

  it('detects a file including itself', () => {
    const main = write('self/keepwire.conf', 'include keepwire.conf;\n');
    const d = expectDiagnostic(loadConfig(main), { code: 'include-cycle', line: 1, col: 9 });
    assert.ok(d.message.includes('keepwire.conf -> keepwire.conf'), d.message);
  });

  it('detects a cycle through several files, and a glob that matches its own file', () => {
    const main = write('cycle/a.conf', 'include sub/b.conf;\n');
    write('cycle/sub/b.conf', '\ninclude ../a.conf;\n');
    const r = loadConfig(main);
    const d = expectDiagnostic(r, { code: 'include-cycle', line: 2, col: 9 });
    assert.ok(d.message.includes('a.conf -> b.conf -> a.conf'), d.message);
    assert.equal(r.diagnostics.length, 1);
    const glob = write('cycle2/all.conf', 'include *.conf;\n');
    expectDiagnostic(loadConfig(glob), { code: 'include-cycle', line: 1, col: 9 });
  });

  it('takes exactly one argument', () => {
    const main = write('arity/keepwire.conf', 'include a.conf b.conf;\n');
    expectDiagnostic(loadConfig(main), { code: 'wrong-arity', line: 1, col: 16 });
  });

  it('reports an unreadable main file as a file-level error', () => {
    const r = loadConfig(path.join(dir, 'does-not-exist.conf'));
    assert.equal(r.config, undefined);
    assert.deepEqual(
      r.diagnostics.map((d) => [d.code, d.line, d.col]),
      [['file-unreadable', 0, 0]],
    );
  });
});

describe('glob segments', () => {
  it('match like glob(3)', () => {
    const m = (p: string, s: string) => segmentMatcher(p).test(s);
    assert.ok(m('*.conf', 'a.conf'));
    assert.ok(!m('*.conf', 'a.conf.bak'));
    assert.ok(m('s?.conf', 's1.conf'));
    assert.ok(!m('s?.conf', 's10.conf'));
    assert.ok(m('[ab].conf', 'b.conf'));
    assert.ok(!m('[!ab].conf', 'b.conf'));
    assert.ok(m('[0-9]x', '7x'));
    assert.ok(m('a.b', 'a.b'));
    assert.ok(!m('a.b', 'axb'), 'dots are literal');
  });
});
