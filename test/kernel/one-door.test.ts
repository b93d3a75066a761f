/**
 * The kernel and Node's private APIs have one door each: koffi is loaded
 * only by src/kernel/libc.ts, `_handle`/`_parent`/`process.binding` are
 * touched only by src/kernel/node-internals.ts, and on the Node running the
 * tests every internal listed there is available (CI runs Node 20 and 26: a
 * release that takes one away fails here, by name).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { errnoName, fdOf, nodeInternals, readTcpInfo } from '../../src/kernel/index.js';
import { ROOT } from '../support.js';

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Files of src/ whose code (comments removed) matches `pattern`. */
function filesUsing(pattern: RegExp): string[] {
  return sources(join(ROOT, 'src'))
    .filter((file) => {
      const code = readFileSync(file, 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/^\s*\/\/.*$/gm, '');
      return pattern.test(code);
    })
    .map((file) => relative(ROOT, file));
}

test('koffi is loaded in one place: src/kernel/libc.ts', () => {
  assert.deepEqual(filesUsing(/['"]koffi['"]/), ['src/kernel/libc.ts']);
});

test("Node's private socket fields and bindings are used in one place: src/kernel/node-internals.ts", () => {
  assert.deepEqual(filesUsing(/\._handle\b|\._parent\b|process\.binding\b|kBuffer/), [
    'src/kernel/node-internals.ts',
  ]);
});

test('no node:test import in shipped code', () => {
  assert.deepEqual(filesUsing(/from ['"]node:test['"]/), []);
});

test(`Node ${process.version}: every private API keepwire uses is available (no fallback in use)`, async (t) => {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const client = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
  await once(client, 'connect');
  const [peer] = (await accepted) as [net.Socket];
  t.after(() => {
    client.destroy();
    peer.destroy();
    server.close();
  });
  for (const sample of [undefined, { connected: client }, { connected: peer }]) {
    const report = nodeInternals(sample);
    assert.equal(report.length, 7);
    for (const i of report)
      assert.ok(i.available, `${i.name} (${i.usedBy}): ${i.detail}; fallback: ${i.fallback}`);
  }
});

test('tcp_info of a live connection: established, data timestamps, an RTT', async (t) => {
  const server = net.createServer((s) => s.pipe(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
  t.after(() => {
    client.destroy();
    server.close();
  });
  await once(client, 'connect');
  client.write('x');
  await once(client, 'data');
  const info = readTcpInfo(fdOf(client));
  assert.equal(info.state, 1, 'TCP_ESTABLISHED');
  assert.equal(info.unacked, 0);
  assert.ok(info.rttUs > 0, `rtt ${info.rttUs} us`);
  // Both just happened: well under the 10 s a loaded machine could add.
  assert.ok(info.lastDataSentMs < 10_000 && info.lastDataRecvMs < 10_000, JSON.stringify(info));
});

test('errno numbers are named from the platform table', () => {
  assert.equal(errnoName(22), process.platform === 'linux' ? 'EINVAL' : errnoName(22));
  assert.equal(errnoName(1), 'EPERM');
  assert.equal(errnoName(123456), 'errno 123456');
});
