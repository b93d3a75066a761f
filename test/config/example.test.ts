/** examples/keepwire.conf (pointed to by the README) checks clean and means exactly this. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { ROOT } from './support.js';

const EXAMPLE = path.join(ROOT, 'examples', 'keepwire.conf');

const ka = { enable: true, idle: 120, interval: 15, count: 5 };

describe('examples/keepwire.conf', () => {
  const r = loadConfig(EXAMPLE);

  it('checks clean: no error, no warning', () => {
    assert.deepEqual(r.diagnostics, []);
  });

  it('reads into the model with these exact values', () => {
    const c = r.config!;
    assert.equal(c.file, EXAMPLE);
    assert.equal(c.lbIdleTimeoutMs, 350_000);
    assert.equal(c.shutdownTimeoutMs, 20_000);
    assert.equal(c.workerConnections, 2048);

    const stream = c.stream!;
    const db = stream.upstreams.get('db')!;
    assert.deepEqual(db.balancing, { kind: 'least_conn' });
    assert.deepEqual(
      db.servers.map((s) => [
        s.address.text,
        s.weight,
        s.maxFails,
        s.failTimeoutMs,
        s.maxConns,
        s.backup,
        s.down,
      ]),
      [
        ['127.0.0.1:5433', 1, 3, 10_000, 0, false, false],
        ['127.0.0.1:5434', 1, 3, 10_000, 200, false, false],
        ['127.0.0.1:5435', 1, 1, 10_000, 0, true, false],
      ],
    );
    const [pg, redis] = stream.servers;
    assert.deepEqual(
      pg!.listens.map(({ source: _, ...l }) => l),
      [
        {
          address: { host: '127.0.0.1', port: 6432, text: '127.0.0.1:6432' },
          soKeepalive: ka,
          backlog: 1024,
          reuseport: false,
        },
      ],
    );
    const { listens: _l, source: _s, ...pgAll } = pg!;
    // The example has no TLS: those fields are the defaults (directives.test.ts checks them).
    const pgRest = Object.fromEntries(Object.entries(pgAll).filter(([k]) => !/^(ssl|proxySsl)/.test(k)));
    assert.deepEqual(pgRest, {
      proxyPass: { kind: 'group', name: 'db' },
      proxyTimeoutMs: 1_800_000,
      proxyConnectTimeoutMs: 5000,
      proxySocketKeepalive: ka,
      proxyNextUpstream: true,
      proxyNextUpstreamTries: 2,
      proxyNextUpstreamTimeoutMs: 10_000,
      resetTimedoutConnection: true,
      accessLog: true,
      lbIdleTimeoutMs: 350_000,
      lbKind: 'l4',
    });
    assert.deepEqual(redis!.proxyPass, {
      kind: 'address',
      address: { host: '127.0.0.1', port: 6379, text: '127.0.0.1:6379' },
    });
    assert.equal(redis!.proxyTimeoutMs, 300_000);
    assert.equal(redis!.proxyConnectTimeoutMs, 5000, 'inherited from stream');
    assert.equal(redis!.resetTimedoutConnection, false);

    const http = c.http!;
    const { servers, source: _us, ...app } = http.upstreams.get('app')!;
    assert.deepEqual(app, {
      name: 'app',
      balancing: { kind: 'round_robin' },
      keepalive: 32,
      keepaliveTimeoutMs: 50_000,
      keepaliveRequests: 1000,
      keepaliveTimeMs: 3_600_000,
    });
    assert.deepEqual(
      servers.map((s) => [s.address.text, s.address.port, s.weight, s.keepaliveTimeoutMs]),
      [
        ['127.0.0.1:3000', 3000, 2, 65_000],
        ['127.0.0.1:3001', 3001, 1, 65_000],
      ],
    );
    assert.equal(http.servers.length, 1);
    const web = http.servers[0]!;
    assert.deepEqual(web.serverNames, ['app.example.com', 'www.example.com']);
    assert.equal(web.keepaliveTimeoutMs, 360_000);
    assert.equal(web.keepaliveHeaderTimeoutMs, undefined);
    assert.equal(web.clientMaxBodySize, 8 * 1024 * 1024);
    assert.equal(web.lbIdleTimeoutMs, 350_000);
    assert.deepEqual(web.listens[0]!.soKeepalive, ka);
    assert.deepEqual(
      web.locations.map((l) => ({
        prefix: l.prefix,
        pass: l.proxyPass?.text,
        ret: l.returnDirective,
        version: l.proxyHttpVersion,
        read: l.proxyReadTimeoutMs,
        headers: l.proxySetHeaders,
        keepalive: l.proxySocketKeepalive,
        next: l.proxyNextUpstream,
      })),
      [
        {
          prefix: '/',
          pass: 'http://app',
          ret: undefined,
          version: '1.1',
          read: 300_000,
          headers: [
            { name: 'Connection', value: '' },
            { name: 'X-Forwarded-For', value: '$remote_addr' },
          ],
          keepalive: ka,
          next: ['error', 'timeout', 'http_502'],
        },
        {
          prefix: '/reports/',
          pass: 'http://app',
          ret: undefined,
          version: '1.1',
          read: 900_000,
          headers: [{ name: 'Connection', value: '' }],
          keepalive: ka,
          next: ['error', 'timeout'],
        },
        {
          prefix: '/healthz',
          pass: undefined,
          ret: { code: 200, text: 'ok\n' },
          version: '1.0',
          read: 60_000,
          headers: [],
          keepalive: { enable: false },
          next: ['error', 'timeout'],
        },
      ],
    );
  });

  it('turns each documented hazard on when its fix is removed', () => {
    // Guards the example's comments: the settings it explains are the ones that keep it clean.
    const text = r.sources.get(EXAMPLE)!;
    const without = (from: string, to: string) => {
      assert.ok(text.includes(from), from);
      return loadConfigText(text.replace(from, to));
    };
    assert.ok(
      without('keepalive_timeout 360s;', 'keepalive_timeout 75s;').includes(
        'hazard-keepalive-timeout-below-lb',
      ),
    );
    assert.ok(
      without('keepalive_timeout 50s;', 'keepalive_timeout 70s;').includes(
        'hazard-upstream-keepalive-timeout',
      ),
    );
    assert.ok(
      without('listen 127.0.0.1:8080 so_keepalive=120s:15s:5;', 'listen 127.0.0.1:8080;').includes(
        'hazard-listener-without-keepalive',
      ),
    );
  });
});

import { parseConfigText } from '../../src/config/index.js';

function loadConfigText(text: string): string[] {
  return parseConfigText(text, EXAMPLE).diagnostics.map((d) => d.code);
}
