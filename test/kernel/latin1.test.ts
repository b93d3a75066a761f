/**
 * The Latin-1 head codecs of kernel/node-internals.ts: the same strings and
 * bytes as `toString('latin1')`/`write(…, 'latin1')`, on this Node's
 * `latin1Slice`/`latin1Write` and on the fallback a Node without them gets.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { latin1Slice, latin1Write, nodeInternals } from '../../src/kernel/node-internals.js';

const INTERNALS = fileURLToPath(new URL('../../src/kernel/node-internals.js', import.meta.url));

/** Every byte value, a head, the edges: what both codecs must agree on with Buffer's own. */
function check(slice: typeof latin1Slice, write: typeof latin1Write): void {
  const all = Buffer.alloc(256);
  for (let i = 0; i < 256; i++) all[i] = i;
  assert.equal(slice(all, 0, 256), all.toString('latin1'));
  assert.equal(slice(all, 10, 20), all.toString('latin1', 10, 20));
  assert.equal(slice(all, 7, 7), '');
  assert.equal(slice(all, 250, 256), all.toString('latin1', 250, 256));
  const head = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-\u00e9t\u00e9: caf\u00e9\r\n\r\n';
  const a = Buffer.alloc(80, 0x2e);
  const b = Buffer.alloc(80, 0x2e);
  assert.equal(write(a, head, 3), b.write(head, 3, 'latin1'));
  assert.deepEqual(a, b);
  // A string longer than the room left is cut at the end of the Buffer, as write does.
  const c = Buffer.alloc(8);
  const d = Buffer.alloc(8);
  assert.equal(write(c, head, 4), d.write(head, 4, 'latin1'));
  assert.deepEqual(c, d);
}

test("latin1Slice/latin1Write match Buffer's toString/write for 'latin1'", () => {
  check(latin1Slice, latin1Write);
  const entry = nodeInternals().find((i) => i.name.startsWith('Buffer.prototype.latin1Slice'));
  assert.ok(entry?.available, entry?.detail);
});

test('without latin1Slice/latin1Write on Buffer.prototype, the fallback gives the same bytes', async () => {
  // A child Node where both methods read as missing while node-internals
  // loads (and work again afterwards: Buffer's own toString calls them).
  const script = `
    const proto = Buffer.prototype;
    const saved = { latin1Slice: proto.latin1Slice, latin1Write: proto.latin1Write };
    let hidden = true;
    for (const name of Object.keys(saved))
      Object.defineProperty(proto, name, { configurable: true, get: () => (hidden ? undefined : saved[name]) });
    const m = await import(${JSON.stringify(INTERNALS)});
    hidden = false;
    const entry = m.nodeInternals().find((i) => i.name.startsWith('Buffer.prototype.latin1Slice'));
    const buf = Buffer.alloc(6);
    const n = m.latin1Write(buf, 'caf\\u00e9', 1);
    console.log(JSON.stringify({ available: entry.available, detail: entry.detail, n, bytes: [...buf], text: m.latin1Slice(buf, 1, 5) }));
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]);
  assert.deepEqual(JSON.parse(stdout), {
    available: false,
    detail: 'Buffer.prototype has no latin1Slice, latin1Write',
    n: 4,
    bytes: [0, 0x63, 0x61, 0x66, 0xe9, 0],
    text: 'caf\u00e9',
  });
});
