/**
 * One row per directive behaviour: a valid use and what it puts in the model,
 * or an invalid use and the exact diagnostic (code, line, column).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bindingsOf, type RecordKind, recordDefaults } from '../../src/config/directives.js';
import { CONTEXT_LABEL, type Config, DIRECTIVES, defaultOf, lookup } from '../../src/config/index.js';
import { check } from './support.js';

type Ctx =
  | 'main'
  | 'events'
  | 'stream'
  | 'sserver'
  | 'supstream'
  | 'http'
  | 'hupstream'
  | 'hserver'
  | 'location';

const starts = (x: string, name: string) => x.startsWith(`${name} `) || x.startsWith(`${name};`);

/** Each template puts the directive under test on `line` at `col`, inside an otherwise valid config. */
const TEMPLATES: Record<Ctx, { line: number; col: number; wrap: (x: string) => string }> = {
  main: { line: 1, col: 1, wrap: (x) => `${x}\n` },
  events: { line: 2, col: 5, wrap: (x) => `events {\n    ${x}\n}\n` },
  stream: {
    line: 2,
    col: 5,
    wrap: (x) =>
      `stream {\n    ${x}\n    upstream db { server 127.0.0.1:1; }\n    server { listen 127.0.0.1:9000; proxy_pass db; }\n}\n`,
  },
  sserver: {
    line: 4,
    col: 9,
    wrap: (x) =>
      `stream {\n    upstream db { server 127.0.0.1:1; }\n    server {\n        ${x}\n${
        starts(x, 'listen') ? '' : '        listen 127.0.0.1:9000;\n'
      }${starts(x, 'proxy_pass') ? '' : '        proxy_pass db;\n'}    }\n}\n`,
  },
  supstream: {
    line: 3,
    col: 9,
    wrap: (x) =>
      `stream {\n    upstream db {\n        ${x}\n        server 127.0.0.1:1;\n    }\n    server { listen 127.0.0.1:9000; proxy_pass db; }\n}\n`,
  },
  http: {
    line: 2,
    col: 5,
    wrap: (x) =>
      `http {\n    ${x}\n    upstream app { server 127.0.0.1:1; }\n    server { listen 127.0.0.1:8080; location / { proxy_pass http://app; } }\n}\n`,
  },
  hupstream: {
    line: 3,
    col: 9,
    wrap: (x) =>
      `http {\n    upstream app {\n        ${x}\n        server 127.0.0.1:1;\n    }\n    server { listen 127.0.0.1:8080; location / { proxy_pass http://app; } }\n}\n`,
  },
  hserver: {
    line: 4,
    col: 9,
    wrap: (x) =>
      `http {\n    upstream app { server 127.0.0.1:1; }\n    server {\n        ${x}\n        location /x { proxy_pass http://app; }\n    }\n}\n`,
  },
  location: {
    line: 6,
    col: 13,
    wrap: (x) =>
      `http {\n    upstream app { server 127.0.0.1:1; }\n    server {\n        listen 127.0.0.1:8080;\n        location / {\n            ${x}\n${
        starts(x, 'proxy_pass') || starts(x, 'return') || starts(x, 'health')
          ? ''
          : '            proxy_pass http://app;\n'
      }        }\n    }\n}\n`,
  },
};

const stream = (c: Config) => c.stream!.servers[0]!;
const db = (c: Config) => c.stream!.upstreams.get('db')!;
const hserver = (c: Config) => c.http!.servers[0]!;
const loc = (c: Config) => c.http!.servers[0]!.locations[0]!;
const app = (c: Config) => c.http!.upstreams.get('app')!;

type Valid = [ctx: Ctx, text: string, get: (c: Config) => unknown, want: unknown];
/** `at` is the 0-based offset in `text` of the reported column, or the substring it points at. */
type Invalid = [ctx: Ctx, text: string, code: string, at: number | string, message: string];

const VALID: Valid[] = [
  ['main', 'lb_idle_timeout 350s;', (c) => c.lbIdleTimeoutMs, 350_000],
  ['main', 'worker_shutdown_timeout 1m30s;', (c) => c.shutdownTimeoutMs, 90_000],
  ['main', 'shutdown_delay 15s;', (c) => c.shutdownDelayMs, 15_000],
  ['events', 'worker_connections 4096;', (c) => c.workerConnections, 4096],
  ['stream', 'lb_idle_timeout 90s;', (c) => stream(c).lbIdleTimeoutMs, 90_000],
  ['stream', 'proxy_timeout 90s;', (c) => stream(c).proxyTimeoutMs, 90_000],
  ['stream', 'access_log off;', (c) => stream(c).accessLog, false],
  ['sserver', 'access_log off;', (c) => stream(c).accessLog, false],
  ['sserver', 'proxy_timeout 1s;', (c) => stream(c).accessLog, true],
  [
    'sserver',
    'listen 6432;',
    (c) => stream(c).listens[0]!.address,
    { host: '0.0.0.0', port: 6432, text: '6432' },
  ],
  ['sserver', 'listen *:6432;', (c) => stream(c).listens[0]!.address.host, '0.0.0.0'],
  [
    'sserver',
    'listen [::1]:6432;',
    (c) => stream(c).listens[0]!.address,
    { host: '::1', port: 6432, text: '[::1]:6432' },
  ],
  [
    'sserver',
    'listen 127.0.0.1:6432 so_keepalive=60s:10s:6 backlog=100 reuseport;',
    (c) => {
      const { soKeepalive, backlog, reuseport } = stream(c).listens[0]!;
      return { soKeepalive, backlog, reuseport };
    },
    { soKeepalive: { enable: true, idle: 60, interval: 10, count: 6 }, backlog: 100, reuseport: true },
  ],
  [
    'sserver',
    'listen 6432 so_keepalive=30m::;',
    (c) => stream(c).listens[0]!.soKeepalive,
    { enable: true, idle: 1800 },
  ],
  ['sserver', 'listen 6432 so_keepalive=off;', (c) => stream(c).listens[0]!.soKeepalive, { enable: false }],
  ['sserver', 'listen 6432;', (c) => stream(c).listens[0]!.backlog, 511],
  ['sserver', 'proxy_pass db;', (c) => stream(c).proxyPass, { kind: 'group', name: 'db' }],
  [
    'sserver',
    'proxy_pass localhost:5432;',
    (c) => stream(c).proxyPass,
    { kind: 'address', address: { host: 'localhost', port: 5432, text: 'localhost:5432' } },
  ],
  ['sserver', 'proxy_timeout 1h;', (c) => stream(c).proxyTimeoutMs, 3_600_000],
  ['sserver', 'proxy_connect_timeout 500ms;', (c) => stream(c).proxyConnectTimeoutMs, 500],
  ['sserver', 'proxy_socket_keepalive on;', (c) => stream(c).proxySocketKeepalive, { enable: true }],
  [
    'sserver',
    'proxy_socket_keepalive 60s:10s:6;',
    (c) => stream(c).proxySocketKeepalive,
    { enable: true, idle: 60, interval: 10, count: 6 },
  ],
  ['sserver', 'proxy_next_upstream off;', (c) => stream(c).proxyNextUpstream, false],
  ['sserver', 'proxy_next_upstream_tries 3;', (c) => stream(c).proxyNextUpstreamTries, 3],
  ['sserver', 'proxy_next_upstream_timeout 10s;', (c) => stream(c).proxyNextUpstreamTimeoutMs, 10_000],
  ['sserver', 'reset_timedout_connection on;', (c) => stream(c).resetTimedoutConnection, true],
  ['sserver', 'lb_idle_timeout 4m;', (c) => stream(c).lbIdleTimeoutMs, 240_000],
  [
    'supstream',
    'server 127.0.0.2:5432 weight=3 max_fails=0 fail_timeout=30s max_conns=7 down;',
    (c) => {
      const { source: _, ...s } = db(c).servers[0]!;
      return s;
    },
    {
      address: { host: '127.0.0.2', port: 5432, text: '127.0.0.2:5432' },
      weight: 3,
      maxFails: 0,
      failTimeoutMs: 30_000,
      maxConns: 7,
      backup: false,
      down: true,
    },
  ],
  ['supstream', 'server 127.0.0.2:5432 backup;', (c) => db(c).servers[0]!.backup, true],
  ['supstream', 'least_conn;', (c) => db(c).balancing, { kind: 'least_conn' }],
  [
    'supstream',
    'hash $remote_addr consistent;',
    (c) => db(c).balancing,
    { kind: 'hash', key: '$remote_addr', consistent: true },
  ],
  [
    'supstream',
    'hash $remote_addr;',
    (c) => db(c).balancing,
    { kind: 'hash', key: '$remote_addr', consistent: false },
  ],
  ['supstream', 'random two least_conn;', (c) => db(c).balancing, { kind: 'random', two: true }],
  ['supstream', 'random;', (c) => db(c).balancing, { kind: 'random', two: false }],
  [
    'http',
    'keepalive_timeout 120s 100s;',
    (c) => [hserver(c).keepaliveTimeoutMs, hserver(c).keepaliveHeaderTimeoutMs],
    [120_000, 100_000],
  ],
  ['http', 'proxy_read_timeout 5m;', (c) => loc(c).proxyReadTimeoutMs, 300_000],
  [
    'hupstream',
    'server 127.0.0.2;',
    (c) => app(c).servers[0]!.address,
    { host: '127.0.0.2', port: 80, text: '127.0.0.2' },
  ],
  [
    'hupstream',
    'server 127.0.0.2:3000 keepalive_timeout=5s;',
    (c) => app(c).servers[0]!.keepaliveTimeoutMs,
    5000,
  ],
  ['hupstream', 'keepalive 16;', (c) => app(c).keepalive, 16],
  ['hupstream', 'keepalive_timeout 30s;', (c) => app(c).keepaliveTimeoutMs, 30_000],
  ['hupstream', 'keepalive_requests 50;', (c) => app(c).keepaliveRequests, 50],
  ['hupstream', 'keepalive_time 10m;', (c) => app(c).keepaliveTimeMs, 600_000],
  ['hupstream', 'least_conn;', (c) => app(c).balancing, { kind: 'least_conn' }],
  [
    'hserver',
    'listen 127.0.0.1:8081 so_keepalive=2m:10s:3;',
    (c) => hserver(c).listens[0]!.soKeepalive,
    { enable: true, idle: 120, interval: 10, count: 3 },
  ],
  [
    'hserver',
    'server_name a.example "b.example" c;',
    (c) => hserver(c).serverNames,
    ['a.example', 'b.example', 'c'],
  ],
  ['hserver', 'keepalive_timeout 0;', (c) => hserver(c).keepaliveTimeoutMs, 0],
  ['hserver', 'keepalive_requests 10;', (c) => hserver(c).keepaliveRequests, 10],
  ['hserver', 'keepalive_time 2h;', (c) => hserver(c).keepaliveTimeMs, 7_200_000],
  ['hserver', 'client_header_timeout 5s;', (c) => hserver(c).clientHeaderTimeoutMs, 5000],
  ['hserver', 'client_body_timeout 6s;', (c) => hserver(c).clientBodyTimeoutMs, 6000],
  ['hserver', 'send_timeout 7s;', (c) => hserver(c).sendTimeoutMs, 7000],
  ['hserver', 'client_max_body_size 10M;', (c) => hserver(c).clientMaxBodySize, 10 * 1024 * 1024],
  ['hserver', 'client_max_body_size 0;', (c) => hserver(c).clientMaxBodySize, 0],
  ['hserver', 'client_body_buffer_size 128k;', (c) => hserver(c).clientBodyBufferSize, 128 * 1024],
  ['hserver', 'client_header_buffer_size 2k;', (c) => hserver(c).clientHeaderBufferSize, 2048],
  [
    'hserver',
    'large_client_header_buffers 8 16k;',
    (c) => hserver(c).largeClientHeaderBuffers,
    { number: 8, size: 16 * 1024 },
  ],
  ['hserver', 'max_headers 50;', (c) => hserver(c).maxHeaders, 50],
  ['hserver', 'merge_slashes off;', (c) => hserver(c).mergeSlashes, false],
  ['hserver', 'underscores_in_headers on;', (c) => hserver(c).underscoresInHeaders, true],
  ['hserver', 'ignore_invalid_headers off;', (c) => hserver(c).ignoreInvalidHeaders, false],
  ['hserver', 'listen 127.0.0.1:8081 default_server;', (c) => hserver(c).listens[0]!.defaultServer, true],
  [
    'hserver',
    'listen 127.0.0.1:8081 default so_keepalive=on;',
    (c) => [hserver(c).listens[0]!.defaultServer, hserver(c).listens[0]!.soKeepalive],
    [true, { enable: true }],
  ],
  ['hserver', 'listen 127.0.0.1:8081;', (c) => hserver(c).listens[0]!.defaultServer, undefined],
  ['hserver', 'proxy_next_upstream_timeout 30s;', (c) => loc(c).proxyNextUpstreamTimeoutMs, 30_000],
  ['hserver', 'lb_idle_timeout 60s;', (c) => hserver(c).lbIdleTimeoutMs, 60_000],
  ['hserver', 'proxy_connect_timeout 3s;', (c) => loc(c).proxyConnectTimeoutMs, 3000],
  [
    'location',
    'proxy_pass http://app;',
    (c) => loc(c).proxyPass,
    { scheme: 'http', target: { kind: 'group', name: 'app' }, text: 'http://app' },
  ],
  [
    'location',
    'proxy_pass http://127.0.0.1;',
    (c) => loc(c).proxyPass?.target,
    { kind: 'address', address: { host: '127.0.0.1', port: 80, text: '127.0.0.1' } },
  ],
  ['location', 'proxy_connect_timeout 2s;', (c) => loc(c).proxyConnectTimeoutMs, 2000],
  [
    'location',
    'health;',
    (c) => [loc(c).health, loc(c).proxyPass, loc(c).returnDirective],
    [true, undefined, undefined],
  ],
  ['location', 'proxy_read_timeout 300s;', (c) => loc(c).proxyReadTimeoutMs, 300_000],
  ['location', 'proxy_send_timeout 10s;', (c) => loc(c).proxySendTimeoutMs, 10_000],
  ['location', 'proxy_http_version 1.1;', (c) => loc(c).proxyHttpVersion, '1.1'],
  [
    'location',
    'proxy_set_header Connection "";',
    (c) => loc(c).proxySetHeaders,
    [{ name: 'Connection', value: '' }],
  ],
  [
    'location',
    'proxy_socket_keepalive 30s::;',
    (c) => loc(c).proxySocketKeepalive,
    { enable: true, idle: 30 },
  ],
  [
    'location',
    'proxy_next_upstream error http_502 non_idempotent;',
    (c) => loc(c).proxyNextUpstream,
    ['error', 'http_502', 'non_idempotent'],
  ],
  ['location', 'proxy_next_upstream off;', (c) => loc(c).proxyNextUpstream, []],
  ['location', 'proxy_next_upstream_tries 2;', (c) => loc(c).proxyNextUpstreamTries, 2],
  ['location', 'proxy_next_upstream_timeout 1500ms;', (c) => loc(c).proxyNextUpstreamTimeoutMs, 1500],
  ['location', 'client_max_body_size 5m;', (c) => loc(c).clientMaxBodySize, 5 * 1024 * 1024],
  ['location', 'client_body_buffer_size 16k;', (c) => loc(c).clientBodyBufferSize, 16 * 1024],
  ['location', 'client_body_timeout 3s;', (c) => loc(c).clientBodyTimeoutMs, 3000],
  ['location', 'send_timeout 4s;', (c) => loc(c).sendTimeoutMs, 4000],
  ['location', 'keepalive_requests 5;', (c) => loc(c).keepaliveRequests, 5],
  ['location', 'keepalive_time 1m;', (c) => loc(c).keepaliveTimeMs, 60_000],
  [
    'location',
    'keepalive_timeout 10s 8s;',
    (c) => [loc(c).keepaliveTimeoutMs, loc(c).keepaliveHeaderTimeoutMs],
    [10_000, 8000],
  ],
  [
    'location',
    'proxy_read_timeout 1s;',
    (c) => [loc(c).clientMaxBodySize, loc(c).keepaliveTimeoutMs, loc(c).keepaliveHeaderTimeoutMs],
    [1024 * 1024, 75_000, undefined],
  ],
  ['location', 'return 204;', (c) => [loc(c).returnDirective, loc(c).proxyPass], [{ code: 204 }, undefined]],
  ['location', 'return 200 "ok\\n";', (c) => loc(c).returnDirective, { code: 200, text: 'ok\n' }],
  ['location', 'include /dev/null;', (c) => loc(c).prefix, '/'],
  ['http', 'access_log off;', (c) => [hserver(c).accessLog, loc(c).accessLog], [false, false]],
  ['hserver', 'access_log off;', (c) => [hserver(c).accessLog, loc(c).accessLog], [false, false]],
  ['location', 'access_log off;', (c) => [hserver(c).accessLog, loc(c).accessLog], [true, false]],
  ['location', 'access_log on;', (c) => loc(c).accessLog, true],
  ['location', 'websocket_heartbeat off;', (c) => loc(c).websocketHeartbeat, null],
  [
    'location',
    'websocket_heartbeat 20s;',
    (c) => loc(c).websocketHeartbeat,
    { intervalMs: 20_000, side: 'both' },
  ],
  [
    'location',
    'websocket_heartbeat 500ms client;',
    (c) => loc(c).websocketHeartbeat,
    { intervalMs: 500, side: 'client' },
  ],
  [
    'hserver',
    'websocket_heartbeat 30s upstream;',
    (c) => loc(c).websocketHeartbeat,
    { intervalMs: 30_000, side: 'upstream' },
  ],
  ['http', 'websocket_heartbeat 1m;', (c) => loc(c).websocketHeartbeat, { intervalMs: 60_000, side: 'both' }],
  ['main', 'lb_kind l7;', (c) => c.lbKind, 'l7'],
  ['http', 'lb_kind l7;', (c) => [c.lbKind, hserver(c).lbKind], ['l4', 'l7']],
  ['hserver', 'lb_kind l7;', (c) => [c.lbKind, hserver(c).lbKind], ['l4', 'l7']],
  ['sserver', 'lb_kind l7;', (c) => [c.lbKind, stream(c).lbKind], ['l4', 'l7']],
  ['main', 'worker_processes auto;', (c) => c.workerProcesses, 'auto'],
  ['main', 'worker_processes 4;', (c) => c.workerProcesses, 4],
];

const INVALID: Invalid[] = [
  ['main', 'lb_idle_timeout 90q;', 'bad-value', 'q', 'unknown time unit "q"'],
  ['main', 'lb_idle_timeout;', 'wrong-arity', 0, 'takes 1 argument, got 0'],
  ['main', 'lb_kind l5;', 'bad-value', 'l5', 'invalid value "l5"'],
  ['main', 'worker_processes 0;', 'bad-value', '0', 'invalid value "0"'],
  ['main', 'worker_processes many;', 'bad-value', 'many', 'invalid value "many"'],
  ['http', 'worker_processes 2;', 'wrong-context', 0, 'not allowed in http'],
  ['location', 'websocket_heartbeat 20s sideways;', 'bad-value', 'sideways', 'invalid side "sideways"'],
  ['location', 'websocket_heartbeat 0;', 'bad-value', '0', 'must be above 0'],
  ['location', 'websocket_heartbeat 20x;', 'bad-value', 'x', 'unknown time unit "x"'],
  ['main', 'websocket_heartbeat 20s;', 'wrong-context', 0, 'not allowed in main'],
  ['main', 'worker_shutdown_timeout -1;', 'bad-value', '-', 'invalid time value'],
  ['main', 'worker_connections 10;', 'wrong-context', 0, 'not allowed in main'],
  ['events', 'worker_connections 0;', 'bad-value', '0', 'out of range'],
  ['events', 'worker_connections many;', 'bad-value', 'many', 'invalid number'],
  ['stream', 'listen 80;', 'wrong-context', 0, 'not allowed in stream'],
  ['stream', 'proxy_timeout 10x;', 'bad-value', 16, 'unknown time unit'],
  ['sserver', 'listen 80, so_keepalive=60s::;', 'comma-separator', ',', 'not commas'],
  ['sserver', 'listen 127.0.0.1:6432 so_keepalive=60x::;', 'bad-value', 'x', 'unknown time unit "x"'],
  ['sserver', 'listen 127.0.0.1:6432 so_keepalive=60s:10s:6:1;', 'bad-value', ':1;', 'at most 3'],
  ['sserver', 'listen 127.0.0.1:6432 so_keepalive=::;', 'bad-value', '::', 'every field is empty'],
  ['sserver', 'listen 127.0.0.1:6432 so_keepalive=40000s::;', 'bad-value', '40000s', 'kernel limit'],
  ['sserver', 'listen unix:/run/kw.sock;', 'unsupported', 'unix', 'unix domain sockets'],
  ['sserver', 'listen 127.0.0.1:70000;', 'bad-value', '70000', 'out of range'],
  [
    'sserver',
    'listen 127.0.0.1:6432 proxy_protocol;',
    'unsupported',
    'proxy_protocol',
    'not supported by keepwire',
  ],
  [
    'sserver',
    'listen 127.0.0.1:6432 ssl;',
    'missing-directive',
    0,
    'no "ssl_certificate" is defined for the listen',
  ],
  ['sserver', 'ssl_protocols TLSv1 TLSv1.2;', 'bad-value', 'TLSv1', 'contiguous range'],
  ['sserver', 'ssl_protocols SSLv3;', 'unsupported', 'SSLv3', 'OpenSSL 3 has no SSL'],
  ['sserver', 'ssl_session_cache shared:SSL;', 'bad-value', 'shared', 'invalid session cache'],
  ['sserver', 'listen 127.0.0.1:6432 backlog=x;', 'bad-value', 'x;', 'invalid number'],
  ['sserver', 'listen ::1:6432;', 'bad-value', '::1', 'must be written in brackets'],
  ['sserver', 'listen 300.1.1.1:6432;', 'bad-value', '300', 'invalid IPv4 address'],
  ['sserver', 'proxy_pass http://db;', 'bad-value', 'http', 'not a URL'],
  ['sserver', 'proxy_pass dbx;', 'unknown-upstream', 'dbx', 'unknown upstream "dbx"'],
  ['sserver', 'proxy_pass 127.0.0.1;', 'unknown-upstream', '127', 'unknown upstream'],
  ['sserver', 'proxy_pass $upstream;', 'unsupported', '$', 'variables'],
  ['sserver', 'proxy_socket_keepalive yes;', 'bad-value', 'yes', 'invalid time value'],
  ['sserver', 'proxy_next_upstream maybe;', 'bad-value', 'maybe', 'expected "on" or "off"'],
  ['sserver', 'proxy_next_upstream_tries -2;', 'bad-value', '-', 'invalid number'],
  ['sserver', 'reset_timedout_connection 1;', 'bad-value', '1;', 'expected "on" or "off"'],
  ['sserver', 'proxy_timeout 1s 2s;', 'wrong-arity', '2s', 'got 2'],
  ['sserver', 'keepalive_timeout 5s;', 'wrong-context', 0, 'not allowed in server (stream)'],
  ['sserver', 'location / { return 200; }', 'wrong-context', 0, 'not allowed in server (stream)'],
  ['supstream', 'server 127.0.0.2;', 'bad-value', ';', 'no port'],
  ['supstream', 'server 127.0.0.2:1 weight=0;', 'bad-value', '0;', 'out of range'],
  ['supstream', 'server 127.0.0.2:1 fail_timeout=10q;', 'bad-value', 'q', 'unknown time unit'],
  ['supstream', 'server 127.0.0.2:1 slow_start=10s;', 'unsupported', 'slow', 'not supported'],
  ['supstream', 'server 127.0.0.2:1 bogus;', 'bad-value', 'bogus', 'invalid server parameter'],
  ['supstream', 'hash $remote_addr sticky;', 'bad-value', 'sticky', 'invalid parameter'],
  ['supstream', 'random three;', 'bad-value', 'three', 'invalid parameter'],
  ['supstream', 'least_conn now;', 'wrong-arity', 'now', 'takes no arguments'],
  ['supstream', 'keepalive 8;', 'wrong-context', 0, 'not allowed in upstream (stream)'],
  ['http', 'keepalive_timeout 75s 60s 1s;', 'wrong-arity', '1s', 'takes 1 to 2'],
  ['http', 'proxy_pass http://app;', 'wrong-context', 0, 'not allowed in http'],
  ['hupstream', 'keepalive 0;', 'bad-value', '0', 'out of range'],
  ['hupstream', 'keepalive_timeout 1z;', 'bad-value', 'z', 'unknown time unit'],
  ['hupstream', 'keepalive_requests lots;', 'bad-value', 'lots', 'invalid number'],
  ['hupstream', 'server 127.0.0.2:1 keepalive_timeout=5;;', 'unexpected-token', 39, 'unexpected ";"'],
  [
    'sserver',
    'listen 127.0.0.1:6432 default_server;',
    'unsupported',
    'default_server',
    'not valid in stream: a keepwire stream server has no server_name',
  ],
  ['sserver', 'listen 127.0.0.1:6432 default;', 'unsupported', 'default;', 'not valid in stream'],
  ['location', 'client_header_timeout 5s;', 'wrong-context', 0, 'not allowed in location'],
  [
    'location',
    'access_log /var/log/nginx/access.log main;',
    'unsupported',
    '/var',
    'logging to a file ("/var/log/nginx/access.log") is not supported by keepwire',
  ],
  ['hserver', 'access_log /var/log/nginx/access.log;', 'unsupported', '/var', 'to a file'],
  ['http', 'access_log syslog:server=10.0.0.1 combined;', 'unsupported', 'syslog', 'logging to syslog'],
  ['location', 'access_log off main;', 'bad-value', 'main', '"off" takes no other parameters'],
  ['location', 'access_log yes;', 'unsupported', 'yes', 'to a file ("yes")'],
  ['location', 'access_log;', 'wrong-arity', 0, 'takes at least 1'],
  ['location', 'access_log off; access_log on;', 'duplicate-directive', 'access_log on', 'is duplicate'],
  ['sserver', 'access_log /var/log/nginx/stream.log;', 'unsupported', '/var', 'to a file'],
  ['location', 'client_body_buffer_size 1x;', 'bad-value', 'x', 'invalid size'],
  ['location', 'proxy_next_upstream_timeout soon;', 'bad-value', 'soon', 'invalid time value'],
  ['hserver', 'client_max_body_size 10t;', 'bad-value', 23, 'invalid size'],
  ['hserver', 'keepalive_timeout abc;', 'bad-value', 'abc', 'invalid time value'],
  ['hserver', 'location ~ \\.php$ { return 404; }', 'unsupported', '~', 'location modifier "~"'],
  ['hserver', 'location = /x { return 404; }', 'unsupported', '=', 'not supported'],
  [
    'hserver',
    'location /z { return 1; } location /z { return 2; }',
    'duplicate-location',
    35,
    'duplicate location "/z"',
  ],
  ['hserver', 'location /y { }', 'missing-directive', 0, 'neither "proxy_pass" nor "return"'],
  ['hserver', 'server_name;', 'wrong-arity', 0, 'takes at least 1'],
  ['location', 'proxy_pass app;', 'bad-value', 'app', 'needs an http:// URL'],
  ['location', 'proxy_pass grpc://app;', 'unsupported', 'grpc', 'scheme is not supported'],
  [
    'hserver',
    'ssl_certificate a.pem;',
    'missing-directive',
    0,
    'no "ssl_certificate_key" is defined for certificate "a.pem"',
  ],
  ['location', 'proxy_pass http://app/api/;', 'unsupported', '/api', 'URI part'],
  ['location', 'proxy_pass http://ap;', 'unknown-upstream', 'ap;', 'unknown upstream "ap"'],
  ['location', 'proxy_pass http://unix:/tmp/s;', 'unsupported', 'unix', 'unix domain sockets'],
  ['location', 'proxy_http_version 2.0;', 'bad-value', '2.0', 'invalid value "2.0"'],
  ['location', 'proxy_set_header X-A;', 'wrong-arity', 0, 'takes 2 arguments, got 1'],
  ['location', 'proxy_set_header "X A" b;', 'bad-value', ' A', 'invalid header name'],
  ['location', 'proxy_next_upstream error off;', 'bad-value', 'off', 'cannot be combined'],
  ['location', 'proxy_next_upstream http_418;', 'bad-value', 'http_418', 'invalid value'],
  ['location', 'return 1000;', 'bad-value', '1000', 'out of range'],
  [
    'location',
    'return 200; proxy_pass http://app;',
    'conflict',
    'proxy_pass',
    'both "proxy_pass" and "return"',
  ],
  ['location', 'health; proxy_pass http://app;', 'conflict', 'proxy_pass', 'both "proxy_pass" and "health"'],
  ['location', 'return 204; health;', 'conflict', 'health', 'both "return" and "health"'],
  ['location', 'health on;', 'wrong-arity', 'on', 'takes no arguments'],
  ['main', 'shutdown_delay -1;', 'bad-value', '-', 'invalid time value'],
  ['hserver', 'health;', 'wrong-context', 0, 'not allowed in server'],
  ['location', 'location /in { return 200; }', 'wrong-context', 0, 'not allowed in location'],
  [
    'location',
    'proxy_read_timeout 1s; proxy_read_timeout 2s;',
    'duplicate-directive',
    'proxy_read_timeout 2s',
    'is duplicate',
  ],
];

function colOf(text: string, at: number | string): number {
  if (typeof at === 'number') return at;
  const i = text.indexOf(at);
  assert.ok(i >= 0, `"${at}" is not in "${text}"`);
  return i;
}

describe('directives: valid uses reach the model', () => {
  for (const [ctx, text, get, want] of VALID) {
    it(`${ctx}: ${text}`, () => {
      const result = check(TEMPLATES[ctx].wrap(text));
      const errors = result.diagnostics.filter((d) => d.severity === 'error');
      assert.deepEqual(errors, []);
      assert.deepEqual(get(result.config!), want);
    });
  }
});

describe('directives: invalid uses give exact diagnostics', () => {
  for (const [ctx, text, code, at, message] of INVALID) {
    it(`${ctx}: ${text} -> ${code}`, () => {
      const t = TEMPLATES[ctx];
      const result = check(t.wrap(text));
      assert.equal(result.config, undefined);
      const d = result.diagnostics.find((x) => x.code === code);
      assert.ok(d, `no ${code} in ${JSON.stringify(result.diagnostics)}`);
      assert.deepEqual([d.line, d.col], [t.line, t.col + colOf(text, at)], d.message);
      assert.ok(d.message.includes(message), `"${d.message}" lacks "${message}"`);
      assert.equal(d.severity, 'error');
      assert.ok(d.hint, 'every error comes with a hint');
    });
  }
});

/** nginx's ssl_* defaults (ngx_http_ssl_module), and ssl_handshake_timeout 60s. */
const TLS_SERVER_DEFAULTS = {
  sslCertificates: [],
  sslProtocols: ['TLSv1.2', 'TLSv1.3'],
  sslCiphers: 'HIGH:!aNULL:!MD5',
  sslPreferServerCiphers: false,
  sslSessionCache: { kind: 'none' },
  sslSessionTimeoutMs: 300_000,
  sslSessionTickets: true,
  sslHandshakeTimeoutMs: 60_000,
};

/** nginx's proxy_ssl_* defaults: verify off, depth 1, no SNI, session reuse on. */
const TLS_UPSTREAM_DEFAULTS = {
  proxySslVerify: false,
  proxySslVerifyDepth: 1,
  proxySslServerName: false,
  proxySslProtocols: ['TLSv1.2', 'TLSv1.3'],
  proxySslCiphers: 'DEFAULT',
  proxySslSessionReuse: true,
};

describe('defaults equal nginx where nginx has the directive', () => {
  it('fills every field of a minimal config', () => {
    const result = check(
      'stream { server { listen 127.0.0.1:1; proxy_pass 127.0.0.1:2; } }\nhttp { upstream app { server 127.0.0.1:3; } server { location / { proxy_pass http://app; } } }\n',
    );
    assert.deepEqual(result.diagnostics, []);
    const c = result.config!;
    assert.equal(c.workerConnections, 512);
    assert.equal(c.shutdownTimeoutMs, 30_000);
    assert.equal(c.shutdownDelayMs, 0);
    assert.equal(c.lbIdleTimeoutMs, undefined);
    assert.equal(c.lbKind, 'l4');
    const { listens, source: _s, proxyPass: _p, ...s } = stream(c);
    assert.deepEqual(s, {
      proxyTimeoutMs: 600_000,
      proxyConnectTimeoutMs: 60_000,
      proxySocketKeepalive: { enable: false },
      proxyNextUpstream: true,
      proxyNextUpstreamTries: 0,
      proxyNextUpstreamTimeoutMs: 0,
      resetTimedoutConnection: false,
      accessLog: true,
      lbKind: 'l4',
      ...TLS_SERVER_DEFAULTS,
      proxySsl: false,
      ...TLS_UPSTREAM_DEFAULTS,
    });
    assert.equal(listens[0]!.soKeepalive, undefined);
    const { locations, source: _hs, listens: hl, ...h } = hserver(c);
    assert.deepEqual(hl[0]!.address, { host: '0.0.0.0', port: 80, text: '*:80' });
    assert.deepEqual(h, {
      serverNames: [],
      keepaliveTimeoutMs: 75_000,
      keepaliveRequests: 1000,
      keepaliveTimeMs: 3_600_000,
      clientHeaderTimeoutMs: 60_000,
      clientHeaderBufferSize: 1024,
      largeClientHeaderBuffers: { number: 4, size: 8 * 1024 },
      maxHeaders: 1000,
      mergeSlashes: true,
      underscoresInHeaders: false,
      ignoreInvalidHeaders: true,
      clientBodyTimeoutMs: 60_000,
      sendTimeoutMs: 60_000,
      clientMaxBodySize: 1024 * 1024,
      clientBodyBufferSize: 64 * 1024,
      accessLog: true,
      http2: false,
      http2MaxConcurrentStreams: 128,
      http2PingIntervalMs: 0,
      http2PingTimeoutMs: 20_000,
      lbKind: 'l4',
      ...TLS_SERVER_DEFAULTS,
    });
    const { source: _ls, proxyPass: _lp, ...l } = locations[0]!;
    assert.deepEqual(l, {
      prefix: '/',
      health: false,
      proxyConnectTimeoutMs: 60_000,
      proxyReadTimeoutMs: 60_000,
      proxySendTimeoutMs: 60_000,
      proxyHttpVersion: '1.0',
      proxySetHeaders: [],
      proxySocketKeepalive: { enable: false },
      proxyNextUpstream: ['error', 'timeout'],
      proxyNextUpstreamTries: 0,
      proxyNextUpstreamTimeoutMs: 0,
      // Resolved in the model: a request routed here runs under these.
      keepaliveTimeoutMs: 75_000,
      keepaliveRequests: 1000,
      keepaliveTimeMs: 3_600_000,
      clientBodyTimeoutMs: 60_000,
      sendTimeoutMs: 60_000,
      clientMaxBodySize: 1024 * 1024,
      clientBodyBufferSize: 64 * 1024,
      accessLog: true,
      websocketHeartbeat: null,
      statusConnections: 200,
      grpcPingIntervalMs: 0,
      grpcPingTimeoutMs: 20_000,
      grpcPingWithoutCalls: false,

      ...TLS_UPSTREAM_DEFAULTS,
    });
    const { servers, source: _us, ...u } = app(c);
    assert.deepEqual(u, {
      name: 'app',
      balancing: { kind: 'round_robin' },
      keepalive: 0,
      keepaliveTimeoutMs: 60_000,
      keepaliveRequests: 1000,
      keepaliveTimeMs: 3_600_000,
    });
    const { source: _ss, address: _a, ...server } = servers[0]!;
    assert.deepEqual(server, {
      weight: 1,
      maxFails: 1,
      failTimeoutMs: 10_000,
      maxConns: 0,
      backup: false,
      down: false,
    });
  });

  it('inherits outer settings, innermost wins, proxy_set_header by nginx array rules', () => {
    const c = check(`lb_idle_timeout 100s;
http {
    proxy_read_timeout 10s;
    proxy_set_header A 1;
    keepalive_timeout 200s;
    server {
        lb_idle_timeout 120s;
        proxy_read_timeout 20s;
        location /a { proxy_pass http://127.0.0.1:1; }
        location /b { proxy_pass http://127.0.0.1:1; proxy_read_timeout 30s; proxy_set_header B 2; }
    }
    server { listen 81; location / { return 204; } }
}
`).config!;
    const [s1, s2] = c.http!.servers;
    assert.deepEqual(
      s1!.locations.map((l) => [l.proxyReadTimeoutMs, l.proxySetHeaders]),
      [
        [20_000, [{ name: 'A', value: '1' }]],
        [30_000, [{ name: 'B', value: '2' }]],
      ],
    );
    assert.equal(s1!.keepaliveTimeoutMs, 200_000);
    assert.equal(s1!.lbIdleTimeoutMs, 120_000);
    assert.equal(s2!.lbIdleTimeoutMs, 100_000);
  });

  it('resolves request-level client settings in each location (its own, else inherited), the Keep-Alive header value on its own as nginx', () => {
    const c = check(`http {
    keepalive_timeout 75s 60s;
    client_max_body_size 2m;
    server {
        listen 127.0.0.1:8080;
        keepalive_timeout 30s;
        client_body_buffer_size 8k;
        location /up { proxy_pass http://127.0.0.1:1; client_max_body_size 50m; keepalive_timeout 5s; }
        location /ka { proxy_pass http://127.0.0.1:1; keepalive_timeout 10s 9s; keepalive_requests 3; }
        location / { proxy_pass http://127.0.0.1:1; }
    }
}
`).config!;
    const s = c.http!.servers[0]!;
    assert.deepEqual(
      [s.keepaliveTimeoutMs, s.keepaliveHeaderTimeoutMs, s.clientMaxBodySize, s.clientBodyBufferSize],
      [30_000, 60_000, 2 * 1024 * 1024, 8 * 1024],
    );
    const [up, ka, root] = s.locations;
    assert.deepEqual(
      [up!.clientMaxBodySize, up!.keepaliveTimeoutMs, up!.keepaliveHeaderTimeoutMs, up!.keepaliveRequests],
      [50 * 1024 * 1024, 5000, 60_000, 1000],
    );
    assert.deepEqual(
      [ka!.keepaliveTimeoutMs, ka!.keepaliveHeaderTimeoutMs, ka!.keepaliveRequests],
      [10_000, 9000, 3],
    );
    assert.deepEqual(
      [
        root!.clientMaxBodySize,
        root!.keepaliveTimeoutMs,
        root!.keepaliveHeaderTimeoutMs,
        root!.clientBodyBufferSize,
      ],
      [2 * 1024 * 1024, 30_000, 60_000, 8 * 1024],
    );
  });
});

describe('access_log', () => {
  it('inherits http -> server -> location as nginx, innermost wins', () => {
    const c = check(`http {
    access_log off;
    server {
        listen 127.0.0.1:8080;
        location / { proxy_pass http://127.0.0.1:1; }
        location /loud { proxy_pass http://127.0.0.1:1; access_log on; }
    }
    server {
        listen 127.0.0.1:8081;
        access_log on;
        location / { proxy_pass http://127.0.0.1:1; }
        location /healthz { access_log off; return 200; }
    }
}
`).config!;
    const [quiet, loud] = c.http!.servers;
    assert.deepEqual(
      [quiet!.accessLog, ...quiet!.locations.map((l) => [l.prefix, l.accessLog])],
      [false, ['/', false], ['/loud', true]],
    );
    assert.deepEqual(
      [loud!.accessLog, ...loud!.locations.map((l) => [l.prefix, l.accessLog])],
      [true, ['/', true], ['/healthz', false]],
    );
  });

  it('refuses a path with a hint to redirect standard output', () => {
    const result = check(
      'http {\n    server {\n        location / { return 204; access_log /var/log/nginx/access.log; }\n    }\n}\n',
    );
    assert.equal(result.config, undefined);
    assert.deepEqual(result.diagnostics, [
      {
        severity: 'error',
        code: 'unsupported',
        message: 'access_log: logging to a file ("/var/log/nginx/access.log") is not supported by keepwire',
        file: 'test.conf',
        line: 3,
        col: 45,
        hint: 'keepwire writes its access log as JSON lines on standard output; redirect that, or use access_log off',
      },
    ]);
  });
});

describe('the directive table', () => {
  it('has at most one entry per name and context, so lookup is unambiguous', () => {
    const seen = new Set<string>();
    for (const d of DIRECTIVES) {
      for (const ctx of d.contexts) {
        const key = `${d.name}@${ctx}`;
        assert.ok(!seen.has(key), `${key} twice`);
        seen.add(key);
        assert.equal(lookup(d.name, ctx), d);
      }
    }
  });

  it('parses its own defaults and documents every entry', () => {
    for (const d of DIRECTIVES) {
      if (d.default !== undefined) assert.notEqual(defaultOf(d), undefined, d.name);
      assert.ok(d.doc.length > 20, `${d.name} needs a doc`);
      assert.ok(
        d.contexts.every((c) => CONTEXT_LABEL[c]),
        d.name,
      );
    }
  });

  it('defaults match nginx', () => {
    const def = (name: string, ctx: Parameters<typeof lookup>[1]) => defaultOf(lookup(name, ctx)!);
    assert.equal(def('proxy_timeout', 'stream'), 600_000);
    assert.equal(def('proxy_connect_timeout', 'stream'), 60_000);
    assert.deepEqual(def('keepalive_timeout', 'http'), { timeoutMs: 75_000 });
    assert.equal(def('keepalive_timeout', 'http_upstream'), 60_000);
    assert.equal(def('keepalive_requests', 'http'), 1000);
    assert.equal(def('proxy_http_version', 'location'), '1.0');
    assert.equal(def('client_max_body_size', 'http'), 1_048_576);
    assert.equal(def('proxy_next_upstream_timeout', 'location'), 0);
    assert.equal(def('worker_connections', 'events'), 512);
  });

  it('binds every directive with a default to the model, so a new directive is one entry', () => {
    // Structural directives (blocks, listen, proxy_pass, upstream servers,
    // balancing, return) are read by validate.ts; everything else has a binding.
    for (const d of DIRECTIVES) {
      // A grpc_* twin is bound through its proxy_* twin (read in its place in grpc_pass locations).
      if (d.default !== undefined)
        assert.ok((d.bind && d.bind.length > 0) || d.twinOf?.bind, `${d.name} has a default but no bind`);
      for (const b of d.bind ?? []) {
        assert.ok(b.records.length > 0, d.name);
        for (const kind of b.records) {
          assert.ok(
            bindingsOf(kind).some((x) => x.directive === d && x.binding === b),
            `${d.name} -> ${kind}`,
          );
        }
      }
    }
  });

  it('fills every bound field from the table alone when nothing is set, and the record holds it', () => {
    const c = check(
      'stream { server { listen 127.0.0.1:1; proxy_pass 127.0.0.1:2; } }\nhttp { upstream app { server 127.0.0.1:3; } server { location / { proxy_pass http://app; } } }\n',
    ).config!;
    const records: Record<RecordKind, object> = {
      config: c,
      stream_server: c.stream!.servers[0]!,
      http_server: c.http!.servers[0]!,
      location: c.http!.servers[0]!.locations[0]!,
      http_upstream: c.http!.upstreams.get('app')!,
    };
    // Fields that stay absent when nothing sets them: no default, no unset value.
    const optional = new Set(['lbIdleTimeoutMs', 'keepaliveHeaderTimeoutMs']);
    for (const [kind, record] of Object.entries(records) as [RecordKind, object][]) {
      const defaults = recordDefaults(kind);
      for (const { binding } of bindingsOf(kind)) {
        if (optional.has(binding.field)) {
          assert.ok(!(binding.field in record), `${kind}.${binding.field} should be absent`);
          continue;
        }
        assert.deepEqual(
          (record as Record<string, unknown>)[binding.field],
          defaults[binding.field],
          `${kind}.${binding.field}`,
        );
      }
    }
  });
});
