/**
 * nginx's dialect of the configuration language, for reading real nginx
 * files (`keepwire doctor --nginx`). The text goes through keepwire's lexer
 * and parser (parser.ts, includes against nginx's prefix); a directive's
 * meaning, default and merge come from keepwire's directive table and the
 * one merge (`settle` in validate.ts). What differs is tolerance and a few
 * value forms:
 * - directives keepwire does not know (nginx has hundreds) stay in the AST
 *   and are ignored; a value that does not parse is ignored too (refusing it
 *   is `nginx -t`'s job, and doctor reports the ones that matter itself);
 * - nginx-only value forms have dialect parsers: `so_keepalive` fields are
 *   whole seconds, unit-less, with 0 meaning "the kernel default"
 *   (ngx_http_core_listen); `proxy_socket_keepalive` takes on|off only.
 */
import { KERNEL_LIMITS, type KeepaliveSpec } from '../keepalive/spec.js';
import { parseDuration } from '../units/time.js';
import type { Position } from './diagnostics.js';
import {
  type BoundField,
  bindingsOf,
  D,
  type Directive,
  fastRecord,
  type RecordKind,
  UPSTREAM_SERVER_DEFAULTS,
} from './directives.js';
import { Origins } from './hazards.js';
import type {
  Address,
  Config,
  HttpLocation,
  HttpServer,
  HttpUpstreamGroup,
  Listen,
  ProxyTarget,
  SourceRef,
  StreamServer,
  UpstreamServer,
} from './model.js';
import type { ArgNode, DirectiveNode } from './parser.js';
import { type Level, type Setting, settle } from './validate.js';
import { parseAddress } from './values.js';

/** nginx's parse of an so_keepalive value (ngx_http_core_listen / ngx_stream_core_listen); 0 = not set. */
export type NginxKeepalive =
  | { ok: true; enable: boolean; idle: number; interval: number; count: number }
  | { ok: false; message: string; offset: number };

export function parseNginxSoKeepalive(value: string): NginxKeepalive {
  if (value === 'on') return { ok: true, enable: true, idle: 0, interval: 0, count: 0 };
  if (value === 'off') return { ok: true, enable: false, idle: 0, interval: 0, count: 0 };
  const fields = value.split(':');
  // nginx reads the third field to the end of the value, so a fourth field makes the count invalid.
  const [idleText = '', intervalText = '', ...rest] = fields;
  const countText = rest.join(':');
  const out = { ok: true as const, enable: true, idle: 0, interval: 0, count: 0 };
  let offset = 0;
  for (const [key, text] of [
    ['idle', idleText],
    ['interval', intervalText],
  ] as const) {
    if (text !== '') {
      const parsed = parseDuration(text);
      // ngx_parse_time(..., is_sec=1) knows no "ms".
      if (!parsed.ok || /ms/.test(text) || parsed.value % 1000 !== 0) {
        return {
          ok: false,
          message: `invalid so_keepalive ${key} "${text}": nginx takes whole seconds with y M w d h m s units`,
          offset: offset + (parsed.ok ? 0 : parsed.error.offset),
        };
      }
      out[key] = parsed.value / 1000;
    }
    offset += text.length + 1;
  }
  if (countText !== '') {
    if (!/^[0-9]+$/.test(countText)) {
      return {
        ok: false,
        message: `invalid so_keepalive count "${countText}": a plain number of probes`,
        offset: offset + (/[^0-9]/.exec(countText)?.index ?? 0),
      };
    }
    out.count = Number(countText);
  }
  // nginx treats 0 and empty alike, and refuses a value that sets nothing (`::`, `0::`).
  if (out.idle === 0 && out.interval === 0 && out.count === 0) {
    return {
      ok: false,
      message: `so_keepalive="${value}" sets nothing: every field is empty or 0`,
      offset: 0,
    };
  }
  return out;
}

/** The model's form of an nginx keepalive: a field nginx leaves at 0 is the kernel's. */
export function nginxKeepaliveSpec(v: { enable: boolean; idle: number; interval: number; count: number }) {
  const spec: KeepaliveSpec = { enable: v.enable };
  if (v.idle > 0) spec.idle = v.idle;
  if (v.interval > 0) spec.interval = v.interval;
  if (v.count > 0) spec.count = v.count;
  return spec;
}

/** nginx's own value parsers, where its form differs from keepwire's. */
const DIALECT = new Map<Directive, (args: string[]) => unknown>([
  // nginx: proxy_socket_keepalive on | off (keepwire also takes a spec).
  ...[D.httpProxySocketKeepalive, D.streamProxySocketKeepalive].map(
    (d) =>
      [
        d as Directive,
        (args: string[]): KeepaliveSpec | undefined =>
          args.length === 1 && (args[0] === 'on' || args[0] === 'off')
            ? { enable: args[0] === 'on' }
            : undefined,
      ] as const,
  ),
]);

/**
 * One nginx block as a level of the merge: a directive's settings there,
 * parsed in nginx's dialect, read under `nameOf(directive)` (default its own
 * name).
 */
function level(node: DirectiveNode, nameOf: (d: Directive) => string = (d) => d.name): Level {
  return {
    all<T>(directive: Directive<T>): Setting<T>[] {
      const out: Setting<T>[] = [];
      const name = nameOf(directive as Directive);
      for (const child of node.children ?? []) {
        if (child.name !== name || child.children) continue;
        const args = child.args.map((a) => a.value);
        const dialect = DIALECT.get(directive as Directive);
        if (dialect) {
          const value = dialect(args);
          if (value !== undefined) out.push({ value: value as T, node: child });
          continue;
        }
        if (args.length < directive.minArgs || args.length > directive.maxArgs) continue;
        const parsed = directive.parse(args);
        if (parsed.ok) out.push({ value: parsed.value, node: child });
      }
      return out;
    },
  };
}

/**
 * The value a record of `kind` takes for `field` in nginx, from the blocks
 * `chain` (outermost first, the record's own block last): nginx's merge and
 * default as keepwire's table has them, with the directive that set it
 * (none: the default). `name` reads an nginx directive of the same meaning
 * under another name (`grpc_read_timeout` as `proxy_read_timeout`).
 */
export function nginxSetting<T>(
  chain: readonly DirectiveNode[],
  directive: Directive,
  kind: RecordKind,
  field: BoundField,
  name: string = directive.name,
): { value: T; node?: DirectiveNode } {
  const binding = directive.bind?.find((b) => b.field === field && b.records.includes(kind));
  if (!binding) throw new Error(`${directive.name} is not bound to ${kind}.${field}`);
  const levels = [...chain].reverse().map((node) => level(node, (d) => (d === directive ? name : d.name)));
  const found = settle(directive, binding, levels);
  if (!found) throw new Error(`${directive.name} has no default for ${kind}.${field}`);
  return found as { value: T; node?: DirectiveNode };
}

/**
 * An nginx address (upstream `server`, the host of `proxy_pass`): keepwire's
 * parser, plus nginx's `unix:` sockets (host `unix:PATH`: on this host).
 */
export function nginxAddress(text: string, defaultPort?: number): Address | undefined {
  if (text.startsWith('unix:')) return { host: text, port: 0, text };
  const parsed = parseAddress(text, defaultPort === undefined ? {} : { defaultPort });
  return parsed.ok ? parsed.value : undefined;
}

const SCHEME_PORT: Record<string, number> = { http: 80, https: 443, grpc: 80, grpcs: 443 };

/**
 * What an nginx `proxy_pass`/`grpc_pass` reaches: an upstream block of
 * `groups`, or an address. nginx's forms keepwire refuses are read: any
 * scheme, a URI part (`http://app/api/`), a unix socket. Undefined when it is
 * known only at run time (a variable in the host) or does not parse.
 */
export function nginxProxyTarget(value: string, groups: ReadonlySet<string>): ProxyTarget | undefined {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(value);
  let rest = scheme ? value.slice(scheme[0].length) : value;
  if (!rest.startsWith('unix:')) rest = rest.replace(/[/?].*$/, '');
  if (rest.includes('$') || rest === '') return undefined;
  const explicitPort = /^\[.*\]:|^[^[\]:]*:/.test(rest);
  if (!explicitPort && groups.has(rest)) return { kind: 'group', name: rest };
  const address = nginxAddress(rest, scheme ? (SCHEME_PORT[scheme[1]!.toLowerCase()] ?? 80) : undefined);
  return address ? { kind: 'address', address } : undefined;
}

/** An nginx `listen`, as doctor needs it; every parameter keepwire refuses (ssl, http2, proxy_protocol...) is kept. */
export interface NginxListen {
  /** The address as written, without a comma stuck to it. */
  addressText: string;
  /** keepwire's form of it (`80` and `*:80` are 0.0.0.0:80); undefined for a unix socket or one that does not parse. */
  address?: Address;
  /** The so_keepalive parameter: its argument, its value and nginx's parse of it. */
  soKeepalive?: { arg: number; text: string; valueOffset: number; parsed: NginxKeepalive };
  /** Every other parameter (ssl, http2, default_server, backlog=N...), commas removed, for writing a fix. */
  params: string[];
  /** The first argument with a comma: nginx reads `80,` as a host name and fails. */
  commaArg?: number;
}

export function nginxListen(args: readonly string[]): NginxListen {
  const addressText = (args[0] ?? '').replace(/,$/, '');
  const out: NginxListen = { addressText, params: [] };
  if (addressText !== '' && !addressText.startsWith('unix:')) {
    const parsed = parseAddress(addressText, { listen: true, defaultPort: 80 });
    if (parsed.ok) out.address = parsed.value;
  }
  const comma = args.findIndex((a) => a.includes(','));
  if (comma !== -1) out.commaArg = comma;
  args.forEach((arg, i) => {
    if (i === 0) return;
    const bare = arg.replace(/^,/, '');
    if (!out.soKeepalive && bare.startsWith('so_keepalive=')) {
      const text = bare.slice('so_keepalive='.length);
      out.soKeepalive = {
        arg: i,
        text,
        valueOffset: arg.indexOf('=') + 1,
        parsed: parseNginxSoKeepalive(text),
      };
      return;
    }
    const param = arg.replace(/,/g, '');
    if (param !== '') out.params.push(param);
  });
  return out;
}

/** The listening socket a listen opens: servers on one address share it and its options. */
export function nginxSocketKey(listen: NginxListen): string {
  return listen.address ? `${listen.address.host.toLowerCase()}:${listen.address.port}` : listen.addressText;
}

/** The `*_pass` directives that open upstream connections; each module has its own `*_read_timeout` and `*_socket_keepalive`. */
export const PASS_KINDS = ['proxy', 'grpc', 'fastcgi', 'uwsgi', 'scgi'] as const;
export type PassKind = (typeof PASS_KINDS)[number];

/** The blocks inside a server that inherit its settings and may hold a `*_pass`. */
const NESTED = new Set(['location', 'if', 'limit_except']);

/** The release that made upstream keep-alive the default (HTTP/1.1, no `Connection: close`). */
export const KEEPALIVE_DEFAULTS_VERSION = [1, 29, 7] as const;

export function versionAtLeast(version: string, want: readonly number[]): boolean {
  const parts = version.split('.').map((p) => Number.parseInt(p, 10));
  for (let i = 0; i < want.length; i++) {
    const have = parts[i] ?? 0;
    if (have !== want[i]) return have > want[i]!;
  }
  return true;
}

/** What the nginx model keeps beside keepwire's records: the nginx blocks each record came from. */
export interface NginxModel {
  config: Config;
  origins: Origins;
  /** Each listener's directive and nginx's reading of it (`invalid`: nginx -t refuses its so_keepalive). */
  listens: Map<
    Listen,
    { node: DirectiveNode; nginx: NginxListen; block: 'http' | 'stream'; invalid: boolean }
  >;
  /** Each location (nested `location`, `if`, `limit_except` blocks too): its block chain and its `*_pass`. */
  locations: Map<HttpLocation, { chain: DirectiveNode[]; pass?: DirectiveNode; kind?: PassKind }>;
  /** Each upstream group's block. */
  groups: Map<HttpUpstreamGroup, DirectiveNode>;
  /** The text of every directive or argument a field was read from, by `file:line:col`, for evidence. */
  values: Map<string, string>;
}

const positionKey = (p: Position) => `${p.file}:${p.line}:${p.col}`;
const ref = (p: Position): SourceRef => ({ file: p.file, line: p.line, col: p.col });

function childrenNamed(node: DirectiveNode, name: string): DirectiveNode[] {
  return (node.children ?? []).filter((c) => c.name === name);
}

/**
 * keepwire's model of an nginx configuration, for the hazard engine
 * (config/hazards.ts): every record filled by the directive table's bindings
 * through the one merge (`settle`), over nginx's blocks and in its dialect.
 * nginx's differences are written here once: a location's `grpc_pass` reads
 * `grpc_read_timeout` and `grpc_socket_keepalive` (each `*_pass` module has
 * its own), nested locations and `if` blocks are locations inheriting from
 * the enclosing one, `proxy_http_version` defaults to 1.0 before nginx
 * 1.29.7 and 1.1 from it (and means nothing to grpc/fastcgi/uwsgi/scgi,
 * which are not HTTP/1.x), a server without `listen` listens on *:80, an
 * so_keepalive field the kernel refuses is left to the kernel's default (nginx
 * logs the setsockopt failure and goes on).
 */
export function nginxModel(
  top: readonly DirectiveNode[],
  file: string,
  opts: { nginxVersion?: string } = {},
): NginxModel {
  const origins = new Origins();
  const values = new Map<string, string>();
  const out: NginxModel = {
    config: { file } as Config,
    origins,
    listens: new Map(),
    locations: new Map(),
    groups: new Map(),
    values,
  };
  const at = (obj: object, field: string, node: DirectiveNode | ArgNode, value?: string) => {
    origins.set(obj, field, node);
    values.set(
      positionKey(node),
      value ?? ('args' in node ? node.args.map((a) => a.value).join(' ') : node.value),
    );
  };
  const fill = <R extends object>(
    record: Partial<R>,
    kind: RecordKind,
    chain: readonly DirectiveNode[],
    nameOf?: (d: Directive) => string,
  ): R => {
    const levels = [...chain].reverse().map((n) => level(n, nameOf));
    const rec = record as Record<string, unknown>;
    const set: { field: string; node: DirectiveNode }[] = [];
    for (const { directive, binding } of bindingsOf(kind)) {
      const found = settle(directive, binding, levels);
      if (found === undefined) continue;
      rec[binding.field] = found.value;
      if (found.node) set.push({ field: binding.field, node: found.node });
    }
    const fast = fastRecord(rec) as R;
    for (const { field, node } of set) at(fast, field, node);
    return fast;
  };
  const root: DirectiveNode = { file, line: 0, col: 0, name: '', args: [], children: [...top] };
  Object.assign(out.config, fill<Config>({}, 'config', [root]));

  const listen = (node: DirectiveNode, block: 'http' | 'stream'): Listen | undefined => {
    const nginx = nginxListen(node.args.map((a) => a.value));
    if (!nginx.address) return undefined;
    const l: Listen = { address: nginx.address, backlog: 0, reuseport: false, source: ref(node) };
    const keep = nginx.soKeepalive;
    let invalid = false;
    if (keep) {
      const arg = node.args[keep.arg]!;
      if (keep.parsed.ok) {
        // A field the kernel refuses is never set: the socket keeps the kernel's value for it.
        const applied = { ...keep.parsed };
        for (const f of ['idle', 'interval', 'count'] as const) {
          const v = applied[f];
          if (v !== 0 && (v < KERNEL_LIMITS[f].min || v > KERNEL_LIMITS[f].max)) applied[f] = 0;
        }
        l.soKeepalive = nginxKeepaliveSpec(applied);
      } else {
        invalid = true;
        l.soKeepalive = { enable: false };
      }
      at(l, 'soKeepalive', arg);
    }
    out.listens.set(l, { node, nginx, block, invalid });
    return l;
  };

  const upstreams = (block: DirectiveNode): Map<string, HttpUpstreamGroup> => {
    const map = new Map<string, HttpUpstreamGroup>();
    for (const node of childrenNamed(block, 'upstream')) {
      const name = node.args[0]?.value ?? '';
      const servers: UpstreamServer[] = childrenNamed(node, 'server').map((s) => {
        const text = s.args[0]?.value ?? '';
        // nginx: an upstream server without a port is on port 80; a name that does not parse is not local.
        const address = nginxAddress(text, 80) ?? { host: text, port: 0, text };
        return { ...UPSTREAM_SERVER_DEFAULTS, address, source: ref(s) };
      });
      const group = fill<HttpUpstreamGroup>(
        { name, servers, balancing: { kind: 'round_robin' }, source: ref(node) },
        'http_upstream',
        [node],
      );
      // keepwire's `keepalive` has a default pool; nginx pools only with the directive.
      const keepalive = childrenNamed(node, 'keepalive').at(-1);
      if (!keepalive) group.keepalive = 0;
      map.set(name, group);
      out.groups.set(group, node);
    }
    return map;
  };

  const modern =
    opts.nginxVersion !== undefined && versionAtLeast(opts.nginxVersion, KEEPALIVE_DEFAULTS_VERSION);

  for (const http of childrenNamed(root, 'http')) {
    const groups = upstreams(http);
    const names = new Set(groups.keys());
    const servers: HttpServer[] = [];
    for (const node of childrenNamed(http, 'server')) {
      const chain = [root, http, node];
      const listens = childrenNamed(node, 'listen').flatMap((l) => listen(l, 'http') ?? []);
      if (childrenNamed(node, 'listen').length === 0) {
        // nginx gives a server without `listen` *:80, pointed at the server here.
        const l: Listen = {
          address: { host: '0.0.0.0', port: 80, text: '*:80' },
          backlog: 0,
          reuseport: false,
          source: ref(node),
        };
        out.listens.set(l, { node, nginx: nginxListen(['*:80']), block: 'http', invalid: false });
        listens.push(l);
      }
      const server = fill<HttpServer>({ listens, locations: [], source: ref(node) }, 'http_server', chain);
      const walk = (c: DirectiveNode[]) => {
        for (const child of c[c.length - 1]!.children ?? []) {
          if (!child.children || !NESTED.has(child.name)) continue;
          const inner = [...c, child];
          const kind = PASS_KINDS.find((k) => childrenNamed(child, `${k}_pass`).length > 0);
          const pass = kind ? childrenNamed(child, `${kind}_pass`).at(-1) : undefined;
          const nameOf = (d: Directive) =>
            kind && kind !== 'proxy' && (d === D.proxyReadTimeout || d === D.httpProxySocketKeepalive)
              ? d.name.replace(/^proxy_/, `${kind}_`)
              : d.name;
          const location = fill<HttpLocation>(
            { prefix: child.args.map((a) => a.value).join(' '), source: ref(child) },
            'location',
            inner,
            nameOf,
          );
          if (!origins.get(location, 'proxyHttpVersion')) {
            // nginx's default: 1.0 before 1.29.7; only proxy_pass speaks HTTP/1.x.
            location.proxyHttpVersion = modern || (kind && kind !== 'proxy') ? '1.1' : '1.0';
          }
          if (pass && kind) {
            const target = nginxProxyTarget(pass.args[0]?.value ?? '', names);
            // A target known only at run time (a variable) is an unknown group: not on this host.
            location.proxyPass = {
              scheme: 'http',
              target: target ?? { kind: 'group', name: '' },
              text: pass.args[0]?.value ?? '',
            };
            at(location, 'proxyPass', pass);
          }
          out.locations.set(location, { chain: inner, ...(pass && kind ? { pass, kind } : {}) });
          server.locations.push(location);
          walk(inner);
        }
      };
      walk(chain);
      servers.push(server);
    }
    if (!out.config.http) out.config.http = { upstreams: groups, servers };
  }

  for (const stream of childrenNamed(root, 'stream')) {
    const groups = upstreams(stream);
    const servers: StreamServer[] = [];
    for (const node of childrenNamed(stream, 'server')) {
      const listens = childrenNamed(node, 'listen').flatMap((l) => listen(l, 'stream') ?? []);
      const pass = childrenNamed(node, 'proxy_pass').at(-1);
      const target = pass ? nginxProxyTarget(pass.args[0]?.value ?? '', new Set(groups.keys())) : undefined;
      const server = fill<StreamServer>(
        { listens, proxyPass: target ?? { kind: 'group', name: '' }, source: ref(node) },
        'stream_server',
        [root, stream, node],
      );
      if (pass) at(server, 'proxyPass', pass);
      // Without a proxy_pass there is no upstream leg to judge.
      if (!pass) server.proxyPass = { kind: 'address', address: { host: '127.0.0.1', port: 0, text: '' } };
      servers.push(server);
    }
    if (!out.config.stream) out.config.stream = { upstreams: groups, servers };
  }
  return out;
}
