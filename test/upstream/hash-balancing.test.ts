import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileKey } from '../../src/upstream/selection.js';
import { srv, tally, upstream } from './fixtures.js';

const addr = (i: number) => ({
  remote_addr: `192.168.${(i >> 8) & 255}.${i & 255}`,
  remote_port: String(40_000 + (i % 1000)),
});

// biome-ignore lint/suspicious/noTemplateCurlyInString: nginx variable syntax, not a JS template
test('hash key templates expand $var and ${var}; unknown variables are empty', () => {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: nginx variable syntax
  const k = compileKey('$remote_addr:${remote_port}-$nope');
  assert.equal(k({ remote_addr: '1.2.3.4', remote_port: '99' }), '1.2.3.4:99-');
  assert.equal(compileKey('static')({}), 'static');
});

for (const consistent of [false, true]) {
  const kind = consistent ? 'consistent hash' : 'hash';

  test(`${kind} $remote_addr: the same client always reaches the same server`, () => {
    const u = upstream([srv(1), srv(2), srv(3), srv(4)], { kind: 'hash', key: '$remote_addr', consistent });
    for (let i = 0; i < 200; i++) {
      const first = u.pick(addr(i))!.address.port;
      for (let j = 0; j < 5; j++)
        assert.equal(u.pick({ ...addr(i), remote_port: String(j) })!.address.port, first);
    }
  });

  test(`${kind}: 10k clients spread over weights 2:1:1 within tolerance`, () => {
    const u = upstream([srv(1, { weight: 2 }), srv(2), srv(3)], {
      kind: 'hash',
      key: '$remote_addr',
      consistent,
    });
    const counts = tally(u, 10_000, addr);
    const share = (p: number) => (counts.get(p) ?? 0) / 10_000;
    assert.ok(Math.abs(share(10_001) - 0.5) < 0.08, `server 1 got ${share(10_001)}`);
    assert.ok(Math.abs(share(10_002) - 0.25) < 0.08, `server 2 got ${share(10_002)}`);
    assert.ok(Math.abs(share(10_003) - 0.25) < 0.08, `server 3 got ${share(10_003)}`);
  });

  test(`${kind}: a client whose server is down goes elsewhere, and comes back when it returns`, () => {
    const servers = [srv(1), srv(2), srv(3)];
    const u = upstream(servers, { kind: 'hash', key: '$remote_addr', consistent });
    const home = u.pick(addr(7))!;
    home.health.failure(0); // ejected until 10 s
    const away = u.pick(addr(7), new Set(), 1000)!;
    assert.notEqual(away, home);
    assert.equal(u.pick(addr(7), new Set(), 20_000), home);
  });
}

test('consistent hash: removing one of 5 servers remaps about 1/5 of keys, and only its keys', () => {
  const servers = [srv(1), srv(2), srv(3), srv(4), srv(5)];
  const before = upstream(servers, { kind: 'hash', key: '$remote_addr', consistent: true });
  const after = upstream(servers.slice(0, 4), { kind: 'hash', key: '$remote_addr', consistent: true });
  let moved = 0;
  const n = 10_000;
  for (let i = 0; i < n; i++) {
    const a = before.pick(addr(i))!.address.port;
    const b = after.pick(addr(i))!.address.port;
    if (a !== b) {
      moved++;
      assert.equal(a, 10_005, 'only keys of the removed server may move');
    }
  }
  assert.ok(moved / n > 0.1 && moved / n < 0.3, `moved ${moved / n}`);
});

test('plain hash (not consistent) remaps most keys on removal, which is why consistent exists', () => {
  const servers = [srv(1), srv(2), srv(3), srv(4), srv(5)];
  const before = upstream(servers, { kind: 'hash', key: '$remote_addr', consistent: false });
  const after = upstream(servers.slice(0, 4), { kind: 'hash', key: '$remote_addr', consistent: false });
  let moved = 0;
  for (let i = 0; i < 2000; i++)
    if (before.pick(addr(i))!.address.port !== after.pick(addr(i))!.address.port) moved++;
  assert.ok(moved / 2000 > 0.5, `moved ${moved / 2000}`);
});
