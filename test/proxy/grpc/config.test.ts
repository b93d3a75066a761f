/**
 * grpc_pass and the grpc_* directives in the model: the grpc_* twins of the
 * proxy_* family are read in grpc_pass locations in place of them (a
 * proxy_read_timeout at http level does not reach a grpc_pass location, as
 * in nginx, where each module has its own), grpcs:// takes grpc_ssl_*, and
 * `check` warns when the PING keepalive is tighter than what gRPC servers
 * accept by default, naming the server-side settings to relax.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfigText } from '../../../src/config/index.js';

function load(http: string) {
  const r = parseConfigText(`http {\n${http}\n}\n`, 'grpc.conf');
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  const warnings = r.diagnostics.filter((d) => d.severity === 'warning');
  return { config: r.config, errors, warnings };
}

describe('grpc_pass and grpc_* in the model', () => {
  it('takes grpc://group, grpcs://address and a bare address; the scheme says which', () => {
    const { config, errors } = load(`
      upstream orders { server 127.0.0.1:50051; }
      server {
        listen 127.0.0.1:8080;
        http2 on;
        location /a/ { grpc_pass grpc://orders; }
        location /b/ { grpc_pass grpcs://10.0.0.5; grpc_ssl_verify on; }
        location /c/ { grpc_pass 127.0.0.1:50052; }
      }`);
    assert.deepEqual(errors, []);
    const [a, b, c] = config!.http!.servers[0]!.locations;
    assert.deepEqual(a!.proxyPass, {
      scheme: 'grpc',
      target: { kind: 'group', name: 'orders' },
      text: 'grpc://orders',
    });
    assert.equal(b!.proxyPass?.scheme, 'grpcs');
    assert.deepEqual(b!.proxyPass?.target, {
      kind: 'address',
      address: { host: '10.0.0.5', port: 443, text: '10.0.0.5' },
    });
    assert.equal(b!.proxySslVerify, true);
    assert.equal(c!.proxyPass?.scheme, 'grpc');
  });

  it('refuses other schemes and a URI part, with the hint', () => {
    const { errors } = load(`
      server { listen 127.0.0.1:8080; location / { grpc_pass http://127.0.0.1:1; } }`);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /grpc_pass "http:\/\/127.0.0.1:1" takes a grpc:\/\/ or grpcs:\/\/ URL/);
    const uri = load(`server { listen 127.0.0.1:8080; location / { grpc_pass grpc://127.0.0.1:1/pkg; } }`);
    assert.match(uri.errors[0]!.message, /URI part/);
  });

  it('a location with both proxy_pass and grpc_pass is refused', () => {
    const { errors } = load(`
      server { listen 127.0.0.1:8080; location / { proxy_pass http://127.0.0.1:1; grpc_pass grpc://127.0.0.1:2; } }`);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /has both "proxy_pass" and "grpc_pass"/);
  });

  it('grpc_* settings are inherited by grpc_pass locations only, proxy_* by proxy_pass locations only (nginx)', () => {
    const { config, errors } = load(`
      proxy_read_timeout 5s;
      grpc_read_timeout 7s;
      grpc_connect_timeout 2s;
      grpc_set_header x-from grpc;
      proxy_set_header x-from proxy;
      grpc_next_upstream off;
      grpc_socket_keepalive 30s:5s:3;
      server {
        listen 127.0.0.1:8080;
        http2 on;
        location /g/ { grpc_pass grpc://127.0.0.1:1; }
        location /p/ { proxy_pass http://127.0.0.1:2; }
        location /h/ { grpc_pass grpc://127.0.0.1:1; grpc_read_timeout 1h; }
      }`);
    assert.deepEqual(errors, []);
    const [g, p, h] = config!.http!.servers[0]!.locations;
    assert.equal(g!.proxyReadTimeoutMs, 7_000);
    assert.equal(g!.proxyConnectTimeoutMs, 2_000);
    assert.deepEqual(g!.proxySetHeaders, [{ name: 'x-from', value: 'grpc' }]);
    assert.deepEqual(g!.proxyNextUpstream, []);
    assert.deepEqual(g!.proxySocketKeepalive, { enable: true, idle: 30, interval: 5, count: 3 });
    assert.equal(p!.proxyReadTimeoutMs, 5_000);
    assert.equal(p!.proxyConnectTimeoutMs, 60_000);
    assert.deepEqual(p!.proxySetHeaders, [{ name: 'x-from', value: 'proxy' }]);
    assert.deepEqual(p!.proxyNextUpstream, ['error', 'timeout']);
    assert.equal(h!.proxyReadTimeoutMs, 3_600_000);
  });

  it('grpcs:// without grpc_ssl_verify warns with the grpc_ssl_* fix', () => {
    const { warnings } = load(
      `server { listen 127.0.0.1:8080; location / { grpc_pass grpcs://127.0.0.1:1; } }`,
    );
    const w = warnings.find((d) => d.code === 'tls-verify-off')!;
    assert.match(w.message, /grpc_pass grpcs:\/\/127.0.0.1:1 without "grpc_ssl_verify on"/);
    assert.match(w.hint ?? '', /grpc_ssl_trusted_certificate/);
  });
});

describe('check: grpc_ping_* against what gRPC servers accept by default', () => {
  it('warns below 5 minutes, naming grpc-go MinTime and grpc-core GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS', () => {
    const { warnings } = load(`
      grpc_ping_interval 30s;
      server {
        listen 127.0.0.1:8080;
        location /a/ { grpc_pass grpc://127.0.0.1:1; }
        location /b/ { grpc_pass grpc://127.0.0.1:1; }
      }`);
    const pings = warnings.filter((d) => d.code === 'grpc-ping-policy');
    // Once, at the directive both locations inherit.
    assert.equal(pings.length, 1);
    const w = pings[0]!;
    assert.equal(w.line, 3);
    assert.match(w.message, /grpc_ping_interval 30s is below the 5m minimum PING interval/);
    assert.match(w.message, /too_many_pings/);
    assert.match(w.hint ?? '', /EnforcementPolicy\{MinTime: 30s or less\}/);
    assert.match(w.hint ?? '', /GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS 30000 or less/);
    assert.doesNotMatch(w.hint ?? '', /PermitWithoutStream/);
  });

  it('grpc_ping_without_calls on: names PermitWithoutStream and GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS', () => {
    const { warnings } = load(`
      server {
        listen 127.0.0.1:8080;
        location / { grpc_pass grpc://127.0.0.1:1; grpc_ping_interval 10m; grpc_ping_without_calls on; }
      }`);
    const w = warnings.find((d) => d.code === 'grpc-ping-policy')!;
    assert.match(w.message, /without calls/);
    assert.match(w.hint ?? '', /PermitWithoutStream: true/);
    assert.match(w.hint ?? '', /GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS 1/);
  });

  it('no warning at 5 minutes or more, nor with PINGs off', () => {
    for (const setting of ['grpc_ping_interval 5m;', 'grpc_ping_interval 1h;', '']) {
      const { warnings } = load(`
        server { listen 127.0.0.1:8080; location / { grpc_pass grpc://127.0.0.1:1; ${setting} } }`);
      assert.deepEqual(
        warnings.filter((d) => d.code === 'grpc-ping-policy'),
        [],
        setting,
      );
    }
  });
});

describe('keepalive hazards in grpc_pass locations speak grpc_*', () => {
  it('the listener hazard names grpc_read_timeout, not proxy_read_timeout, as nginx would read it', () => {
    const r = parseConfigText(
      `lb_idle_timeout 60s;
http {
  server {
    listen 127.0.0.1:8080;
    http2 on;
    location / { grpc_pass grpc://127.0.0.1:50051; grpc_read_timeout 300s; }
  }
}
`,
      'grpc.conf',
    );
    const texts = r.diagnostics.map((d) => `${d.message} ${d.hint ?? ''}`);
    assert.ok(
      texts.some((t) => t.includes('grpc_read_timeout 5m')),
      `a hazard names grpc_read_timeout 5m: ${texts.join(' | ')}`,
    );
    assert.ok(!texts.some((t) => /proxy_read_timeout|proxy_socket_keepalive/.test(t)), texts.join(' | '));
  });
});
