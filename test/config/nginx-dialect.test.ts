/**
 * nginx's dialect (config/nginx-dialect.ts): real nginx blocks read through
 * the directive table's parsers, defaults and merge, tolerant of what nginx
 * has and keepwire does not.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DiagnosticList } from '../../src/config/diagnostics.js';
import { D } from '../../src/config/directives.js';
import {
  nginxListen,
  nginxModel,
  nginxProxyTarget,
  nginxSetting,
  nginxSocketKey,
} from '../../src/config/nginx-dialect.js';
import { type DirectiveNode, parseText } from '../../src/config/parser.js';

/** The chain http → server → location (outermost first) of the first location of `text`. */
function chain(text: string): DirectiveNode[] {
  const diags = new DiagnosticList();
  const ast = parseText(text, 'nginx.conf', diags);
  assert.deepEqual(diags.items, []);
  const http = ast.directives.find((d) => d.name === 'http')!;
  const server = http.children!.find((d) => d.name === 'server')!;
  const location = server.children!.find((d) => d.name === 'location')!;
  return [http, server, location];
}

describe('nginx dialect: settings through the directive table', () => {
  it('inherits from the innermost level, ignoring directives keepwire does not know', () => {
    const c = chain(
      'http { sendfile on; proxy_read_timeout 5m; server { ssl_certificate x.pem; location / { gzip on; proxy_pass http://a/; } } }',
    );
    const read = nginxSetting<number>(c, D.proxyReadTimeout, 'location', 'proxyReadTimeoutMs');
    assert.equal(read.value, 300_000);
    assert.equal(read.node?.line, 1);
    assert.equal(read.node?.name, 'proxy_read_timeout');
  });

  it("the table's default when nothing sets it, with no node", () => {
    const c = chain('http { server { location / { proxy_pass http://a; } } }');
    const read = nginxSetting<number>(c, D.proxyReadTimeout, 'location', 'proxyReadTimeoutMs');
    assert.deepEqual(read, { value: 60_000 });
  });

  it('grpc_read_timeout read as proxy_read_timeout under its own name', () => {
    const c = chain('http { grpc_read_timeout 2h; server { location / { grpc_pass grpc://a; } } }');
    const name = 'grpc_read_timeout';
    const read = nginxSetting<number>(c, D.proxyReadTimeout, 'location', 'proxyReadTimeoutMs', name);
    assert.equal(read.value, 7_200_000);
  });

  it('proxy_set_header: a level that sets any inherits none (nginx arrays)', () => {
    const c = chain(
      'http { proxy_set_header Connection ""; server { location / { proxy_set_header Host $host; } } }',
    );
    const headers = nginxSetting<{ name: string }[]>(c, D.proxySetHeader, 'location', 'proxySetHeaders');
    assert.deepEqual(
      headers.value.map((h) => h.name),
      ['Host'],
    );
  });

  it('proxy_socket_keepalive takes on|off only; a keepwire spec is not nginx and is ignored', () => {
    const on = chain('http { proxy_socket_keepalive on; server { location / { } } }');
    const spec = (c: DirectiveNode[]) =>
      nginxSetting(c, D.httpProxySocketKeepalive, 'location', 'proxySocketKeepalive').value;
    assert.deepEqual(spec(on), { enable: true });
    const keepwireOnly = chain('http { proxy_socket_keepalive 30s:5s:3; server { location / { } } }');
    assert.deepEqual(spec(keepwireOnly), { enable: false });
  });

  it('a value nginx -t would refuse is ignored, not fatal', () => {
    const c = chain('http { proxy_read_timeout 5m; server { location / { proxy_read_timeout soon; } } }');
    assert.equal(
      nginxSetting<number>(c, D.proxyReadTimeout, 'location', 'proxyReadTimeoutMs').value,
      300_000,
    );
  });
});

describe('nginx dialect: proxy_pass targets keepwire refuses', () => {
  const groups = new Set(['app']);

  it('upstream names with a URI part; any scheme; the scheme default port', () => {
    assert.deepEqual(nginxProxyTarget('http://app/api/', groups), { kind: 'group', name: 'app' });
    assert.deepEqual(nginxProxyTarget('app', groups), { kind: 'group', name: 'app' });
    assert.deepEqual(nginxProxyTarget('https://10.0.0.1/x?y', groups), {
      kind: 'address',
      address: { host: '10.0.0.1', port: 443, text: '10.0.0.1' },
    });
    assert.deepEqual(nginxProxyTarget('grpc://[::1]:50051', groups), {
      kind: 'address',
      address: { host: '::1', port: 50051, text: '[::1]:50051' },
    });
    // A port makes it an address, not the upstream block.
    assert.equal(nginxProxyTarget('http://app:8080', groups)?.kind, 'address');
  });

  it('unix sockets are an address on this host; variables are known only at run time', () => {
    assert.deepEqual(nginxProxyTarget('http://unix:/run/app.sock:/api', groups), {
      kind: 'address',
      address: { host: 'unix:/run/app.sock:/api', port: 0, text: 'unix:/run/app.sock:/api' },
    });
    assert.equal(nginxProxyTarget('http://$backend/api', groups), undefined);
    assert.equal(nginxProxyTarget('http://', groups), undefined);
  });
});

describe('nginx dialect: listen with parameters keepwire refuses', () => {
  it('ssl, http2, default_server and proxy_protocol are kept for the fix; so_keepalive read in nginx form', () => {
    const l = nginxListen(['443', 'ssl', 'http2', 'default_server', 'proxy_protocol', 'so_keepalive=60s::']);
    assert.deepEqual(l.address, { host: '0.0.0.0', port: 443, text: '443' });
    assert.deepEqual(l.params, ['ssl', 'http2', 'default_server', 'proxy_protocol']);
    assert.deepEqual(l.soKeepalive, {
      arg: 5,
      text: '60s::',
      valueOffset: 13,
      parsed: { ok: true, enable: true, idle: 60, interval: 0, count: 0 },
    });
    assert.equal(l.commaArg, undefined);
  });

  it("the seed's comma: the address without it, the comma's argument, so_keepalive still found", () => {
    const l = nginxListen(['80,', 'so_keepalive=60s::']);
    assert.equal(l.addressText, '80');
    assert.equal(l.commaArg, 0);
    assert.equal(l.soKeepalive?.text, '60s::');
  });

  it('80, *:80 and 0.0.0.0:80 are one socket; a unix socket has no address', () => {
    const keys = ['80', '*:80', '0.0.0.0:80'].map((a) => nginxSocketKey(nginxListen([a])));
    assert.deepEqual(new Set(keys), new Set(['0.0.0.0:80']));
    assert.equal(nginxListen(['unix:/run/nginx.sock']).address, undefined);
  });
});

describe('nginx dialect: the model the hazard engine runs on (doctor --nginx)', () => {
  function model(text: string, nginxVersion?: string) {
    const diags = new DiagnosticList();
    const ast = parseText(text, 'nginx.conf', diags);
    assert.deepEqual(diags.items, []);
    return nginxModel(ast.directives, 'nginx.conf', nginxVersion ? { nginxVersion } : {});
  }

  it('a grpc_pass location reads grpc_read_timeout and grpc_socket_keepalive, not the proxy_ ones', () => {
    const m = model(
      'http { proxy_read_timeout 5m; proxy_socket_keepalive on; server { listen 80; location / { grpc_pass grpc://10.0.0.1:50051; grpc_read_timeout 2h; } } }',
    );
    const [location] = m.config.http!.servers[0]!.locations;
    assert.equal(location!.proxyReadTimeoutMs, 7_200_000);
    assert.deepEqual(location!.proxySocketKeepalive, { enable: false });
    assert.equal(m.locations.get(location!)!.kind, 'grpc');
  });

  it('nested locations and if blocks are locations that inherit from the enclosing one', () => {
    const m = model(
      'http { server { listen 80; location /a { proxy_read_timeout 90s; location /a/b { if ($x) { proxy_pass http://10.0.0.2; } } } } }',
    );
    const locations = m.config.http!.servers[0]!.locations;
    assert.deepEqual(
      locations.map((l) => [l.prefix, l.proxyReadTimeoutMs, l.proxyPass?.text ?? '']),
      [
        ['/a', 90_000, ''],
        ['/a/b', 90_000, ''],
        ['($x)', 90_000, 'http://10.0.0.2'],
      ],
    );
  });

  it('proxy_http_version defaults to 1.0 before nginx 1.29.7 and to 1.1 from it', () => {
    const text = 'http { server { listen 80; location / { proxy_pass http://10.0.0.3; } } }';
    assert.equal(model(text, '1.22.1').config.http!.servers[0]!.locations[0]!.proxyHttpVersion, '1.0');
    assert.equal(model(text, '1.29.7').config.http!.servers[0]!.locations[0]!.proxyHttpVersion, '1.1');
  });

  it('a so_keepalive field the kernel refuses is left to the kernel; an invalid one is marked', () => {
    const m = model(
      'stream { server { listen 5432 so_keepalive=40000s:10s:3; listen 5433 so_keepalive=::; proxy_pass 10.0.0.4:5432; } }',
    );
    const [refused, invalid] = m.config.stream!.servers[0]!.listens;
    assert.deepEqual(refused!.soKeepalive, { enable: true, interval: 10, count: 3 });
    assert.equal(m.listens.get(invalid!)!.invalid, true);
  });
});
