/**
 * The model's records are plain objects with V8's fast properties: the
 * proxy reads a location's and a server's fields on every request, and a
 * record left in dictionary mode (what filling 30-odd fields by computed
 * name does) costs a hash lookup per read. Issue #20 measured it at about
 * 5 % of a proxied request's instructions.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { DiagnosticList } from '../../src/config/diagnostics.js';
import { type RecordKind, recordDefaults } from '../../src/config/directives.js';
import { parseConfigText } from '../../src/config/index.js';
import { nginxModel } from '../../src/config/nginx-dialect.js';
import { parseText } from '../../src/config/parser.js';

setFlagsFromString('--allow-natives-syntax');
// Compiled after the flag is set: V8's own answer, not a guess from timing.
const hasFastProperties = new Function('o', 'return %HasFastProperties(o)') as (o: object) => boolean;

const CONFIG = `
worker_processes 1;
stream {
  upstream db { server 127.0.0.1:5432; }
  server { listen 127.0.0.1:15432; proxy_pass db; }
}
http {
  upstream app { server 127.0.0.1:8081; keepalive 16; }
  server {
    listen 127.0.0.1:8080;
    location / { proxy_pass http://app; proxy_http_version 1.1; }
    location /b { proxy_pass http://127.0.0.1:8082; }
  }
}
`;

function records(config: Record<string, unknown>): [string, object][] {
  const out: [string, object][] = [['config', config]];
  const http = config.http as { servers: { locations: object[] }[]; upstreams?: object[] } | undefined;
  const stream = config.stream as { servers: object[] } | undefined;
  for (const [i, s] of (http?.servers ?? []).entries()) {
    out.push([`http server ${i}`, s]);
    for (const [j, l] of s.locations.entries()) out.push([`http server ${i} location ${j}`, l]);
  }
  for (const [i, u] of (http?.upstreams ?? []).entries()) out.push([`http upstream ${i}`, u]);
  for (const [i, s] of (stream?.servers ?? []).entries()) out.push([`stream server ${i}`, s]);
  return out;
}

describe('model records have fast properties', () => {
  it('records built from a keepwire configuration', () => {
    const r = parseConfigText(CONFIG);
    assert.ok(r.config, JSON.stringify(r.diagnostics));
    const found = records(r.config as unknown as Record<string, unknown>);
    assert.ok(found.length >= 6, `found ${found.map(([n]) => n).join(', ')}`);
    // The check can fail: a record filled by computed names is in dictionary mode.
    const slow: Record<string, unknown> = {};
    for (let i = 0; i < 40; i++) slow[`field${i}`] = i;
    assert.equal(hasFastProperties(slow), false, 'the probe tells a dictionary-mode object');
    for (const [name, record] of found) assert.ok(hasFastProperties(record), `${name} is in dictionary mode`);
  });

  it('records of an nginx configuration (doctor --nginx)', () => {
    const diags = new DiagnosticList();
    const ast = parseText(CONFIG, 'nginx.conf', diags);
    assert.deepEqual(diags.items, []);
    const config = nginxModel(ast.directives, 'nginx.conf').config;
    for (const [name, record] of records(config as unknown as Record<string, unknown>).slice(1))
      assert.ok(hasFastProperties(record), `${name} is in dictionary mode`);
  });

  it('table defaults of every record kind', () => {
    for (const kind of ['location', 'http_server', 'stream_server', 'http_upstream'] as RecordKind[])
      assert.ok(hasFastProperties(recordDefaults(kind)), `${kind} defaults are in dictionary mode`);
  });
});
