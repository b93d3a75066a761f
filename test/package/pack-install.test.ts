/**
 * The npm package as a user gets it: `npm pack`, installed into a scratch
 * project with `--ignore-scripts` (koffi must work without its install
 * script), the CLI run through `npx`, the library imported from ESM and from
 * CommonJS (require(esm): Node >= 20.19 / 22.12, and only if no module of the
 * library's import graph has top-level await), and its types compiled under
 * `strict` with NodeNext resolution.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ROOT } from '../support.js';

const run = promisify(execFile);

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end; never throws on a non-zero exit (the test asserts on it). */
async function sh(file: string, args: string[], cwd: string, timeout = 120_000): Promise<Ran> {
  try {
    const { stdout, stderr } = await run(file, args, { cwd, timeout, maxBuffer: 16 << 20 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number | string; stdout?: string; stderr?: string; message: string };
    return {
      code: typeof e.code === 'number' ? e.code : -1,
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? e.message,
    };
  }
}

/** `npm` next to the running node (CI runs this file on Node 20 and on Node 26). */
const NPM = 'npm';
const NODE = process.execPath;

describe('npm package (pack, install, run)', { timeout: 300_000 }, () => {
  let dir = '';
  let project = '';
  let installed = '';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keepwire-pack-'));
    // The build already ran (this file is in dist/); `prepare` would run tsc a second time.
    const packed = await sh(NPM, ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], ROOT);
    assert.equal(packed.code, 0, packed.stderr);
    const [{ filename }] = JSON.parse(packed.stdout) as [{ filename: string }];
    project = join(dir, 'project');
    mkdirSync(project);
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({ name: 'scratch', private: true, type: 'module' }),
    );
    // The dependencies are in the npm cache after the repository's own `npm ci`: no network needed.
    const install = await sh(
      NPM,
      ['install', join(dir, filename), '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund'],
      project,
      180_000,
    );
    assert.equal(install.code, 0, install.stderr);
    installed = join(project, 'node_modules', 'keepwire');
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('ships what a user needs and nothing of the repository', () => {
    const pkg = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { version: string };
    const have = (path: string) => {
      try {
        readFileSync(join(installed, path));
        return true;
      } catch {
        return false;
      }
    };
    for (const path of [
      'README.md',
      'LICENSE',
      'man/keepwire.1',
      'packaging/keepwire.service',
      'dist/src/index.d.ts',
    ])
      assert.ok(have(path), `${path} is in the package`);
    for (const path of ['src/index.ts', 'dist/test/support.js', 'dist/src/index.js.map', 'tsconfig.json'])
      assert.ok(!have(path), `${path} is not in the package`);
    assert.match(pkg.version, /^\d+\.\d+\.\d+/);
  });

  it('npx keepwire --help and keepwire check -c run from the installed package', async () => {
    const help = await sh('npx', ['--offline', 'keepwire', '--help'], project);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^Usage: keepwire /m);
    assert.match(help.stdout, /\bserve\b/);
    const check = await sh(
      'npx',
      ['--offline', 'keepwire', 'check', '-c', 'node_modules/keepwire/examples/keepwire.conf'],
      project,
    );
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /syntax is ok, test is successful/);
  });

  it('koffi works without its install script: libc setsockopt through the installed package', async () => {
    // Forces the koffi backend (Node 26 has a native one) and reads the value back from the kernel.
    const script = `
      import net from 'node:net';
      import { applyKeepaliveVia, readKeepalive } from 'keepwire';
      const server = net.createServer((s) => s.destroy()).listen(0, '127.0.0.1', () => {
        const socket = net.connect(server.address().port, '127.0.0.1', () => {
          applyKeepaliveVia(socket, { enable: true, idle: 7, interval: 3, count: 4 }, 'ffi');
          const state = readKeepalive(socket);
          console.log(JSON.stringify(state));
          socket.destroy(); server.close();
        });
      });`;
    const ran = await sh(NODE, ['--input-type=module', '-e', script], project);
    assert.equal(ran.code, 0, ran.stderr);
    const state = JSON.parse(ran.stdout) as {
      enabled: boolean;
      idle: number;
      interval: number;
      count: number;
    };
    assert.deepEqual(
      { enabled: state.enabled, idle: state.idle, interval: state.interval, count: state.count },
      { enabled: true, idle: 7, interval: 3, count: 4 },
    );
  });

  it('imports from ESM and from CommonJS (require of keepwire and keepwire/config)', async () => {
    const esm = await sh(
      NODE,
      [
        '--input-type=module',
        '-e',
        `import { recommend, configureServer, pgPreset } from 'keepwire'; import { parseConfigText } from 'keepwire/config';
         import http from 'node:http';
         if (configureServer(http.createServer(), { lbIdle: 90 }).kind !== 'http1' || !pgPreset({ lbIdle: 90 }).keepAlive) process.exit(3);
         console.log(recommend(90).soKeepalive, parseConfigText('stream { }').diagnostics.length);`,
      ],
      project,
    );
    assert.equal(esm.code, 0, esm.stderr);
    assert.match(esm.stdout, /^\d+s?:\d+s?:\d+ 0$/m);
    writeFileSync(
      join(project, 'use.cjs'),
      `const { recommend, parseSoKeepalive } = require('keepwire');
       const { parseConfigText } = require('keepwire/config');
       const version = require('keepwire/package.json').version;
       console.log(recommend(90).soKeepalive, parseSoKeepalive('30s:10s:3').ok, parseConfigText('stream { }').diagnostics.length, typeof version);`,
    );
    // A module with top-level await in the graph fails here with ERR_REQUIRE_ASYNC_MODULE.
    const cjs = await sh(NODE, ['use.cjs'], project);
    assert.equal(cjs.code, 0, cjs.stderr);
    assert.match(cjs.stdout, /^\d+s?:\d+s?:\d+ true 0 string$/m);
    assert.doesNotMatch(cjs.stderr, /ExperimentalWarning/, 'require(esm) from node_modules is silent');
  });

  it('the library entry points do not load the CLI dependencies (commander, pino)', () => {
    const bare = new Set<string>();
    const seen = new Set<string>();
    const walk = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = readFileSync(file, 'utf8');
      const specifiers = [
        ...text.matchAll(/^\s*(?:import|export)\b[^'"]*?\bfrom\s*['"]([^'"]+)['"]/gm),
        ...text.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm),
        ...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g),
        ...text.matchAll(/\)\(\s*['"]([^'"]+)['"]\s*\)/g), // createRequire(import.meta.url)('koffi')
      ].map((m) => m[1] as string);
      for (const specifier of specifiers) {
        if (specifier.startsWith('.')) walk(resolve(dirname(file), specifier));
        else if (!specifier.startsWith('node:')) bare.add(specifier.split('/')[0] as string);
      }
    };
    walk(join(installed, 'dist/src/index.js'));
    walk(join(installed, 'dist/src/config/index.js'));
    assert.ok(seen.size > 5, `followed the import graph (${seen.size} modules)`);
    assert.deepEqual(
      [...bare].filter((name) => name === 'commander' || name === 'pino'),
      [],
      `library imports: ${[...bare].join(', ')}`,
    );
  });

  it('types resolve and compile under strict with NodeNext, from ESM and CommonJS sources', async () => {
    // The compiler and Node's types from the repository: the user's project brings its own.
    mkdirSync(join(project, 'node_modules', '@types'), { recursive: true });
    symlinkSync(
      join(ROOT, 'node_modules', '@types', 'node'),
      join(project, 'node_modules', '@types', 'node'),
    );
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2022',
          types: ['node'],
          noEmit: true,
          noUncheckedIndexedAccess: true,
        },
        files: ['use.ts', 'use.cts'],
      }),
    );
    writeFileSync(
      join(project, 'use.ts'),
      `import { createServer } from 'node:net';
       import { applyKeepalive, type KeepaliveSpec, parseSoKeepalive, recommend } from 'keepwire';
       import { type Config, parseConfigText } from 'keepwire/config';
       const parsed = parseSoKeepalive('30s:10s:3');
       const spec: KeepaliveSpec | undefined = parsed.ok ? parsed.value : undefined;
       const idle: number = recommend(90).keepalive.idle;
       const config: Config | undefined = parseConfigText('stream { }').config;
       createServer((socket) => applyKeepalive(socket, { enable: true, idle, interval: 10, count: 3 }));
       export { config, spec };`,
    );
    writeFileSync(
      join(project, 'use.cts'),
      `import keepwire = require('keepwire');
       const idle: number = keepwire.recommend(90).keepalive.idle;
       export = idle;`,
    );
    const tsc = await sh(NODE, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], project);
    assert.equal(tsc.code, 0, tsc.stdout + tsc.stderr);
    // And the compiler does check: a wrong use is an error.
    writeFileSync(
      join(project, 'use.cts'),
      `import keepwire = require('keepwire');\nconst idle: string = keepwire.recommend(90).keepalive.idle;\nexport = idle;\n`,
    );
    const bad = await sh(NODE, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], project);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stdout, /use\.cts.*TS2322/);
  });
});
