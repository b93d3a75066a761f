/**
 * The directive table, keepwire's `ngx_command_t`: one entry per directive
 * and context gives its arity, value parser, default and documentation.
 * Parsing, validation, defaults and docs/config.md all come from here.
 */
import type { KeepaliveSpec } from '../keepalive/spec.js';
import type {
  Address,
  Balancing,
  Config,
  HttpLocation,
  HttpServer,
  HttpUpstreamGroup,
  LbKind,
  NextUpstreamCondition,
  SessionCache,
  StreamServer,
  TlsProtocol,
  UpstreamServer,
  WebSocketHeartbeat,
  WorkerProcesses,
} from './model.js';
import {
  type ArgError,
  bad,
  commaError,
  parseAddress,
  parseFlag,
  parseInteger,
  parseKeepalive,
  parseSize,
  parseTime,
  parseTimer,
  type Result,
  shifted,
  splitParam,
} from './values.js';

/** Where a directive may appear. nginx names both `server` blocks `server`; keepwire tells them apart. */
export type Context =
  | 'main'
  | 'events'
  | 'stream'
  | 'stream_upstream'
  | 'stream_server'
  | 'http'
  | 'http_upstream'
  | 'http_server'
  | 'location';

/** How nginx's documentation names each context. */
export const CONTEXT_LABEL: Record<Context, string> = {
  main: 'main',
  events: 'events',
  stream: 'stream',
  stream_upstream: 'upstream (stream)',
  stream_server: 'server (stream)',
  http: 'http',
  http_upstream: 'upstream (http)',
  http_server: 'server (http)',
  location: 'location',
};

/**
 * The model records directive values land in (config/model.ts). Each record
 * is resolved from its own block outward: a location from location, server,
 * http, main; a stream server from server, stream, main; an upstream group
 * from its own block only; the config from main and events.
 */
export type RecordKind = 'config' | 'stream_server' | 'http_server' | 'location' | 'http_upstream';

export type BoundField =
  | keyof Config
  | keyof StreamServer
  | keyof HttpServer
  | keyof HttpLocation
  | keyof HttpUpstreamGroup;

/**
 * How a record takes a directive's value, as nginx merges it
 * (ngx_conf_merge_*_value, and ngx_http_proxy_merge_loc_conf for arrays):
 * - `inherit`: the innermost level that sets it, else the default;
 * - `inherit-list`: every value of the innermost level that sets any (a
 *   level setting one proxy_set_header inherits none from outer levels);
 * - `local`: the record's own block only (upstream settings, server_name).
 */
export type Merge = 'inherit' | 'inherit-list' | 'local';

export interface Binding<T = unknown> {
  records: readonly RecordKind[];
  field: BoundField;
  merge: Merge;
  /**
   * From the directive's value to the field's. `undefined` means this level
   * does not set the field, so it is inherited on its own (the header value
   * of `keepalive_timeout`, as nginx merges it).
   */
  project?(value: T): unknown;
  /** The field's value when no level sets it and the directive has no default; without it the field stays absent. */
  unset?: unknown;
}

export type DirectiveResult<T> = { ok: true; value: T } | { ok: false; error: ArgError & { arg: number } };

export interface Directive<T = unknown> {
  name: string;
  /** Which part of the docs lists it. */
  module: 'core' | 'stream' | 'http';
  contexts: readonly Context[];
  /** For block directives: the context their contents are in. */
  block?: Context;
  /** Arguments as the docs show them, after the name. */
  syntax: string;
  minArgs: number;
  maxArgs: number;
  /** May appear more than once in one block. */
  multiple?: boolean;
  /** The default as written in config; parsed by `parse` itself, so docs and model cannot disagree. */
  default?: string;
  /** Why there is no default, for the docs (e.g. "—, keepalive off"). */
  defaultNote?: string;
  /** keepwire's own directive, or a keepwire extension of an nginx directive. */
  keepwire?: 'directive' | 'extension';
  parse: (args: readonly string[]) => DirectiveResult<T>;
  /** Where the value goes in the model; a directive without one is structural (blocks, listen, proxy_pass, upstream servers) and read by validate.ts itself. */
  bind?: readonly Binding<T>[];
  /**
   * A `grpc_*` directive is its `proxy_*` twin's value for `grpc_pass`
   * locations: the twin's parser and model field, read in place of the twin
   * there (validate.ts), as nginx's grpc module has its own copy of each.
   */
  twinOf?: Directive<T>;
  doc: string;
}

/** A binding of records' `field`, merged by `merge` (default `inherit`). */
function bind<T = never>(
  records: readonly RecordKind[],
  field: BoundField,
  extra: Partial<Omit<Binding<T>, 'records' | 'field'>> = {},
): Binding<T> {
  return { records, field, merge: 'inherit', ...extra };
}

const HTTP_LEVELS: readonly RecordKind[] = ['http_server', 'location'];

const done = <T>(value: T): DirectiveResult<T> => ({ ok: true, value });

function atArg<T>(result: Result<T>, arg: number): DirectiveResult<T> {
  return result.ok ? result : { ok: false, error: { ...result.error, arg } };
}

const single =
  <T>(parser: (text: string) => Result<T>) =>
  (args: readonly string[]): DirectiveResult<T> =>
    atArg(parser(args[0]!), 0);

const none = (): DirectiveResult<true> => done(true);
/** Every time directive runs as a timer, except the lifetimes below (compared with the clock). */
const time = single(parseTimer);
const lifetime = single(parseTime);
const flag = single(parseFlag);
const count = (min: number, max?: number) => single((t) => parseInteger(t, min, max));
const path = single((text: string): Result<string> => done(text));
const text = single((t: string): Result<string> => done(t));

// ---- entry builders ---------------------------------------------------------------------
// Most directives take one value of a common shape (a time, a flag, a size, ...).
// A builder writes the shape (syntax as the docs show it, arity, parser) once, so an
// entry holds only what is its own: name, module, contexts, default, binding, doc.

/** An entry written out in full: for directives whose shape is their own. */
function d<T>(directive: Directive<T>): Directive<T> {
  return directive;
}

/** A value shape: how the docs write the arguments, how many, and their parser. */
type Shape<T> = Pick<Directive<T>, 'syntax' | 'minArgs' | 'maxArgs' | 'parse'>;

/** The builder of entries of one shape. */
const entry =
  <T>(shape: Shape<T>) =>
  (own: Omit<Directive<T>, keyof Shape<T>>): Directive<T> => ({ ...own, ...shape });

const oneArg = <T>(syntax: string, parse: Directive<T>['parse']): Shape<T> => ({
  syntax,
  minArgs: 1,
  maxArgs: 1,
  parse,
});

/** `time`, run as a timer (reads, sends, connects, idle). */
const timeEntry = entry(oneArg('time', time));
/** `time` compared with the clock: the longest life of a connection or session. */
const lifetimeEntry = entry(oneArg('time', lifetime));
/** `off` or a timer: keepwire's periodic extensions that are off by default. */
const offOrTimeEntry = entry(oneArg('off | time', single(parseOffOrTimer)));
const flagEntry = entry(oneArg('on | off', flag));
const sizeEntry = entry(oneArg('size', single(parseSize)));
const numberEntry = (min: number, max?: number) => entry(oneArg('number', count(min, max)));
const fileEntry = entry(oneArg('file', path));
/** `proxy_socket_keepalive`-like: nginx's on|off, or a full spec in `so_keepalive` syntax. */
const keepaliveEntry = entry(oneArg('on | off | [idle]:[interval]:[count]', parseSocketKeepalive));
/** A contiguous range of TLS versions (`ssl_protocols`, `proxy_ssl_protocols`). */
const protocolsEntry = entry({
  syntax: '[TLSv1] [TLSv1.1] [TLSv1.2] [TLSv1.3]',
  minArgs: 1,
  maxArgs: 4,
  parse: parseProtocols,
});
/** TLS 1.2 cipher suites in OpenSSL's format (`ssl_ciphers`, `proxy_ssl_ciphers`). */
const ciphersEntry = entry(oneArg('ciphers', text));
/** A block directive without arguments (`events`, `http`, `server`, ...). */
const blockEntry = entry({ syntax: '{ ... }', minArgs: 0, maxArgs: 0, parse: none });
/** A directive without arguments (`health`, `metrics`, ...). */
const bareEntry = entry({ syntax: '', minArgs: 0, maxArgs: 0, parse: none });

/** Contexts most directives share: a level and the levels inside it. */
const HTTP_TO_LOCATION: readonly Context[] = ['http', 'http_server', 'location'];
const HTTP_TO_SERVER: readonly Context[] = ['http', 'http_server'];
const STREAM_TO_SERVER: readonly Context[] = ['stream', 'stream_server'];
const UPSTREAMS: readonly Context[] = ['stream_upstream', 'http_upstream'];

// ---- values of structured directives ------------------------------------------------

export interface ListenValue {
  address: Address;
  soKeepalive?: KeepaliveSpec;
  /** Index of the `so_keepalive=` argument, for hazards pointing at it. */
  soKeepaliveArg?: number;
  backlog: number;
  reuseport: boolean;
  /** Whether any socket option was written (nginx lets only one server set them per address). */
  hasOptions: boolean;
  /** `default_server` (http only): this server answers requests whose Host no server_name matches. */
  defaultServer: boolean;
  /** `ssl`: TLS on this address. */
  ssl: boolean;
}

/** Default 511 as nginx on Linux (NGX_LISTEN_BACKLOG). */
export const DEFAULT_BACKLOG = 511;

const NGINX_ONLY_LISTEN = new Set([
  'http2',
  'quic',
  'proxy_protocol',
  'udp',
  'bind',
  'ipv6only',
  'fastopen',
  'deferred',
  'rcvbuf',
  'sndbuf',
  'accept_filter',
  'setfib',
  'multipath',
]);

const LISTEN_HINT = {
  http: 'keepwire listen takes ADDRESS [default_server] [ssl] [so_keepalive=on|off|idle:interval:count] [backlog=N] [reuseport]',
  stream:
    'keepwire listen takes ADDRESS [ssl] [so_keepalive=on|off|idle:interval:count] [backlog=N] [reuseport]',
};

const parseListen =
  (kind: 'http' | 'stream') =>
  (args: readonly string[]): DirectiveResult<ListenValue> => {
    const address = parseAddress(args[0]!, { listen: true, defaultPort: 80 });
    if (!address.ok) return atArg(address, 0);
    const value: ListenValue = {
      address: address.value,
      backlog: DEFAULT_BACKLOG,
      reuseport: false,
      hasOptions: false,
      defaultServer: false,
      ssl: false,
    };
    for (let i = 1; i < args.length; i++) {
      const text = args[i]!;
      const comma = commaError<never>(text, 'listen');
      if (comma) return atArg(comma, i);
      const p = splitParam(text);
      // `default` is nginx's older spelling, still accepted by nginx.
      if (text === 'default_server' || text === 'default') {
        if (kind === 'stream') {
          return atArg(
            bad(
              `listen parameter "${text}" is not valid in stream: a keepwire stream server has no server_name, so each address has exactly one server and there is no default to choose`,
              0,
              'remove it; the one stream server on this address gets every connection',
              'unsupported',
            ),
            i,
          );
        }
        value.defaultServer = true;
        continue;
      }
      // As nginx, `ssl` on any listen of an address makes the address TLS; it is not a socket option.
      if (text === 'ssl') {
        value.ssl = true;
        continue;
      }
      value.hasOptions = true;
      if (p.name === 'so_keepalive' && p.value !== undefined) {
        const spec = parseKeepalive(text);
        if (!spec.ok) return atArg(spec, i);
        value.soKeepalive = spec.value;
        value.soKeepaliveArg = i;
      } else if (p.name === 'backlog' && p.value !== undefined) {
        const n = shifted(parseInteger(p.value, 1, 65535), p.valueOffset);
        if (!n.ok) return atArg(n, i);
        value.backlog = n.value;
      } else if (text === 'reuseport') {
        value.reuseport = true;
      } else {
        const known = NGINX_ONLY_LISTEN.has(p.name);
        // nginx 1.25.1 deprecated `listen ... http2` for the `http2` directive, which keepwire has.
        const http2 = text === 'http2' && kind === 'http';
        return atArg(
          bad(
            known
              ? `listen parameter "${p.name}" is not supported by keepwire`
              : `invalid listen parameter "${text}"`,
            0,
            http2 ? 'write `http2 on;` in the server block (nginx 1.25.1+ syntax)' : LISTEN_HINT[kind],
            known ? 'unsupported' : 'bad-value',
          ),
          i,
        );
      }
    }
    return done(value);
  };

export type UpstreamServerValue = Omit<UpstreamServer, 'source'>;

/**
 * nginx's defaults for an upstream `server` line: weight=1 max_fails=1
 * fail_timeout=10s max_conns=0 (unlimited). Also what `proxy_pass ADDRESS`,
 * an implicit group of one server, runs with (upstream/index.ts).
 */
export const UPSTREAM_SERVER_DEFAULTS: Readonly<Omit<UpstreamServerValue, 'address' | 'keepaliveTimeoutMs'>> =
  {
    weight: 1,
    maxFails: 1,
    failTimeoutMs: 10_000,
    maxConns: 0,
    backup: false,
    down: false,
  };

const NGINX_ONLY_SERVER = new Set(['resolve', 'service', 'route', 'slow_start', 'drain']);

function parseUpstreamServer(defaultPort?: number) {
  return (args: readonly string[]): DirectiveResult<UpstreamServerValue> => {
    const address = parseAddress(args[0]!, defaultPort === undefined ? {} : { defaultPort });
    if (!address.ok) return atArg(address, 0);
    const value: UpstreamServerValue = { address: address.value, ...UPSTREAM_SERVER_DEFAULTS };
    for (let i = 1; i < args.length; i++) {
      const text = args[i]!;
      const comma = commaError<never>(text, 'server');
      if (comma) return atArg(comma, i);
      const p = splitParam(text);
      const at = p.valueOffset;
      let r: Result<unknown>;
      if (p.value === undefined && (p.name === 'backup' || p.name === 'down')) {
        value[p.name] = true;
        continue;
      }
      if (p.value === undefined) r = bad(`invalid server parameter "${text}"`, 0, SERVER_HINT);
      else if (p.name === 'weight') r = shifted(parseInteger(p.value, 1), at);
      else if (p.name === 'max_fails') r = shifted(parseInteger(p.value, 0), at);
      else if (p.name === 'max_conns') r = shifted(parseInteger(p.value, 0), at);
      else if (p.name === 'fail_timeout') r = shifted(parseTime(p.value), at);
      else if (p.name === 'keepalive_timeout') r = shifted(parseTime(p.value), at);
      else if (NGINX_ONLY_SERVER.has(p.name))
        r = bad(`server parameter "${p.name}" is not supported by keepwire`, 0, SERVER_HINT, 'unsupported');
      else r = bad(`invalid server parameter "${text}"`, 0, SERVER_HINT);
      if (!r.ok) return atArg(r, i);
      const n = r.value as number;
      if (p.name === 'weight') value.weight = n;
      else if (p.name === 'max_fails') value.maxFails = n;
      else if (p.name === 'max_conns') value.maxConns = n;
      else if (p.name === 'fail_timeout') value.failTimeoutMs = n;
      else value.keepaliveTimeoutMs = n;
    }
    return done(value);
  };
}

const SERVER_HINT =
  'server ADDRESS [weight=N] [max_fails=N] [fail_timeout=TIME] [max_conns=N] [keepalive_timeout=TIME] [backup] [down]';

/** What `proxy_pass` names, resolved against the upstreams once the whole block is read. */
export interface ProxyPassValue {
  text: string;
  /** The host part: an upstream name or a host. */
  host: string;
  /** The host/port as an address when it parses as one; a name alone is left to resolution. */
  address?: Address;
  /** Offset of the host part inside the argument. */
  hostOffset: number;
  /** Whether a port was written: `NAME` alone must be an upstream. */
  explicitPort: boolean;
  /** `https://`: TLS to the upstream. */
  https?: boolean;
}

function proxyTarget(text: string, hostOffset: number, defaultPort?: number): Result<ProxyPassValue> {
  const hostText = text.slice(hostOffset);
  if (hostText.includes('$')) {
    return bad(
      'variables in proxy_pass are not supported by keepwire',
      hostOffset + hostText.indexOf('$'),
      'name an upstream block or write host:port',
      'unsupported',
    );
  }
  const explicitPort = /^\[.*\]:|^[^[\]:]*:/.test(hostText);
  const host = hostText.startsWith('[') ? hostText.slice(1, hostText.indexOf(']')) : hostText.split(':')[0]!;
  const rules = defaultPort === undefined ? {} : { defaultPort };
  const address = shifted(parseAddress(hostText, rules), hostOffset);
  if (!address.ok) {
    // A bare name is fine here: it may name an upstream block, checked later.
    const bareName = !explicitPort && /^[A-Za-z0-9_.-]+$/.test(hostText);
    if (!bareName) return address;
  }
  const value: ProxyPassValue = { text, host, hostOffset, explicitPort };
  if (address.ok) value.address = address.value;
  return done(value);
}

function parseStreamProxyPass(args: readonly string[]): DirectiveResult<ProxyPassValue> {
  const text = args[0]!;
  if (/^[a-z]+:\/\//i.test(text)) {
    return atArg(
      bad(
        `stream proxy_pass takes an upstream name or host:port, not a URL ("${text}")`,
        0,
        'URLs belong to http locations; here write e.g. proxy_pass db; or proxy_pass 127.0.0.1:5432;',
      ),
      0,
    );
  }
  return atArg(proxyTarget(text, 0), 0);
}

function parseHttpProxyPass(args: readonly string[]): DirectiveResult<ProxyPassValue> {
  const text = args[0]!;
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(text);
  if (!scheme) {
    return atArg(
      bad(
        `proxy_pass "${text}" needs an http:// URL`,
        0,
        'e.g. proxy_pass http://app; or http://127.0.0.1:3000',
      ),
      0,
    );
  }
  const schemeName = scheme[1]!.toLowerCase();
  if (schemeName !== 'http' && schemeName !== 'https') {
    return atArg(
      bad(
        `the "${scheme[1]}" scheme is not supported by keepwire`,
        0,
        'keepwire proxies HTTP/1.x: use http:// or https://',
        'unsupported',
      ),
      0,
    );
  }
  const start = scheme[0].length;
  if (text.startsWith('unix:', start)) {
    const refused = shifted(parseAddress(text.slice(start)), start);
    if (!refused.ok) return atArg(refused, 0);
  }
  const slash = text.indexOf('/', start);
  if (slash !== -1) {
    return atArg(
      bad(
        `a URI part in proxy_pass ("${text.slice(slash)}") is not supported by keepwire`,
        slash,
        'keepwire passes the request URI unchanged; remove the path',
        'unsupported',
      ),
      0,
    );
  }
  const target = proxyTarget(text, start, schemeName === 'https' ? 443 : 80);
  if (target.ok && schemeName === 'https') target.value.https = true;
  return atArg(target, 0);
}

function parseBalancingHash(args: readonly string[]): DirectiveResult<Balancing> {
  if (args[1] !== undefined && args[1] !== 'consistent') {
    return atArg(bad(`invalid parameter "${args[1]}"`, 0, 'hash KEY [consistent]'), 1);
  }
  return done({ kind: 'hash', key: args[0]!, consistent: args[1] === 'consistent' });
}

function parseBalancingRandom(args: readonly string[]): DirectiveResult<Balancing> {
  if (args[0] !== undefined && args[0] !== 'two') {
    return atArg(bad(`invalid parameter "${args[0]}"`, 0, 'random [two [least_conn]]'), 0);
  }
  // `least_conn` is the only method nginx accepts after `two`, and keepwire's default for it.
  if (args[1] !== undefined && args[1] !== 'least_conn') {
    return atArg(bad(`invalid parameter "${args[1]}"`, 0, 'random [two [least_conn]]'), 1);
  }
  return done({ kind: 'random', two: args[0] === 'two' });
}

export interface KeepaliveTimeoutValue {
  timeoutMs: number;
  headerMs?: number;
}

function parseServerKeepaliveTimeout(args: readonly string[]): DirectiveResult<KeepaliveTimeoutValue> {
  const t = atArg(parseTimer(args[0]!), 0);
  if (!t.ok) return t;
  if (args[1] === undefined) return done({ timeoutMs: t.value });
  const h = atArg(parseTime(args[1]), 1);
  if (!h.ok) return h;
  return done({ timeoutMs: t.value, headerMs: h.value });
}

export interface HeaderBuffersValue {
  number: number;
  size: number;
}

/** large_client_header_buffers: keepwire holds a whole head in memory, so both are bounded. */
function parseHeaderBuffers(args: readonly string[]): DirectiveResult<HeaderBuffersValue> {
  const n = atArg(parseInteger(args[0]!, 1, 64), 0);
  if (!n.ok) return n;
  const size = atArg(headerBufferSize(args[1]!), 1);
  if (!size.ok) return size;
  return done({ number: n.value, size: size.value });
}

function headerBufferSize(text: string): Result<number> {
  const size = parseSize(text);
  if (size.ok && (size.value < 128 || size.value > 1024 * 1024))
    return bad(`size "${text}" is out of range`, 0, 'header buffers are 128 bytes to 1m, e.g. 8k');
  return size;
}

/** `off` (0) or a timer value: keepwire's periodic extensions that are off by default. */
function parseOffOrTimer(text: string): Result<number> {
  if (text === 'off') return { ok: true, value: 0 };
  const t = parseTimer(text);
  if (t.ok && t.value === 0) return bad('time 0 is not allowed', 0, 'write `off` to turn it off');
  return t;
}

function parseHttpVersion(args: readonly string[]): DirectiveResult<'1.0' | '1.1'> {
  const v = args[0]!;
  if (v === '1.0' || v === '1.1') return done(v);
  return atArg(bad(`invalid value "${v}"`, 0, 'proxy_http_version takes 1.0 or 1.1'), 0);
}

function parseWebSocketHeartbeat(args: readonly string[]): DirectiveResult<WebSocketHeartbeat | null> {
  if (args[0] === 'off') {
    if (args.length > 1)
      return atArg(bad(`unexpected "${args[1]}" after off`, 0, 'write `websocket_heartbeat off;`'), 1);
    return done(null);
  }
  const t = atArg(parseTime(args[0]!), 0);
  if (!t.ok) return t;
  if (t.value === 0)
    return atArg(bad('heartbeat interval must be above 0', 0, 'write `off` to send no heartbeats'), 0);
  const side = args[1] ?? 'both';
  if (side !== 'both' && side !== 'client' && side !== 'upstream') {
    return atArg(bad(`invalid side "${side}"`, 0, 'the side is both, client or upstream'), 1);
  }
  return done({ intervalMs: t.value, side });
}

function parseLbKind(args: readonly string[]): DirectiveResult<LbKind> {
  const v = args[0]!;
  if (v === 'l4' || v === 'l7') return done(v);
  return atArg(
    bad(
      `invalid value "${v}"`,
      0,
      'lb_kind takes l4 (forwards TCP segments: LVS, NLB, NAT) or l7 (terminates TCP: ALB, ingress-nginx, Cloudflare)',
    ),
    0,
  );
}

/** `worker_processes auto | N` as nginx: `auto` is resolved by the master to the CPUs it may use. */
function parseWorkerProcesses(args: readonly string[]): DirectiveResult<WorkerProcesses> {
  const v = args[0]!;
  if (v === 'auto') return done('auto');
  if (/^[0-9]+$/.test(v) && Number(v) >= 1 && Number(v) <= 1024) return done(Number(v));
  return atArg(
    bad(`invalid value "${v}"`, 0, 'worker_processes takes auto (one per CPU) or a number from 1 to 1024'),
    0,
  );
}

function parseSocketKeepalive(args: readonly string[]): DirectiveResult<KeepaliveSpec> {
  return atArg(parseKeepalive(args[0]!), 0);
}

const NEXT_UPSTREAM: readonly NextUpstreamCondition[] = [
  'error',
  'timeout',
  'invalid_header',
  'http_500',
  'http_502',
  'http_503',
  'http_504',
  'http_403',
  'http_404',
  'http_429',
  'non_idempotent',
];

function parseNextUpstream(args: readonly string[]): DirectiveResult<NextUpstreamCondition[]> {
  if (args.length === 1 && args[0] === 'off') return done([]);
  const out: NextUpstreamCondition[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === 'off') {
      return atArg(bad('"off" cannot be combined with other conditions', 0, 'write either off or a list'), i);
    }
    if (!NEXT_UPSTREAM.includes(a as NextUpstreamCondition)) {
      return atArg(bad(`invalid value "${a}"`, 0, `conditions: ${NEXT_UPSTREAM.join(' ')} | off`), i);
    }
    if (!out.includes(a as NextUpstreamCondition)) out.push(a as NextUpstreamCondition);
  }
  return done(out);
}

const ACCESS_LOG_HINT =
  'keepwire writes its access log as JSON lines on standard output; redirect that, or use access_log off';

/**
 * `access_log off | on`. nginx's `access_log path [format ...]` (a file,
 * `syslog:` or `memory:`) is an error, not silently ignored: keepwire has one
 * access log, JSON lines on standard output.
 */
function parseAccessLog(args: readonly string[]): DirectiveResult<boolean> {
  const first = args[0]!;
  if (first === 'off' || first === 'on') {
    if (args.length > 1) {
      return atArg(
        bad(
          `"${first}" takes no other parameters (got "${args[1]}")`,
          0,
          'write access_log off; or access_log on;',
        ),
        1,
      );
    }
    return done(first === 'on');
  }
  const where = first.startsWith('syslog:')
    ? 'to syslog'
    : first.startsWith('memory:')
      ? 'to memory'
      : 'to a file';
  return atArg(
    bad(`logging ${where} ("${first}") is not supported by keepwire`, 0, ACCESS_LOG_HINT, 'unsupported'),
    0,
  );
}

function parseReturn(args: readonly string[]): DirectiveResult<{ code: number; text?: string }> {
  // nginx accepts 0..999 and 444 ("close without response").
  const code = atArg(parseInteger(args[0]!, 0, 999), 0);
  if (!code.ok) return code;
  return done(args[1] === undefined ? { code: code.value } : { code: code.value, text: args[1] });
}

function parseLocation(args: readonly string[]): DirectiveResult<{ prefix: string }> {
  if (args.length === 2 || ['=', '~', '~*', '^~'].includes(args[0]!) || args[0]!.startsWith('@')) {
    return atArg(
      bad(
        `location modifier "${args.length === 2 ? args[0] : args[0]![0]}" is not supported by keepwire`,
        0,
        'keepwire matches prefix locations only (longest prefix wins): location /api/ { ... }',
        'unsupported',
      ),
      0,
    );
  }
  return done({ prefix: args[0]! });
}

function parseName(args: readonly string[]): DirectiveResult<{ name: string }> {
  const name = args[0]!;
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) {
    const at = /[^A-Za-z0-9_.-]/.exec(name)?.index ?? 0;
    return atArg(bad(`invalid upstream name "${name}"`, at, 'use letters, digits, "_", "-" and "."'), 0);
  }
  return done({ name });
}

function parseHeader(args: readonly string[]): DirectiveResult<{ name: string; value: string }> {
  const name = args[0]!;
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
    const at = /[^!#$%&'*+.^_`|~0-9A-Za-z-]/.exec(name)?.index ?? 0;
    return atArg(bad(`invalid header name "${name}"`, at, 'header names are RFC 9110 tokens'), 0);
  }
  return done({ name, value: args[1]! });
}

function parseServerNames(args: readonly string[]): DirectiveResult<string[]> {
  return done(args.filter((a) => a !== ''));
}

// ---- TLS (ngx_http_ssl_module / ngx_stream_ssl_module, and the proxy_ssl_* of the proxy modules) ----

const TLS_PROTOCOLS: readonly TlsProtocol[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/**
 * `ssl_protocols`: Node (OpenSSL through `minVersion`/`maxVersion`) enables
 * a contiguous range, so a list with a hole (TLSv1 TLSv1.2) is refused
 * rather than silently widened. SSLv2/SSLv3 are gone from OpenSSL 3.
 */
function parseProtocols(args: readonly string[]): DirectiveResult<TlsProtocol[]> {
  const out: TlsProtocol[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === 'SSLv2' || a === 'SSLv3')
      return atArg(
        bad(`"${a}" is not supported (OpenSSL 3 has no SSL)`, 0, 'use TLSv1.2 TLSv1.3', 'unsupported'),
        i,
      );
    if (!TLS_PROTOCOLS.includes(a as TlsProtocol))
      return atArg(bad(`invalid protocol "${a}"`, 0, `protocols: ${TLS_PROTOCOLS.join(' ')}`), i);
    if (!out.includes(a as TlsProtocol)) out.push(a as TlsProtocol);
  }
  const ranks = out.map((p) => TLS_PROTOCOLS.indexOf(p)).sort((a, b) => a - b);
  if (ranks[ranks.length - 1]! - ranks[0]! + 1 !== ranks.length)
    return atArg(
      bad(
        'the protocols must be a contiguous range',
        0,
        'OpenSSL enables a range from the lowest to the highest version; list every version in between',
      ),
      0,
    );
  return done(ranks.map((r) => TLS_PROTOCOLS[r]!));
}

/** Sessions per megabyte of nginx's shared cache ("about 4000 sessions" per 1m). */
const SESSIONS_PER_MB = 4000;

/**
 * `ssl_session_cache off | none | [builtin[:size]] [shared:name:size]`. keepwire
 * keeps one in-process cache per configuration generation: `builtin:N` holds N
 * sessions, `shared:NAME:SIZE` about 4000 per megabyte as nginx's shared zone.
 */
function parseSessionCache(args: readonly string[]): DirectiveResult<SessionCache> {
  if (args.length === 1 && (args[0] === 'off' || args[0] === 'none')) return done({ kind: args[0] });
  let size = 0;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === 'builtin') size += 20480;
    else if (a.startsWith('builtin:')) {
      const n = shifted(parseInteger(a.slice(8), 1), 8);
      if (!n.ok) return atArg(n, i);
      size += n.value;
    } else if (a.startsWith('shared:')) {
      const parts = a.split(':');
      if (parts.length !== 3 || parts[1] === '')
        return atArg(bad(`invalid session cache "${a}"`, 0, 'shared:NAME:SIZE, e.g. shared:SSL:10m'), i);
      const bytes = shifted(parseSize(parts[2]!), 8 + parts[1]!.length);
      if (!bytes.ok) return atArg(bytes, i);
      size += Math.max(1, Math.floor((bytes.value / (1024 * 1024)) * SESSIONS_PER_MB));
    } else
      return atArg(
        bad(`invalid session cache "${a}"`, 0, 'off | none | [builtin[:size]] [shared:name:size]'),
        i,
      );
  }
  return done({ kind: 'cache', size, text: args.join(' ') });
}

/**
 * The server-side TLS directives of one module (http or stream): nginx
 * writes them the same in both, each module its own copy.
 */
function serverSsl(module: 'http' | 'stream') {
  const contexts = module === 'http' ? HTTP_TO_SERVER : STREAM_TO_SERVER;
  const record: RecordKind[] = [module === 'http' ? 'http_server' : 'stream_server'];
  return {
    certificate: fileEntry({
      name: 'ssl_certificate',
      module,
      contexts,
      multiple: true,
      doc: 'A certificate (PEM, the server certificate first and then its chain, e.g. `fullchain.pem`) for the `ssl` listeners of the server. Given several times (an RSA and an ECDSA certificate), each pairs with the `ssl_certificate_key` of the same rank, and OpenSSL picks the one the client supports. Relative paths are relative to the file that names them. Files are read when the configuration is loaded: a reload (SIGHUP) reads renewed files; `check` reports a key that does not match, an unreadable key, an expired certificate (error) or one expiring within 14 days (warning).',
    }),
    certificateKey: fileEntry({
      name: 'ssl_certificate_key',
      module,
      contexts,
      multiple: true,
      doc: 'The private key (PEM) of the `ssl_certificate` of the same rank. `check` warns when the file is readable by other users.',
    }),
    protocols: protocolsEntry({
      name: 'ssl_protocols',
      module,
      contexts,
      default: 'TLSv1.2 TLSv1.3',
      bind: [bind(record, 'sslProtocols')],
      doc: 'The TLS versions accepted, a contiguous range (OpenSSL enables the lowest to the highest listed).',
    }),
    ciphers: ciphersEntry({
      name: 'ssl_ciphers',
      module,
      contexts,
      default: 'HIGH:!aNULL:!MD5',
      bind: [bind(record, 'sslCiphers')],
      doc: "The TLS 1.2 cipher suites, in OpenSSL's format (`openssl ciphers`), as nginx. TLS 1.3 suites are OpenSSL's defaults.",
    }),
    preferServerCiphers: flagEntry({
      name: 'ssl_prefer_server_ciphers',
      module,
      contexts,
      default: 'off',
      bind: [bind(record, 'sslPreferServerCiphers')],
      doc: "Whether the server's cipher order wins over the client's (TLS 1.2).",
    }),
    sessionCache: d({
      name: 'ssl_session_cache',
      module,
      contexts,
      syntax: 'off | none | [builtin[:size]] [shared:name:size]',
      minArgs: 1,
      maxArgs: 2,
      default: 'none',
      parse: parseSessionCache,
      bind: [bind(record, 'sslSessionCache')],
      doc: 'A cache of TLS sessions for resumption by session ID. keepwire keeps it in the serving process (one per configuration generation): `builtin:N` holds N sessions, `shared:NAME:SIZE` about 4000 sessions per megabyte, as nginx sizes its zone; with several worker processes each keeps its own, so resumption across workers relies on session tickets (`ssl_session_tickets`, keyed the same in every worker). `none` and `off` keep no sessions.',
    }),
    sessionTimeout: lifetimeEntry({
      name: 'ssl_session_timeout',
      module,
      contexts,
      default: '5m',
      bind: [bind(record, 'sslSessionTimeoutMs')],
      doc: 'How long a session (cached or in a ticket) may be resumed.',
    }),
    sessionTickets: flagEntry({
      name: 'ssl_session_tickets',
      module,
      contexts,
      default: 'on',
      bind: [bind(record, 'sslSessionTickets')],
      doc: 'Resumption by session tickets (RFC 5077, and TLS 1.3 tickets). The ticket keys are 48 random bytes made once per configuration generation by the process that loads it and given to every serving process, so a ticket issued by one worker resumes on another; a reload makes new keys (tickets from before it make a full handshake), which is how they rotate, as nginx without `ssl_session_ticket_key` files.',
    }),
    handshakeTimeout: timeEntry({
      name: 'ssl_handshake_timeout',
      module,
      contexts,
      default: '60s',
      bind: [bind(record, 'sslHandshakeTimeoutMs')],
      doc: 'The longest a TLS handshake may take; then the connection is closed. The wait for the first byte counts too.',
    }),
  };
}

/** The proxy_ssl_* directives of one module: TLS toward the upstream. */
function upstreamSsl(module: 'http' | 'stream') {
  const contexts = module === 'http' ? HTTP_TO_LOCATION : STREAM_TO_SERVER;
  const record: RecordKind[] = [module === 'http' ? 'location' : 'stream_server'];
  const when = module === 'http' ? 'to `https://` upstreams' : 'to the upstream under `proxy_ssl on`';
  return {
    verify: flagEntry({
      name: 'proxy_ssl_verify',
      module,
      contexts,
      default: 'off',
      bind: [bind(record, 'proxySslVerify')],
      doc: `Whether the upstream's certificate is verified ${when} (against \`proxy_ssl_trusted_certificate\`, and its name against \`proxy_ssl_name\`). Off by default, as nginx: \`check\` warns, since then anyone on the path can pose as the upstream. A failed verification is a failed attempt (502, the reason logged).`,
    }),
    trustedCertificate: fileEntry({
      name: 'proxy_ssl_trusted_certificate',
      module,
      contexts,
      defaultNote: "— (Node's bundled CA store)",
      bind: [bind(record, 'proxySslTrustedCertificate')],
      doc: 'CA certificates (PEM) that verify the upstream. `check` reports a file that does not parse.',
    }),
    verifyDepth: numberEntry(
      0,
      100,
    )({
      name: 'proxy_ssl_verify_depth',
      module,
      contexts,
      default: '1',
      bind: [bind(record, 'proxySslVerifyDepth')],
      doc: "The longest chain of intermediate certificates accepted above the upstream's certificate, as nginx (1: the certificate is signed by a trusted CA directly or through one intermediate).",
    }),
    serverName: flagEntry({
      name: 'proxy_ssl_server_name',
      module,
      contexts,
      default: 'off',
      bind: [bind(record, 'proxySslServerName')],
      doc: 'Whether the name of `proxy_ssl_name` is sent as SNI.',
    }),
    name: d({
      name: 'proxy_ssl_name',
      module,
      contexts,
      syntax: 'name',
      minArgs: 1,
      maxArgs: 1,
      defaultNote: '— (the host of proxy_pass)',
      parse: text,
      bind: [bind(record, 'proxySslName')],
      doc: "The name the upstream's certificate is verified against and sent as SNI; by default the host of `proxy_pass` (the upstream group's name).",
    }),
    certificate: fileEntry({
      name: 'proxy_ssl_certificate',
      module,
      contexts,
      defaultNote: '— (no client certificate)',
      bind: [bind(record, 'proxySslCertificate')],
      doc: 'A client certificate (PEM) presented to upstreams that ask for one.',
    }),
    certificateKey: fileEntry({
      name: 'proxy_ssl_certificate_key',
      module,
      contexts,
      defaultNote: '—',
      bind: [bind(record, 'proxySslCertificateKey')],
      doc: 'The private key of `proxy_ssl_certificate`.',
    }),
    protocols: protocolsEntry({
      name: 'proxy_ssl_protocols',
      module,
      contexts,
      default: 'TLSv1.2 TLSv1.3',
      bind: [bind(record, 'proxySslProtocols')],
      doc: 'The TLS versions offered to the upstream, a contiguous range.',
    }),
    ciphers: ciphersEntry({
      name: 'proxy_ssl_ciphers',
      module,
      contexts,
      default: 'DEFAULT',
      bind: [bind(record, 'proxySslCiphers')],
      doc: "The TLS 1.2 cipher suites offered to the upstream, in OpenSSL's format.",
    }),
    sessionReuse: flagEntry({
      name: 'proxy_ssl_session_reuse',
      module,
      contexts,
      default: 'on',
      bind: [bind(record, 'proxySslSessionReuse')],
      doc: 'Whether a new connection to an upstream server resumes the TLS session of the last one to it (an abbreviated handshake), as nginx.',
    }),
  };
}

const HTTP_SSL = serverSsl('http');
const STREAM_SSL = serverSsl('stream');
const HTTP_PROXY_SSL = upstreamSsl('http');
const STREAM_PROXY_SSL = upstreamSsl('stream');

// ---- the table -------------------------------------------------------------------------

export const D = {
  include: d({
    name: 'include',
    module: 'core',
    contexts: [
      'main',
      'events',
      'stream',
      'stream_upstream',
      'stream_server',
      'http',
      'http_upstream',
      'http_server',
      'location',
    ],
    syntax: 'file | glob',
    minArgs: 1,
    maxArgs: 1,
    multiple: true,
    parse: none,
    doc: 'Reads another file in place. Relative paths are relative to the file containing the `include`; `*`, `?` and `[...]` globs are expanded in sorted order and may match nothing. Cycles are reported.',
  }),
  lbIdleTimeout: timeEntry({
    name: 'lb_idle_timeout',
    module: 'core',
    contexts: ['main', 'stream', 'stream_server', 'http', 'http_server'],
    keepwire: 'directive',
    defaultNote: '— (unknown)',
    bind: [bind(['config', 'stream_server', 'http_server'], 'lbIdleTimeoutMs')],
    doc: 'The idle timeout of the load balancer in front of or behind this server (e.g. 350s for an AWS NLB, 4m for Azure). Inherited by inner blocks. `check` uses it to warn about keepalive settings that let the load balancer forget a connection.',
  }),
  lbKind: d({
    name: 'lb_kind',
    module: 'core',
    contexts: ['main', 'stream', 'stream_server', 'http', 'http_server'],
    syntax: 'l4 | l7',
    minArgs: 1,
    maxArgs: 1,
    default: 'l4',
    keepwire: 'directive',
    parse: parseLbKind,
    bind: [bind(['config', 'stream_server', 'http_server'], 'lbKind')],
    doc: "What kind of load balancer `lb_idle_timeout` describes. `l4` forwards TCP segments (LVS, AWS NLB, NAT): TCP keepalive probes cross it and reset its idle timer. `l7` terminates TCP (AWS ALB, GCP HTTPS LB, Cloudflare, ingress-nginx): probes never cross it, only data does, so it closes a quiet long-poll, SSE stream or WebSocket at its idle timeout whatever TCP keepalive does. With `l7`, `check` warns when a location's `proxy_read_timeout` is above `lb_idle_timeout` (hint: `websocket_heartbeat`, or the application's own heartbeat).",
  }),
  workerProcesses: d({
    name: 'worker_processes',
    module: 'core',
    contexts: ['main'],
    syntax: 'auto | number',
    minArgs: 1,
    maxArgs: 1,
    default: '1',
    parse: parseWorkerProcesses,
    bind: [bind(['config'], 'workerProcesses')],
    doc: 'How many worker processes serve traffic, as nginx; `auto` is one per CPU the process may run on. With 1 (the default) `serve` is one process, as before. With 2 or more (at start) a master process reads and checks the configuration, owns every listening socket (it never accepts on them) and supervises the workers: one that dies is restarted with a back-off; SIGHUP starts a new generation of workers on the same sockets and drains the old one. Passive health, `least_conn` counts and upstream keep-alive connections are per worker, as in nginx without a `zone`. Changing 1 to more needs a restart (a single process has no master); the reload says so and keeps running.',
  }),
  workerShutdownTimeout: timeEntry({
    name: 'worker_shutdown_timeout',
    module: 'core',
    contexts: ['main'],
    default: '30s',
    bind: [bind(['config'], 'shutdownTimeoutMs')],
    doc: 'How long `serve` lets sessions drain after SIGQUIT (once `shutdown_delay` is over), SIGTERM or SIGINT before resetting them. Idle HTTP keep-alive connections are waited for too (each closes after a response with `Connection: close` or at its `keepalive_timeout`, never under a client), so a value above `keepalive_timeout` closes none of them at the deadline. nginx has no default (it waits for every connection); keepwire bounds the wait at 30s.',
  }),
  shutdownDelay: timeEntry({
    name: 'shutdown_delay',
    module: 'core',
    contexts: ['main'],
    default: '0',
    keepwire: 'directive',
    bind: [bind(['config'], 'shutdownDelayMs')],
    doc: "On a graceful stop (SIGQUIT, and a worker's stop), how long `serve` keeps accepting and serving before it closes its listeners: `health` locations answer 503 and every HTTP response says `Connection: close`, so a load balancer takes the instance out of rotation and keep-alive clients leave on their own; then the drain of `worker_shutdown_timeout` runs. Set it to at least the load balancer's health check interval × its unhealthy threshold. SIGTERM/SIGINT skip it. nginx has no equivalent.",
  }),
  events: blockEntry({
    name: 'events',
    module: 'core',
    contexts: ['main'],
    block: 'events',
    doc: 'Connection processing settings.',
  }),
  workerConnections: numberEntry(1)({
    name: 'worker_connections',
    module: 'core',
    contexts: ['events'],
    default: '512',
    bind: [bind(['config'], 'workerConnections')],
    doc: 'The most client connections open at once, stream and HTTP together; a connection over it is closed at once (never queued) and logged, as nginx does ("worker_connections are not enough").',
  }),
  stream: blockEntry({
    name: 'stream',
    module: 'core',
    contexts: ['main'],
    block: 'stream',
    doc: 'TCP (layer 4) proxying.',
  }),
  http: blockEntry({
    name: 'http',
    module: 'core',
    contexts: ['main'],
    block: 'http',
    doc: 'HTTP/1.x (layer 7) proxying.',
  }),

  // ---- upstream blocks (shared by stream and http) ----
  streamUpstream: d({
    name: 'upstream',
    module: 'stream',
    contexts: ['stream'],
    block: 'stream_upstream',
    syntax: 'name { ... }',
    minArgs: 1,
    maxArgs: 1,
    multiple: true,
    parse: parseName,
    doc: 'A group of servers that `proxy_pass` can name.',
  }),
  streamUpstreamServer: d({
    name: 'server',
    module: 'stream',
    contexts: ['stream_upstream'],
    syntax:
      'address [weight=number] [max_fails=number] [fail_timeout=time] [max_conns=number] [backup] [down]',
    minArgs: 1,
    maxArgs: 8,
    multiple: true,
    parse: parseUpstreamServer(),
    doc: 'A server of the group; the address needs a port. Defaults as nginx: `weight=1 max_fails=1 fail_timeout=10s max_conns=0` (0 = unlimited). `backup` servers get traffic only when every primary is unavailable; `down` marks a server out of service.',
  }),
  httpUpstream: d({
    name: 'upstream',
    module: 'http',
    contexts: ['http'],
    block: 'http_upstream',
    syntax: 'name { ... }',
    minArgs: 1,
    maxArgs: 1,
    multiple: true,
    parse: parseName,
    doc: 'A group of servers that `proxy_pass http://name` can name, with an optional keep-alive pool.',
  }),
  httpUpstreamServer: d({
    name: 'server',
    module: 'http',
    contexts: ['http_upstream'],
    syntax:
      'address [weight=number] [max_fails=number] [fail_timeout=time] [max_conns=number] [keepalive_timeout=time] [backup] [down]',
    minArgs: 1,
    maxArgs: 9,
    multiple: true,
    keepwire: 'extension',
    parse: parseUpstreamServer(80),
    doc: "A server of the group; the port defaults to 80. Parameters as in stream. keepwire extension: `keepalive_timeout=time` declares the server's own keep-alive timeout (e.g. 5s for Node.js `http.Server`), so `check` can warn when the pool keeps connections idle longer than the server does.",
  }),
  leastConn: d({
    name: 'least_conn',
    module: 'stream',
    contexts: UPSTREAMS,
    syntax: '',
    minArgs: 0,
    maxArgs: 0,
    defaultNote: '— (weighted round robin)',
    parse: (): DirectiveResult<Balancing> => done({ kind: 'least_conn' }),
    doc: 'Sends each new connection to the server with the fewest active connections, weighted.',
  }),
  hash: d({
    name: 'hash',
    module: 'stream',
    contexts: UPSTREAMS,
    syntax: 'key [consistent]',
    minArgs: 1,
    maxArgs: 2,
    defaultNote: '— (weighted round robin)',
    parse: parseBalancingHash,
    doc: 'Chooses the server by a hash of `key` (text and variables such as `$remote_addr`); `consistent` uses ketama consistent hashing so few keys move when servers change.',
  }),
  random: d({
    name: 'random',
    module: 'stream',
    contexts: UPSTREAMS,
    syntax: '[two [least_conn]]',
    minArgs: 0,
    maxArgs: 2,
    defaultNote: '— (weighted round robin)',
    parse: parseBalancingRandom,
    doc: 'Chooses a random server, weighted; with `two`, picks two at random and uses the one with fewer connections.',
  }),
  upstreamKeepalive: d({
    name: 'keepalive',
    module: 'http',
    contexts: ['http_upstream'],
    syntax: 'connections',
    minArgs: 1,
    maxArgs: 1,
    defaultNote: '— (no pooling)',
    parse: count(1),
    bind: [bind(['http_upstream'], 'keepalive', { merge: 'local', unset: 0 })],
    doc: "Keeps up to `connections` idle keep-alive connections to the group's servers. Needs `proxy_http_version 1.1` in the locations using the group.",
  }),
  upstreamKeepaliveTimeout: timeEntry({
    name: 'keepalive_timeout',
    module: 'http',
    contexts: ['http_upstream'],
    default: '60s',
    bind: [bind(['http_upstream'], 'keepaliveTimeoutMs', { merge: 'local' })],
    doc: "How long an idle pooled connection is kept. Keep it below the servers' own keep-alive timeout and below any load balancer idle timeout on the way, so the pool, not the server, closes idle connections.",
  }),
  upstreamKeepaliveRequests: numberEntry(0)({
    name: 'keepalive_requests',
    module: 'http',
    contexts: ['http_upstream'],
    default: '1000',
    bind: [bind(['http_upstream'], 'keepaliveRequests', { merge: 'local' })],
    doc: 'Requests served through one pooled connection before it is closed.',
  }),
  upstreamKeepaliveTime: lifetimeEntry({
    name: 'keepalive_time',
    module: 'http',
    contexts: ['http_upstream'],
    default: '1h',
    bind: [bind(['http_upstream'], 'keepaliveTimeMs', { merge: 'local' })],
    doc: 'The longest lifetime of a pooled connection; it is closed after the request in flight.',
  }),

  // ---- stream server ----
  streamServer: blockEntry({
    name: 'server',
    module: 'stream',
    contexts: ['stream'],
    block: 'stream_server',
    multiple: true,
    doc: 'A TCP proxy: its listeners and where connections go.',
  }),
  streamListen: d({
    name: 'listen',
    module: 'stream',
    contexts: ['stream_server'],
    syntax:
      'address[:port] [ssl] [so_keepalive=on|off|[idle]:[interval]:[count]] [backlog=number] [reuseport]',
    minArgs: 1,
    maxArgs: 5,
    multiple: true,
    parse: parseListen('stream'),
    doc: 'An address to accept connections on: `host:port`, `port`, `*:port` or `[::1]:port`; `unix:` sockets are not supported. Parameters are separated by spaces. `ssl` terminates TLS on the address with the `ssl_*` settings of the server. `so_keepalive` sets TCP keepalive on accepted connections (an empty field keeps the system value); `backlog` defaults to 511. `default_server` is refused: a stream server has no `server_name`, so an address has one server and nothing to choose a default among.',
  }),
  streamProxyPass: d({
    name: 'proxy_pass',
    module: 'stream',
    contexts: ['stream_server'],
    syntax: 'name | address:port',
    minArgs: 1,
    maxArgs: 1,
    parse: parseStreamProxyPass,
    doc: 'Where connections go: an `upstream` block of this `stream`, or one `host:port`.',
  }),
  streamProxyTimeout: timeEntry({
    name: 'proxy_timeout',
    module: 'stream',
    contexts: STREAM_TO_SERVER,
    default: '10m',
    bind: [bind(['stream_server'], 'proxyTimeoutMs')],
    doc: 'The idle session timeout: a session with no byte in either direction for this long is closed, as an LVS director would forget it.',
  }),
  streamProxyConnectTimeout: timeEntry({
    name: 'proxy_connect_timeout',
    module: 'stream',
    contexts: STREAM_TO_SERVER,
    default: '60s',
    bind: [bind(['stream_server'], 'proxyConnectTimeoutMs')],
    doc: 'How long connecting to an upstream server may take.',
  }),
  streamAccessLog: d({
    name: 'access_log',
    module: 'stream',
    contexts: STREAM_TO_SERVER,
    syntax: 'off | on',
    minArgs: 1,
    maxArgs: Number.POSITIVE_INFINITY,
    default: 'on',
    keepwire: 'extension',
    parse: parseAccessLog,
    bind: [bind(['stream_server'], 'accessLog')],
    doc: "Whether sessions are logged: `on` (a keepwire extension, and the default: nginx's stream logs nothing unless told to, keepwire has always written a line per session) writes one JSON `session` line per session on standard output; `off` writes none for a session that ended cleanly (`client_closed`, `upstream_closed`), e.g. a very hot short-session service, while a session that failed or was cut (`connect_failed`, resets, `idle_timeout`, `shutdown`, `tls_handshake_failed`) is still logged: what nginx's error log would report. nginx's `access_log path [format ...]` is refused: keepwire writes JSON lines on standard output only.",
  }),
  streamProxySocketKeepalive: keepaliveEntry({
    name: 'proxy_socket_keepalive',
    module: 'stream',
    contexts: STREAM_TO_SERVER,
    default: 'off',
    keepwire: 'extension',
    bind: [bind(['stream_server'], 'proxySocketKeepalive')],
    doc: 'TCP keepalive on connections to upstream servers. nginx takes `on|off` (system values); keepwire also takes a full spec in `so_keepalive` syntax, e.g. `60s:10s:6`.',
  }),
  streamProxyNextUpstream: flagEntry({
    name: 'proxy_next_upstream',
    module: 'stream',
    contexts: STREAM_TO_SERVER,
    default: 'on',
    bind: [bind(['stream_server'], 'proxyNextUpstream')],
    doc: 'Whether a connection that cannot be established is retried on the next server.',
  }),
  streamProxyNextUpstreamTries: numberEntry(0)({
    name: 'proxy_next_upstream_tries',
    module: 'stream',
    contexts: STREAM_TO_SERVER,
    default: '0',
    bind: [bind(['stream_server'], 'proxyNextUpstreamTries')],
    doc: 'The most servers tried for one connection; 0 means no limit.',
  }),
  streamProxyNextUpstreamTimeout: timeEntry({
    name: 'proxy_next_upstream_timeout',
    module: 'stream',
    contexts: STREAM_TO_SERVER,
    default: '0',
    bind: [bind(['stream_server'], 'proxyNextUpstreamTimeoutMs')],
    doc: 'The longest time spent trying servers for one connection; 0 means no limit.',
  }),
  streamResetTimedoutConnection: flagEntry({
    name: 'reset_timedout_connection',
    module: 'stream',
    contexts: STREAM_TO_SERVER,
    default: 'off',
    keepwire: 'extension',
    bind: [bind(['stream_server'], 'resetTimedoutConnection')],
    doc: 'At idle expiry, reset both connections (RST) instead of closing them (FIN), as a load balancer with reset-on-timeout does. nginx has this directive for http only.',
  }),

  // ---- http server ----
  httpServer: blockEntry({
    name: 'server',
    module: 'http',
    contexts: ['http'],
    block: 'http_server',
    multiple: true,
    doc: 'A virtual server: its listeners, names and locations.',
  }),
  httpListen: d({
    name: 'listen',
    module: 'http',
    contexts: ['http_server'],
    syntax:
      'address[:port] [default_server] [ssl] [so_keepalive=on|off|[idle]:[interval]:[count]] [backlog=number] [reuseport]',
    minArgs: 1,
    maxArgs: 6,
    multiple: true,
    defaultNote: '*:80',
    parse: parseListen('http'),
    doc: 'As in stream. A server without `listen` listens on `*:80`, as in nginx. Several servers may share an address (chosen by `server_name`), but only one of them may set its socket parameters. `default_server` makes this server the default for the address: it answers requests whose `Host` matches no `server_name` (and requests without `Host`); without it the first server listed for the address is the default. One default per address. The default server also gives `client_header_timeout`, which runs before the `Host` is known.',
  }),
  serverName: d({
    name: 'server_name',
    module: 'http',
    contexts: ['http_server'],
    syntax: 'name ...',
    minArgs: 1,
    maxArgs: Number.POSITIVE_INFINITY,
    multiple: true,
    default: '""',
    parse: parseServerNames,
    bind: [bind(['http_server'], 'serverNames', { merge: 'local' })],
    doc: 'Host names this server answers for; with none, it answers any Host on its addresses.',
  }),
  keepaliveTimeout: d({
    name: 'keepalive_timeout',
    module: 'http',
    contexts: HTTP_TO_LOCATION,
    syntax: 'timeout [header_timeout]',
    minArgs: 1,
    maxArgs: 2,
    default: '75s',
    parse: parseServerKeepaliveTimeout,
    bind: [
      bind<KeepaliveTimeoutValue>(HTTP_LEVELS, 'keepaliveTimeoutMs', { project: (v) => v.timeoutMs }),
      // nginx merges the Keep-Alive header value on its own: a level setting
      // only `keepalive_timeout T` keeps the header value of an outer level.
      bind<KeepaliveTimeoutValue>(HTTP_LEVELS, 'keepaliveHeaderTimeoutMs', { project: (v) => v.headerMs }),
    ],
    doc: "How long an idle client keep-alive connection stays open; 0 disables client keep-alive. The optional second value is sent as `Keep-Alive: timeout=N` (inherited on its own, as in nginx). Behind a load balancer that pools connections, keep it above the balancer's idle timeout. Like `keepalive_requests`, `keepalive_time`, `client_body_timeout` and `send_timeout`, it is taken from the server and location the request was routed to (by `Host` and path), as in nginx.",
  }),
  keepaliveRequests: numberEntry(0)({
    name: 'keepalive_requests',
    module: 'http',
    contexts: HTTP_TO_LOCATION,
    default: '1000',
    bind: [bind(HTTP_LEVELS, 'keepaliveRequests')],
    doc: 'Requests served on one client connection before it is closed.',
  }),
  keepaliveTime: lifetimeEntry({
    name: 'keepalive_time',
    module: 'http',
    contexts: HTTP_TO_LOCATION,
    default: '1h',
    bind: [bind(HTTP_LEVELS, 'keepaliveTimeMs')],
    doc: 'The longest lifetime of a client connection; it is closed after the request in flight.',
  }),
  clientHeaderTimeout: timeEntry({
    name: 'client_header_timeout',
    module: 'http',
    contexts: HTTP_TO_SERVER,
    default: '60s',
    bind: [bind(['http_server'], 'clientHeaderTimeoutMs')],
    doc: "How long reading a request header may take; then 408. Taken from the address's default server: the header is read before its `Host` is known, as in nginx.",
  }),
  clientHeaderBufferSize: d({
    name: 'client_header_buffer_size',
    module: 'http',
    contexts: HTTP_TO_SERVER,
    syntax: 'size',
    minArgs: 1,
    maxArgs: 1,
    default: '1k',
    parse: single(headerBufferSize),
    bind: [bind(['http_server'], 'clientHeaderBufferSize')],
    doc: "nginx's first buffer for a request head. keepwire reads heads into buffers that grow as needed, so this only matters when it is larger than the `large_client_header_buffers` size: then, as in nginx, a request line or header line up to this size is accepted. Taken from the address's default server.",
  }),
  largeClientHeaderBuffers: d({
    name: 'large_client_header_buffers',
    module: 'http',
    contexts: HTTP_TO_SERVER,
    syntax: 'number size',
    minArgs: 2,
    maxArgs: 2,
    default: '4 8k',
    parse: parseHeaderBuffers,
    bind: [bind(['http_server'], 'largeClientHeaderBuffers')],
    doc: 'The limits on a request head, as in nginx: a request line longer than `size` (its CRLF included) gets 414, a header line longer than `size` gets 400 "Request Header Or Cookie Too Large", and so does a head longer than `number` × `size`; the connection is closed. Taken from the address\'s default server: the head is read before its `Host` is known.',
  }),
  maxHeaders: numberEntry(1)({
    name: 'max_headers',
    module: 'http',
    contexts: HTTP_TO_SERVER,
    default: '1000',
    bind: [bind(['http_server'], 'maxHeaders')],
    doc: 'The most header lines a request may have (nginx 1.27.2+, backported by Debian); more gets 400 "Request Header Or Cookie Too Large" and the connection is closed. Header lines dropped by `ignore_invalid_headers` do not count. Taken from the address\'s default server.',
  }),
  mergeSlashes: flagEntry({
    name: 'merge_slashes',
    module: 'http',
    contexts: HTTP_TO_SERVER,
    default: 'on',
    bind: [bind(['http_server'], 'mergeSlashes')],
    doc: "Whether runs of `/` in the request path count as one when locations are matched, as in nginx: with it on, `//admin` is matched as `/admin`. Only matching is affected: the request target goes upstream as the client sent it. Taken from the address's default server.",
  }),
  underscoresInHeaders: flagEntry({
    name: 'underscores_in_headers',
    module: 'http',
    contexts: HTTP_TO_SERVER,
    default: 'off',
    bind: [bind(['http_server'], 'underscoresInHeaders')],
    doc: "Whether `_` is a valid character in request header names. Off (the default, as in nginx), a header such as `Transfer_Encoding` is invalid and, under `ignore_invalid_headers on`, dropped rather than forwarded (some backends read `_` as `-`). Taken from the address's default server.",
  }),
  ignoreInvalidHeaders: flagEntry({
    name: 'ignore_invalid_headers',
    module: 'http',
    contexts: HTTP_TO_SERVER,
    default: 'on',
    bind: [bind(['http_server'], 'ignoreInvalidHeaders')],
    doc: "On (the default, as in nginx), request header lines whose names nginx calls invalid (characters other than letters, digits and `-`, and `_` unless `underscores_in_headers` is on) are dropped: never forwarded, never read. Off, they are forwarded. A name that is not an RFC 9110 token (a space, a control character, `:` or `@`, ...) gets 400 either way. Taken from the address's default server.",
  }),
  clientBodyTimeout: timeEntry({
    name: 'client_body_timeout',
    module: 'http',
    contexts: HTTP_TO_LOCATION,
    default: '60s',
    bind: [bind(HTTP_LEVELS, 'clientBodyTimeoutMs')],
    doc: 'The longest pause between two reads of a request body; then 408.',
  }),
  sendTimeout: timeEntry({
    name: 'send_timeout',
    module: 'http',
    contexts: HTTP_TO_LOCATION,
    default: '60s',
    bind: [bind(HTTP_LEVELS, 'sendTimeoutMs')],
    doc: 'The longest pause between two writes of a response to the client; then the connection is closed.',
  }),
  clientMaxBodySize: sizeEntry({
    name: 'client_max_body_size',
    module: 'http',
    contexts: HTTP_TO_LOCATION,
    default: '1m',
    bind: [bind(HTTP_LEVELS, 'clientMaxBodySize')],
    doc: 'The largest request body accepted; larger gets 413. 0 means no limit. Taken from the location the request is routed to, as in nginx: a declared `Content-Length` over it is refused before anything is proxied (also for `return` locations), a chunked body when it grows over it.',
  }),
  clientBodyBufferSize: sizeEntry({
    name: 'client_body_buffer_size',
    module: 'http',
    contexts: HTTP_TO_LOCATION,
    default: '64k',
    bind: [bind(HTTP_LEVELS, 'clientBodyBufferSize')],
    doc: 'How much of a request body keepwire keeps in memory so the request can be repeated on a fresh connection (the stale-connection retry) or on the next server. keepwire streams bodies and never writes them to disk: a body larger than this is streamed without a copy, and if the upstream fails after more than this was sent the client gets 502 — never a retry, never a duplicate. nginx defaults to 8k/16k because it spills larger bodies to a temporary file and can always replay; keepwire keeps 64k so typical API bodies stay retryable.',
  }),
  accessLog: d({
    name: 'access_log',
    module: 'http',
    contexts: HTTP_TO_LOCATION,
    syntax: 'off | on',
    minArgs: 1,
    maxArgs: Number.POSITIVE_INFINITY,
    default: 'on',
    keepwire: 'extension',
    parse: parseAccessLog,
    bind: [bind(HTTP_LEVELS, 'accessLog')],
    doc: "Whether requests are logged: `off` writes no `request` line for requests routed here (e.g. a health-check location or a very hot path); `on` (a keepwire extension, the default) writes one JSON line per request on standard output. Inherited from http to server to location, and taken from the location a request is routed to; a request answered before routing (400, 405, 408, 414, 505) follows the address's default server, and one no location matches (404) the server chosen by `Host`. `upstream_retry` lines are written either way: a retry is never silent. nginx's `access_log path [format ...]` is refused: keepwire writes its access log as JSON lines on standard output only; redirect that to a file.",
  }),
  http2: flagEntry({
    name: 'http2',
    module: 'http',
    contexts: HTTP_TO_SERVER,
    default: 'off',
    bind: [bind(['http_server'], 'http2')],
    doc: "HTTP/2 for the server's clients (nginx 1.25.1+ syntax; the `listen ... http2` parameter is refused). On a cleartext listener a connection that starts with the HTTP/2 client preface is served as h2c with prior knowledge (`curl --http2-prior-knowledge`), as nginx does; others stay HTTP/1.x. Taken from the address's default server: the preface is read before any `Host`. Each stream is a request proxied as HTTP/1.x requests are (routing with `:authority` as `Host`, headers, timeouts, retries, the access line with `protocol` `HTTP/2.0`). `keepalive_timeout` closes an idle connection with GOAWAY, `keepalive_requests` sends GOAWAY after that many streams; a header list over `large_client_header_buffers` gets 400, a body over `client_max_body_size` 413.",
  }),
  http2MaxConcurrentStreams: numberEntry(
    1,
    2 ** 31 - 1,
  )({
    name: 'http2_max_concurrent_streams',
    module: 'http',
    contexts: HTTP_TO_SERVER,
    default: '128',
    bind: [bind(['http_server'], 'http2MaxConcurrentStreams')],
    doc: "The most streams a client may have open on one HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS), as in nginx. Rapid reset (CVE-2023-44487): as nginx, new streams over twice this number within one read of the connection are refused (RST_STREAM REFUSED_STREAM), and a connection whose client has reset more than twice this number of its streams before their responses, and most of them, is closed with GOAWAY ENHANCE_YOUR_CALM (logged as `http2_reset_flood`). Taken from the address's default server.",
  }),
  http2PingInterval: offOrTimeEntry({
    name: 'http2_ping_interval',
    module: 'http',
    contexts: HTTP_TO_SERVER,
    default: 'off',
    keepwire: 'directive',
    bind: [bind(['http_server'], 'http2PingIntervalMs')],
    doc: "When an HTTP/2 client connection has received nothing from its client for `time`, keepwire sends a PING (RFC 9113 §6.7; the connection is looked at every quarter of `time`, so the PING leaves 1 to 1.25 × `time` after the last frame), and again every `time` while it stays quiet: an L7 load balancer or NAT on the way sees traffic both ways, and a dead client is found by `http2_ping_timeout`. gRPC clients do not police PINGs from their server (grpc-go and grpc-core enforce `min_ping_interval` only on the server side), so any interval is accepted; keep it below the idle timeout of every box between client and keepwire. Taken from the address's default server; off by default.",
  }),
  http2PingTimeout: timeEntry({
    name: 'http2_ping_timeout',
    module: 'http',
    contexts: HTTP_TO_SERVER,
    default: '20s',
    keepwire: 'directive',
    bind: [bind(['http_server'], 'http2PingTimeoutMs')],
    doc: "With `http2_ping_interval`: a PING not acknowledged within `time` closes the connection (GOAWAY, then close; logged as `http2_ping_timeout`). 20s is gRPC's own keepalive_timeout default. Taken from the address's default server.",
  }),
  websocketHeartbeat: d({
    name: 'websocket_heartbeat',
    module: 'http',
    contexts: HTTP_TO_LOCATION,
    syntax: 'off | time [both | client | upstream]',
    minArgs: 1,
    maxArgs: 2,
    default: 'off',
    keepwire: 'directive',
    parse: parseWebSocketHeartbeat,
    bind: [bind(['location'], 'websocketHeartbeat')],
    doc: "In a WebSocket tunnel (the upstream answered 101 with `Upgrade: websocket`), when no frame has passed either way for `time`, keepwire sends an unsolicited Pong (RFC 6455 §5.5.3, a heartbeat that needs no answer) to the client, the upstream or both (default), and again every `time` while the tunnel stays quiet. An L7 load balancer in front (an ALB, ingress-nginx) then sees data and keeps the connection, which TCP keepalive cannot do. keepwire follows the frame headers both ways (payloads pass unparsed and unbuffered) and inserts a Pong only between frames; toward the upstream it is masked as a client's frame must be; it works with permessage-deflate (control frames are never compressed). A tunnel whose bytes are not a valid WebSocket stream is relayed as plain bytes without heartbeats (logged once as `websocket_relay`). Heartbeats are writes, not reads: `proxy_read_timeout` still closes a tunnel where neither peer sent anything for that long. The access line counts the heartbeats sent.",
  }),
  location: d({
    name: 'location',
    module: 'http',
    contexts: ['http_server'],
    block: 'location',
    syntax: 'prefix { ... }',
    minArgs: 1,
    maxArgs: 2,
    multiple: true,
    parse: parseLocation,
    doc: 'Requests whose path starts with `prefix`; the longest matching prefix wins. Modifiers (`=`, `~`, `^~`) and named locations are not supported.',
  }),
  httpProxyPass: d({
    name: 'proxy_pass',
    module: 'http',
    contexts: ['location'],
    syntax: 'http[s]://name | http[s]://address[:port]',
    minArgs: 1,
    maxArgs: 1,
    parse: parseHttpProxyPass,
    doc: 'Where requests go: an `upstream` block of this `http`, or one address (port 80 by default, 443 for `https://`). `https://` speaks TLS to the upstream under the `proxy_ssl_*` settings; its keep-alive connections are cached and reused as plain ones. The request URI is passed unchanged; a URI part in the URL is not supported.',
  }),
  httpProxyConnectTimeout: timeEntry({
    name: 'proxy_connect_timeout',
    module: 'http',
    contexts: HTTP_TO_LOCATION,
    default: '60s',
    bind: [bind(['location'], 'proxyConnectTimeoutMs')],
    doc: 'How long connecting to an upstream server may take.',
  }),
  proxyReadTimeout: timeEntry({
    name: 'proxy_read_timeout',
    module: 'http',
    contexts: HTTP_TO_LOCATION,
    default: '60s',
    bind: [bind(['location'], 'proxyReadTimeoutMs')],
    doc: 'The longest pause between two reads from the upstream server, including the wait for the response header.',
  }),
  proxySendTimeout: timeEntry({
    name: 'proxy_send_timeout',
    module: 'http',
    contexts: HTTP_TO_LOCATION,
    default: '60s',
    bind: [bind(['location'], 'proxySendTimeoutMs')],
    doc: 'The longest pause between two writes of the request to the upstream server.',
  }),
  proxyHttpVersion: d({
    name: 'proxy_http_version',
    module: 'http',
    contexts: HTTP_TO_LOCATION,
    syntax: '1.0 | 1.1',
    minArgs: 1,
    maxArgs: 1,
    default: '1.0',
    parse: parseHttpVersion,
    bind: [bind(['location'], 'proxyHttpVersion')],
    doc: 'The HTTP version spoken to upstream servers. Pooled upstream connections (`keepalive`) need 1.1.',
  }),
  proxySetHeader: d({
    name: 'proxy_set_header',
    module: 'http',
    contexts: HTTP_TO_LOCATION,
    syntax: 'field value',
    minArgs: 2,
    maxArgs: 2,
    multiple: true,
    defaultNote: '— (nginx: `Host $proxy_host`, `Connection close`)',
    parse: parseHeader,
    bind: [bind(['location'], 'proxySetHeaders', { merge: 'inherit-list', unset: [] })],
    doc: 'Sets a request header sent upstream; an empty value removes it. As in nginx, a level inherits these only if it sets none itself.',
  }),
  httpProxySocketKeepalive: keepaliveEntry({
    name: 'proxy_socket_keepalive',
    module: 'http',
    contexts: HTTP_TO_LOCATION,
    default: 'off',
    keepwire: 'extension',
    bind: [bind(['location'], 'proxySocketKeepalive')],
    doc: 'TCP keepalive on connections to upstream servers; keepwire also takes a full spec as in stream.',
  }),
  httpProxyNextUpstream: d({
    name: 'proxy_next_upstream',
    module: 'http',
    contexts: HTTP_TO_LOCATION,
    syntax:
      'error | timeout | invalid_header | http_500 | http_502 | http_503 | http_504 | http_403 | http_404 | http_429 | non_idempotent | off ...',
    minArgs: 1,
    maxArgs: 11,
    default: 'error timeout',
    parse: parseNextUpstream,
    bind: [bind(['location'], 'proxyNextUpstream')],
    doc: 'When a request is passed to the next server. Requests with non-idempotent methods (POST, LOCK, PATCH) are retried only with `non_idempotent`.',
  }),
  httpProxyNextUpstreamTries: numberEntry(0)({
    name: 'proxy_next_upstream_tries',
    module: 'http',
    contexts: HTTP_TO_LOCATION,
    default: '0',
    bind: [bind(['location'], 'proxyNextUpstreamTries')],
    doc: 'The most servers tried for one request; 0 means no limit.',
  }),
  httpProxyNextUpstreamTimeout: timeEntry({
    name: 'proxy_next_upstream_timeout',
    module: 'http',
    contexts: HTTP_TO_LOCATION,
    default: '0',
    bind: [bind(['location'], 'proxyNextUpstreamTimeoutMs')],
    doc: 'The longest time, from the first try, during which a request may still be passed to another server (or repeated on a fresh connection); 0 means no limit. As in nginx it does not cut a try in progress: once it has passed, the next failure is answered with its own status (502, or 504 for a timeout).',
  }),
  health: bareEntry({
    name: 'health',
    module: 'http',
    contexts: ['location'],
    defaultNote: '—',
    keepwire: 'directive',
    bind: [bind(['location'], 'health', { merge: 'local', unset: false })],
    doc: "Answers the load balancer's health check itself, without proxying: `200 ok` normally, `503 draining` from the moment `serve` begins a graceful stop (during `shutdown_delay` and after), both `text/plain` with `Cache-Control: no-store`. A location with `health` has no `proxy_pass` or `return`.",
  }),
  metrics: bareEntry({
    name: 'metrics',
    module: 'http',
    contexts: ['location'],
    keepwire: 'directive',
    doc: 'Answers with the whole server\'s metrics in the Prometheus text format (version 0.0.4), or OpenMetrics when the request\'s `Accept` asks for `application/openmetrics-text`: connections, requests, upstream reuse and retries, idle times before reuse, idle-timeout closes, keepalive settings and upstream health (README "Metrics"). Served only where configured; put it on a loopback or internal listener. A location has one of `proxy_pass`, `return`, `health`, `metrics`, `stub_status`, `status`.',
  }),
  stubStatus: bareEntry({
    name: 'stub_status',
    module: 'http',
    contexts: ['location'],
    doc: "Answers with nginx's `stub_status` text (active connections, accepts, handled, requests, Reading, Writing, Waiting), byte for byte in nginx's format, so nginx dashboards and the nginx Prometheus exporter read it unchanged. Numbers are the whole server's (HTTP client connections).",
  }),
  status: bareEntry({
    name: 'status',
    module: 'http',
    contexts: ['location'],
    keepwire: 'directive',
    doc: 'Answers with a live HTML status page (self-contained, updates itself): listeners and their `so_keepalive`, upstream servers with health and pool sizes, recent events, and the most idle client and upstream connections with their kernel keepalive state (TCP_KEEPIDLE/INTVL/CNT in force, unanswered probes, time since data and ACK, RTT) drawn against `lb_idle_timeout`. `?format=json` gives the same data (docs/status.md).',
  }),
  statusConnections: numberEntry(1)({
    name: 'status_connections',
    module: 'http',
    contexts: HTTP_TO_LOCATION,
    default: '200',
    keepwire: 'directive',
    bind: [bind(['location'], 'statusConnections')],
    doc: 'How many connections the `status` page lists: the most idle ones, client and upstream together.',
  }),
  return: d({
    name: 'return',
    module: 'http',
    contexts: ['location'],
    syntax: 'code [text]',
    minArgs: 1,
    maxArgs: 2,
    parse: parseReturn,
    doc: 'Answers with `code` (and `text` as the body) without proxying.',
  }),
  // ---- TLS ----
  httpSslCertificate: HTTP_SSL.certificate,
  httpSslCertificateKey: HTTP_SSL.certificateKey,
  httpSslProtocols: HTTP_SSL.protocols,
  httpSslCiphers: HTTP_SSL.ciphers,
  httpSslPreferServerCiphers: HTTP_SSL.preferServerCiphers,
  httpSslSessionCache: HTTP_SSL.sessionCache,
  httpSslSessionTimeout: HTTP_SSL.sessionTimeout,
  httpSslSessionTickets: HTTP_SSL.sessionTickets,
  httpSslHandshakeTimeout: HTTP_SSL.handshakeTimeout,
  streamSslCertificate: STREAM_SSL.certificate,
  streamSslCertificateKey: STREAM_SSL.certificateKey,
  streamSslProtocols: STREAM_SSL.protocols,
  streamSslCiphers: STREAM_SSL.ciphers,
  streamSslPreferServerCiphers: STREAM_SSL.preferServerCiphers,
  streamSslSessionCache: STREAM_SSL.sessionCache,
  streamSslSessionTimeout: STREAM_SSL.sessionTimeout,
  streamSslSessionTickets: STREAM_SSL.sessionTickets,
  streamSslHandshakeTimeout: STREAM_SSL.handshakeTimeout,
  httpProxySslVerify: HTTP_PROXY_SSL.verify,
  httpProxySslTrustedCertificate: HTTP_PROXY_SSL.trustedCertificate,
  httpProxySslVerifyDepth: HTTP_PROXY_SSL.verifyDepth,
  httpProxySslServerName: HTTP_PROXY_SSL.serverName,
  httpProxySslName: HTTP_PROXY_SSL.name,
  httpProxySslCertificate: HTTP_PROXY_SSL.certificate,
  httpProxySslCertificateKey: HTTP_PROXY_SSL.certificateKey,
  httpProxySslProtocols: HTTP_PROXY_SSL.protocols,
  httpProxySslCiphers: HTTP_PROXY_SSL.ciphers,
  httpProxySslSessionReuse: HTTP_PROXY_SSL.sessionReuse,
  streamProxySsl: flagEntry({
    name: 'proxy_ssl',
    module: 'stream',
    contexts: STREAM_TO_SERVER,
    default: 'off',
    bind: [bind(['stream_server'], 'proxySsl')],
    doc: 'Whether connections to the upstream speak TLS (under the `proxy_ssl_*` settings).',
  }),
  streamProxySslVerify: STREAM_PROXY_SSL.verify,
  streamProxySslTrustedCertificate: STREAM_PROXY_SSL.trustedCertificate,
  streamProxySslVerifyDepth: STREAM_PROXY_SSL.verifyDepth,
  streamProxySslServerName: STREAM_PROXY_SSL.serverName,
  streamProxySslName: STREAM_PROXY_SSL.name,
  streamProxySslCertificate: STREAM_PROXY_SSL.certificate,
  streamProxySslCertificateKey: STREAM_PROXY_SSL.certificateKey,
  streamProxySslProtocols: STREAM_PROXY_SSL.protocols,
  streamProxySslCiphers: STREAM_PROXY_SSL.ciphers,
  streamProxySslSessionReuse: STREAM_PROXY_SSL.sessionReuse,
} as const;

// ---- gRPC (ngx_http_grpc_module) ------------------------------------------------------

/**
 * A `grpc_*` directive made from its `proxy_*` twin: the same syntax, value
 * parser, default and model field. A location with `grpc_pass` reads the
 * grpc_* names in place of the proxy_* ones at every level (validate.ts),
 * so `proxy_read_timeout` set at http level does not reach a grpc_pass
 * location, as in nginx, and the runtime reads one set of fields.
 */
function grpcTwin<T>(of: Directive<T>, doc?: string): Directive<T> {
  const { bind: _bind, ...rest } = of;
  return {
    ...rest,
    name: of.name.replace(/^proxy_/, 'grpc_'),
    twinOf: of,
    doc: doc ?? `As \`${of.name}\`, for \`grpc_pass\` locations. ${of.doc}`,
  };
}

function parseGrpcPass(args: readonly string[]): DirectiveResult<ProxyPassValue & { grpcs?: boolean }> {
  const text = args[0]!;
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(text);
  const name = scheme?.[1]?.toLowerCase();
  if (scheme && name !== 'grpc' && name !== 'grpcs')
    return atArg(
      bad(
        `grpc_pass "${text}" takes a grpc:// or grpcs:// URL`,
        0,
        'e.g. grpc_pass grpc://orders; or grpc_pass grpcs://10.0.0.5:50051;',
      ),
      0,
    );
  const start = scheme ? scheme[0].length : 0;
  if (text.indexOf('/', start) !== -1)
    return atArg(
      bad(
        `a URI part in grpc_pass ("${text.slice(text.indexOf('/', start))}") is not allowed`,
        text.indexOf('/', start),
        'gRPC calls keep their path (/package.Service/Method): remove it',
      ),
      0,
    );
  const target = proxyTarget(text, start, name === 'grpcs' ? 443 : 80);
  if (target.ok && name === 'grpcs') (target.value as { grpcs?: boolean }).grpcs = true;
  return atArg(target, 0);
}

/** The grpc_* directives: grpc_pass, the twins of the proxy_* family, and keepwire's upstream PING keepalive. */
export const GRPC = {
  grpcPass: d({
    name: 'grpc_pass',
    module: 'http',
    contexts: ['location'],
    syntax: '[grpc://]name | [grpc://]address[:port] | grpcs://name | grpcs://address[:port]',
    minArgs: 1,
    maxArgs: 1,
    parse: parseGrpcPass,
    doc: "Proxies the location's requests as gRPC calls over HTTP/2 to an `upstream` block of this `http` or to one address (port 80 by default, 443 for `grpcs://`, which speaks TLS under the `grpc_ssl_*` settings with ALPN `h2`). Clients reach it over HTTP/2 (`http2 on`: h2c or ALPN `h2`). Upstream connections are HTTP/2, multiplexed and pooled per server: a call takes a stream on a connection with a free slot under the server's SETTINGS_MAX_CONCURRENT_STREAMS, and a new connection is opened when all are full; a connection without calls is closed after the group's `keepalive_timeout`. Server choice, `grpc_next_upstream` (+ `_tries`, `_timeout`), passive health and `grpc_connect_timeout` are the one attempt loop of `proxy_pass`; a call is passed to another server only while nothing of it has reached an upstream. Errors become gRPC statuses as Envoy maps them: no live server, a connect failure or timeout, or an upstream reset before the response header → HTTP 200 with `grpc-status: 14` (UNAVAILABLE) and `grpc-message` (trailers-only); `grpc_read_timeout` expiring → `grpc-status: 4` (DEADLINE_EXCEEDED), in the trailers when the response had begun and a message boundary was reached, else RST_STREAM; an upstream RST_STREAM after the response began resets the client's stream (never a silent truncation). Streams (client, server, bidi) pass with HTTP/2 flow control as backpressure both ways; metadata and trailers pass unchanged. `client_max_body_size` bounds a call's whole request stream, as in nginx (RESOURCE_EXHAUSTED, or a reset once the response began): set it to 0 for long client streams. The access line carries `protocol` and `grpcStatus`.",
  }),
  grpcConnectTimeout: grpcTwin(D.httpProxyConnectTimeout),
  grpcReadTimeout: grpcTwin(
    D.proxyReadTimeout,
    'The longest pause between two reads from the upstream (its response header, DATA or trailers), as `proxy_read_timeout` for `grpc_pass` locations. A server-streaming call that is quiet longer than this ends with DEADLINE_EXCEEDED: raise it for streams that idle by design (and keep the path alive with `grpc_ping_interval`).',
  ),
  grpcSendTimeout: grpcTwin(D.proxySendTimeout),
  grpcSetHeader: grpcTwin(
    D.proxySetHeader,
    "Sets a request header (gRPC metadata) sent upstream; an empty value removes it. As `proxy_set_header` for `grpc_pass` locations: a level inherits these only if it sets none itself. `Host` sets `:authority` (by default the client's). Connection-specific fields (Connection, Keep-Alive, Transfer-Encoding, Upgrade) are never sent over HTTP/2; `te: trailers` is passed, as gRPC requires.",
  ),
  grpcSocketKeepalive: grpcTwin(D.httpProxySocketKeepalive),
  grpcNextUpstream: grpcTwin(
    D.httpProxyNextUpstream,
    "When a call is passed to the next server, as `proxy_next_upstream` for `grpc_pass` locations: `error` (connect failure, a connection closed or GOAWAY before the call's stream was opened, RST_STREAM REFUSED_STREAM) and `timeout` (`grpc_connect_timeout`). A call is moved only while nothing of it has reached an upstream.",
  ),
  grpcNextUpstreamTries: grpcTwin(D.httpProxyNextUpstreamTries),
  grpcNextUpstreamTimeout: grpcTwin(D.httpProxyNextUpstreamTimeout),
  grpcSslVerify: grpcTwin(HTTP_PROXY_SSL.verify),
  grpcSslTrustedCertificate: grpcTwin(HTTP_PROXY_SSL.trustedCertificate),
  grpcSslVerifyDepth: grpcTwin(HTTP_PROXY_SSL.verifyDepth),
  grpcSslServerName: grpcTwin(HTTP_PROXY_SSL.serverName),
  grpcSslName: grpcTwin(HTTP_PROXY_SSL.name),
  grpcSslCertificate: grpcTwin(HTTP_PROXY_SSL.certificate),
  grpcSslCertificateKey: grpcTwin(HTTP_PROXY_SSL.certificateKey),
  grpcSslProtocols: grpcTwin(HTTP_PROXY_SSL.protocols),
  grpcSslCiphers: grpcTwin(HTTP_PROXY_SSL.ciphers),
  grpcSslSessionReuse: grpcTwin(HTTP_PROXY_SSL.sessionReuse),
  grpcPingInterval: d({
    name: 'grpc_ping_interval',
    module: 'http',
    contexts: ['http', 'http_server', 'location'],
    syntax: 'off | time',
    minArgs: 1,
    maxArgs: 1,
    default: 'off',
    keepwire: 'directive',
    parse: single(parseOffOrTimer),
    bind: [bind(['location'], 'grpcPingIntervalMs')],
    doc: 'HTTP/2 PING keepalive on upstream connections of `grpc_pass`, gRPC\'s `keepalive_time` (GRPC_ARG_KEEPALIVE_TIME_MS, grpc-go `keepalive.ClientParameters.Time`): a PING after `time` without frames from the server (1 to 1.25 × `time` after the last one: the connection is looked at every quarter of `time`), again every `time` while it stays quiet, so an LB or NAT between keepwire and the server keeps the connection and a dead server is found by `grpc_ping_timeout`. gRPC servers police PINGs: grpc-go and grpc-core refuse PINGs more often than every 5 minutes by default (`keepalive.EnforcementPolicy.MinTime`, GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS) and answer GOAWAY ENHANCE_YOUR_CALM `too_many_pings`; keepwire then doubles the interval for that server (as grpc-go does) and logs `grpc_too_many_pings`. `check` warns below 5 minutes: relax the server\'s policy to match (README "gRPC"). Off by default.',
  }),
  grpcPingTimeout: d({
    name: 'grpc_ping_timeout',
    module: 'http',
    contexts: ['http', 'http_server', 'location'],
    syntax: 'time',
    minArgs: 1,
    maxArgs: 1,
    default: '20s',
    keepwire: 'directive',
    parse: time,
    bind: [bind(['location'], 'grpcPingTimeoutMs')],
    doc: "With `grpc_ping_interval`: a PING not acknowledged within `time` closes the upstream connection (its calls end with UNAVAILABLE; logged as `grpc_ping_timeout`), gRPC's `keepalive_timeout` (GRPC_ARG_KEEPALIVE_TIMEOUT_MS, grpc-go `ClientParameters.Timeout`, 20s by default in both).",
  }),
  grpcPingWithoutCalls: d({
    name: 'grpc_ping_without_calls',
    module: 'http',
    contexts: ['http', 'http_server', 'location'],
    syntax: 'on | off',
    minArgs: 1,
    maxArgs: 1,
    default: 'off',
    keepwire: 'directive',
    parse: flag,
    bind: [bind(['location'], 'grpcPingWithoutCalls')],
    doc: "Whether `grpc_ping_interval` also PINGs an upstream connection with no call in flight (kept until the group's `keepalive_timeout`), gRPC's `keepalive_permit_without_calls` (GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, grpc-go `ClientParameters.PermitWithoutStream`). gRPC servers refuse such PINGs by default (grpc-go `EnforcementPolicy.PermitWithoutStream` false, grpc-core GRPC_ARG_HTTP2_MAX_PING_STRIKES after GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS): the server must permit them.",
  }),
} as const;

/** Each proxy_* directive's grpc_* twin. */
export const GRPC_TWINS: ReadonlyMap<Directive, Directive> = new Map(
  (Object.values(GRPC) as Directive[]).filter((g) => g.twinOf).map((g) => [g.twinOf!, g]),
);

export const DIRECTIVES: readonly Directive[] = [...Object.values(D), ...Object.values(GRPC)] as Directive[];

export const DIRECTIVE_NAMES: ReadonlySet<string> = new Set(DIRECTIVES.map((x) => x.name));

const BY_NAME = new Map<string, Directive[]>();
for (const directive of DIRECTIVES) {
  const list = BY_NAME.get(directive.name) ?? [];
  list.push(directive);
  BY_NAME.set(directive.name, list);
}

export function directivesNamed(name: string): readonly Directive[] {
  return BY_NAME.get(name) ?? [];
}

/** The entry for a name in a context; the table never has two for the same pair (a test checks). */
export function lookup(name: string, context: Context): Directive | undefined {
  return BY_NAME.get(name)?.find((x) => x.contexts.includes(context));
}

/** Names valid in a context, for "did you mean". */
export function namesIn(context: Context): string[] {
  return DIRECTIVES.filter((x) => x.contexts.includes(context)).map((x) => x.name);
}

/** Every binding that fills a record of `kind`, with its directive, in table order. */
export function bindingsOf(kind: RecordKind): readonly { directive: Directive; binding: Binding }[] {
  return BINDINGS.get(kind) ?? [];
}

const BINDINGS = new Map<RecordKind, { directive: Directive; binding: Binding }[]>();
for (const directive of DIRECTIVES) {
  for (const binding of directive.bind ?? []) {
    for (const kind of binding.records) {
      const list = BINDINGS.get(kind) ?? [];
      list.push({ directive, binding: binding as Binding });
      BINDINGS.set(kind, list);
    }
  }
}

/**
 * What a binding gives when no level sets it: the directive's default
 * (projected), else the binding's `unset`, else nothing (the field is absent).
 */
export function fallbackOf(directive: Directive, binding: Binding): { value: unknown } | undefined {
  const fallback = defaultOf(directive);
  if (fallback !== undefined) {
    const value = binding.project ? binding.project(fallback) : fallback;
    if (value !== undefined) return { value };
  }
  if ('unset' in binding) return { value: Array.isArray(binding.unset) ? [...binding.unset] : binding.unset };
  return undefined;
}

/**
 * `record` with its properties in V8's fast mode, as a new object. A record
 * the bindings fill field by field (`record[field] = value`, 30-odd of them)
 * is left a hash table: V8 turns an object into dictionary mode after about a
 * dozen properties added by computed name. The proxy reads its location's
 * and server's fields on every request, and a dictionary lookup is a call
 * to the LoadIC builtin each time (about 5 % of a proxied request's
 * instructions, issue #20); a copy made by spread has fixed offsets.
 */
export function fastRecord<R extends object>(record: R): R {
  return { ...record };
}

/**
 * The bound fields of a record of `kind` that no configuration sets: the
 * defaults, from the table alone (e.g. the pool settings of a bare
 * `proxy_pass ADDRESS`, which has no upstream block).
 */
export function recordDefaults(kind: RecordKind): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { directive, binding } of bindingsOf(kind)) {
    const found = fallbackOf(directive, binding);
    if (found) out[binding.field] = found.value;
  }
  return fastRecord(out);
}

/** The default value of a directive, parsed by its own parser. */
export function defaultOf<T>(directive: Directive<T>): T | undefined {
  if (directive.default === undefined) return undefined;
  const args = directive.default === '""' ? [''] : directive.default.split(' ');
  const parsed = directive.parse(args);
  if (!parsed.ok) throw new Error(`default "${directive.default}" of ${directive.name} does not parse`);
  return parsed.value;
}
