/** Each hazard fires on the configuration that causes the incident, and not on its fix. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { check, expectDiagnostic } from './support.js';

const codes = (text: string) => check(text).diagnostics.map((d) => d.code);

describe('hazards driven by lb_idle_timeout', () => {
  it('keepalive idle at or above the LB idle timeout comes too late', () => {
    const text = (spec: string) =>
      `lb_idle_timeout 90s;\nstream {\n  server {\n    listen 127.0.0.1:1 so_keepalive=${spec};\n    proxy_pass 127.0.0.1:2;\n    proxy_timeout 60s;\n  }\n}\n`;
    const r = check(text('90s:10s:6'));
    assert.ok(r.config, 'hazards are warnings: the config is still valid');
    expectDiagnostic(r, {
      code: 'hazard-keepalive-too-late',
      severity: 'warning',
      line: 4,
      col: 24,
      message: ['keepalive idle 90s', 'lb_idle_timeout 90s'],
      hint: '60s:15s:3',
    });
    expectDiagnostic(check(text('on')), {
      code: 'hazard-keepalive-too-late',
      severity: 'warning',
      line: 4,
      col: 24,
      message: ['system keepalive idle'],
    });
    assert.deepEqual(codes(text('60s:10s:6')), []);
  });

  it('a probe interval at or above the LB idle timeout: probes come every max(idle, interval)', () => {
    const text = (spec: string) =>
      `lb_idle_timeout 60s;\nstream {\n  server {\n    listen 127.0.0.1:1 so_keepalive=${spec};\n    proxy_pass 127.0.0.1:2;\n    proxy_timeout 50s;\n  }\n}\n`;
    // The seed's `60s::` shape: the idle is fine, the system interval (75 s) is not.
    expectDiagnostic(check(text('45s::')), {
      code: 'hazard-keepalive-interval-too-long',
      severity: 'warning',
      line: 4,
      col: 24,
      message: ['probe interval 75s', 'system default', 'lb_idle_timeout 1m'],
      hint: '40s:10s:3',
    });
    expectDiagnostic(check(text('45s:60s:3')), {
      code: 'hazard-keepalive-interval-too-long',
      severity: 'warning',
      line: 4,
      col: 24,
      message: ['probe interval 60s'],
    });
    assert.deepEqual(codes(text('45s:10s:3')), []);
  });

  it('a listener without so_keepalive whose session can idle longer than the LB', () => {
    const text = (timeout: string) =>
      `stream {\n  lb_idle_timeout 350s;\n  server {\n    listen 127.0.0.1:1;\n    proxy_pass 127.0.0.1:2;\n    proxy_timeout ${timeout};\n    proxy_socket_keepalive 60s::;\n  }\n}\n`;
    expectDiagnostic(check(text('10m')), {
      code: 'hazard-listener-without-keepalive',
      severity: 'warning',
      line: 4,
      col: 5,
      message: ['proxy_timeout 10m exceeds lb_idle_timeout 350s'],
    });
    assert.deepEqual(codes(text('5m')), []);
  });

  it('http: a long proxy_read_timeout without keepalive on either leg', () => {
    const text = (listen: string, upstream: string, to = '10.0.0.2:2') =>
      `lb_idle_timeout 60s;\nhttp {\n  keepalive_timeout 75s;\n  server {\n    listen 127.0.0.1:1${listen};\n    location / { proxy_pass http://${to}; proxy_read_timeout 5m;${upstream} }\n  }\n}\n`;
    const bad = check(text('', ''));
    expectDiagnostic(bad, {
      code: 'hazard-listener-without-keepalive',
      severity: 'warning',
      line: 5,
      col: 5,
    });
    expectDiagnostic(bad, {
      code: 'hazard-upstream-without-keepalive',
      severity: 'warning',
      line: 6,
      col: 18,
    });
    assert.deepEqual(codes(text(' so_keepalive=30s:5s:3', ' proxy_socket_keepalive 30s:5s:3;')), []);
    // A loopback upstream connection crosses no load balancer.
    assert.deepEqual(codes(text(' so_keepalive=30s:5s:3', '', '127.0.0.1:2')), []);
  });

  it('http keepalive_timeout not above the LB idle timeout (the 502 race)', () => {
    const text = (t: string) =>
      `http {\n  server {\n    lb_idle_timeout 60s;\n    keepalive_timeout ${t};\n    location / { return 204; }\n  }\n}\n`;
    expectDiagnostic(check(text('60s')), {
      code: 'hazard-keepalive-timeout-below-lb',
      severity: 'warning',
      line: 4,
      col: 5,
      message: ['keepalive_timeout 1m is not above lb_idle_timeout 1m'],
    });
    // The nginx default 75s outlasts an ALB's 60s; keep-alive off cannot race.
    assert.deepEqual(codes(text('75s')), []);
    assert.deepEqual(codes(text('0')), []);
    // Without lb_idle_timeout there is nothing to compare with.
    assert.deepEqual(codes('http { server { keepalive_timeout 5s; location / { return 204; } } }'), []);
  });

  it("a location's own keepalive_timeout is checked too", () => {
    expectDiagnostic(
      check(
        'http {\n  server {\n    lb_idle_timeout 60s;\n    location /ws { keepalive_timeout 30s; return 204; }\n  }\n}\n',
      ),
      {
        code: 'hazard-keepalive-timeout-below-lb',
        severity: 'warning',
        line: 4,
        col: 20,
        message: ['keepalive_timeout 30s is not above lb_idle_timeout 1m'],
      },
    );
  });
});

describe('hazards of upstream keep-alive pools', () => {
  const pool = (timeout: string, server: string, version: string) => `http {
  upstream app {
    server 127.0.0.1:3000${server};
    keepalive 8;
    keepalive_timeout ${timeout};
  }
  server {
    listen 127.0.0.1:8080;
    location / { proxy_pass http://app;${version} }
  }
}
`;

  it('pool idle timeout not below the server keep-alive timeout, when the server declares it', () => {
    expectDiagnostic(check(pool('5s', ' keepalive_timeout=5s', ' proxy_http_version 1.1;')), {
      code: 'hazard-upstream-keepalive-timeout',
      severity: 'warning',
      line: 5,
      col: 5,
      message: ['keeps idle connections 5s', "127.0.0.1:3000's own keep-alive timeout 5s"],
    });
    assert.deepEqual(codes(pool('4s', ' keepalive_timeout=5s', ' proxy_http_version 1.1;')), []);
    assert.deepEqual(
      codes(pool('60s', '', ' proxy_http_version 1.1;')),
      [],
      'unknown server timeout: no warning',
    );
  });

  it('pool idle timeout against one of our own servers', () => {
    const text = `http {
  upstream self { server 127.0.0.1:9000; keepalive 4; keepalive_timeout 80s; }
  server { listen 127.0.0.1:9000; keepalive_timeout 75s; location / { return 204; } }
  server { listen 127.0.0.1:9001; location / { proxy_pass http://self; proxy_http_version 1.1; } }
}
`;
    expectDiagnostic(check(text), {
      code: 'hazard-upstream-keepalive-timeout',
      severity: 'warning',
      line: 2,
      col: 55,
    });
  });

  it('keepalive in an upstream used with proxy_http_version 1.0', () => {
    expectDiagnostic(check(pool('30s', '', '')), {
      code: 'hazard-keepalive-http10',
      severity: 'warning',
      line: 9,
      col: 18,
      message: ['keepalive 8', 'HTTP/1.0'],
    });
    expectDiagnostic(check(pool('30s', '', ' proxy_http_version 1.0;')), {
      code: 'hazard-keepalive-http10',
      severity: 'warning',
      line: 9,
      col: 41,
    });
  });
});

describe('lb_kind l7: an L7 load balancer closes what is quiet for its idle timeout, whatever TCP keepalive does', () => {
  const l7 = (kind: string, location: string) =>
    `lb_idle_timeout 60s;\nlb_kind ${kind};\nhttp {\n  server {\n    listen 127.0.0.1:8080 so_keepalive=30s:10s:3;\n    location /ws {\n      proxy_pass http://10.0.0.2:9000;\n      proxy_read_timeout 1h;\n      proxy_socket_keepalive 30s:10s:3;\n${location}    }\n  }\n}\n`;

  it('warns when a location may stay quiet longer than the L7 idle timeout, with heartbeats as the hint', () => {
    const found = expectDiagnostic(check(l7('l7', '')), {
      code: 'hazard-read-timeout-above-lb',
      severity: 'warning',
      line: 8,
      col: 7,
      message: ['proxy_read_timeout 1h', 'lb_idle_timeout 1m (lb_kind l7)', 'SSE', 'WebSocket'],
      hint: 'websocket_heartbeat 30s',
    });
    assert.match(found.hint ?? '', /application heartbeat/);
  });

  it('does not warn under lb_kind l4 (TCP keepalive holds an L4 flow) nor with a heartbeat below the idle timeout', () => {
    assert.deepEqual(codes(l7('l4', '')), []);
    assert.deepEqual(codes(l7('l7', '      websocket_heartbeat 20s;\n')), []);
  });

  it('warns when the heartbeat is not below the idle timeout or goes only upstream', () => {
    expectDiagnostic(check(l7('l7', '      websocket_heartbeat 60s;\n')), {
      code: 'hazard-read-timeout-above-lb',
      severity: 'warning',
      line: 10,
      col: 7,
      message: ['websocket_heartbeat 1m', 'after the load balancer has closed'],
      hint: 'websocket_heartbeat 30s',
    });
    expectDiagnostic(check(l7('l7', '      websocket_heartbeat 20s upstream;\n')), {
      code: 'hazard-read-timeout-above-lb',
      severity: 'warning',
      line: 10,
      col: 7,
      message: ['no Pong goes toward the client side'],
    });
  });

  it('no TCP keepalive hazard against an L7 box: its probes never cross it', () => {
    const text = `lb_idle_timeout 60s;\nlb_kind l7;\nstream {\n  server {\n    listen 127.0.0.1:1 so_keepalive=90s:10s:6;\n    proxy_pass 10.0.0.2:2;\n  }\n}\n`;
    assert.deepEqual(codes(text), []);
    assert.ok(codes(text.replace('lb_kind l7', 'lb_kind l4')).includes('hazard-keepalive-too-late'));
  });
});
