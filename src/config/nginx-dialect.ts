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
import type { KeepaliveSpec } from '../keepalive/spec.js';
import { parseDuration } from '../units/time.js';
import { type BoundField, D, type Directive, type RecordKind } from './directives.js';
import type { Address, ProxyTarget } from './model.js';
import type { DirectiveNode } from './parser.js';
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

/** One nginx block as a level of the merge: `name`'s settings there, parsed in nginx's dialect. */
function level(node: DirectiveNode, name: string): Level {
  return {
    all<T>(directive: Directive<T>): Setting<T>[] {
      const out: Setting<T>[] = [];
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
  const levels = [...chain].reverse().map((node) => level(node, name));
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
