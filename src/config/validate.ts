/**
 * AST → typed model. Each directive is checked against the table (context,
 * block or not, arity, duplicates, value), then each block's settings are
 * merged with inherited ones and the table's defaults, nginx style, and the
 * rules that span directives (upstream names, duplicate addresses) run.
 */
import { isIP } from 'node:net';
import { dirname, isAbsolute, resolve as resolvePath } from 'node:path';
import { formatDuration } from '../units/time.js';
import { type DiagnosticList, type Position, sortDiagnostics } from './diagnostics.js';
import {
  type Binding,
  bindingsOf,
  CONTEXT_LABEL,
  type Context,
  D,
  DEFAULT_BACKLOG,
  DIRECTIVE_NAMES,
  type Directive,
  directivesNamed,
  fallbackOf,
  fastRecord,
  GRPC,
  GRPC_TWINS,
  type ListenValue,
  lookup,
  namesIn,
  type ProxyPassValue,
  type RecordKind,
} from './directives.js';
import { checkHazards, Origins } from './hazards.js';
import { positionInToken } from './lexer.js';
import type {
  Balancing,
  CertificatePair,
  Config,
  HttpBlock,
  HttpLocation,
  HttpServer,
  HttpUpstreamGroup,
  Listen,
  LocalPage,
  ProxyTarget,
  SourceRef,
  StreamBlock,
  StreamServer,
  UpstreamGroup,
  UpstreamServer,
  UpstreamTls,
} from './model.js';
import type { ConfigAst, DirectiveNode } from './parser.js';
import { closest } from './values.js';

export interface ValidateOptions {
  /**
   * Keep going past directives keepwire does not know (reported as warnings
   * and skipped), for reading real nginx files.
   */
  tolerant?: boolean;
}

export interface Setting<T = unknown> {
  value: T;
  node: DirectiveNode;
}

/** One level of a record's chain (a block), as the merge reads it: the parsed settings of a directive there. */
export interface Level {
  all<T>(directive: Directive<T>): Setting<T>[];
}

class Block {
  readonly settings = new Map<Directive, Setting[]>();
  readonly children: Block[] = [];
  /** Directives present but invalid: no "missing directive" error for them on top of their own. */
  readonly failed = new Set<Directive>();

  constructor(
    readonly context: Context,
    readonly node?: DirectiveNode,
    /** The parsed arguments of the directive that opened the block (upstream name, location prefix). */
    readonly value?: unknown,
  ) {}

  add(directive: Directive, setting: Setting): void {
    const list = this.settings.get(directive) ?? [];
    list.push(setting);
    this.settings.set(directive, list);
  }

  all<T>(directive: Directive<T>): Setting<T>[] {
    return (this.settings.get(directive as Directive) ?? []) as Setting<T>[];
  }

  first<T>(directive: Directive<T>): Setting<T> | undefined {
    return this.all(directive)[0];
  }

  blocks(context: Context): Block[] {
    return this.children.filter((c) => c.context === context);
  }
}

const ref = (p: Position): SourceRef => ({ file: p.file, line: p.line, col: p.col });

/** A file named in a configuration: relative paths are relative to the file that names it. */
function besideFile(at: { file: string }, file: string): string {
  return isAbsolute(file) ? file : resolvePath(dirname(at.file), file);
}

function tokenPosition(node: DirectiveNode, arg: number, offset: number): Position {
  const a = node.args[arg];
  return a ? positionInToken(a.token, offset) : node;
}

/** Reads a file's directives into blocks, reporting every directive-level error. */
function collect(
  nodes: readonly DirectiveNode[],
  block: Block,
  diags: DiagnosticList,
  opts: ValidateOptions,
) {
  for (const node of nodes) {
    const candidates = directivesNamed(node.name);
    if (candidates.length === 0) {
      const guess = closest(node.name, namesIn(block.context)) ?? closest(node.name, DIRECTIVE_NAMES);
      const message = `unknown directive "${node.name}"`;
      const hint = guess
        ? `did you mean "${guess}"?`
        : 'see docs/config.md for the directives keepwire supports';
      if (opts.tolerant) diags.warning('unknown-directive', node, message, hint);
      else diags.error('unknown-directive', node, message, hint);
      // A misspelt `listen` should not also produce "no listen in this server".
      const meant = guess === undefined ? undefined : lookup(guess, block.context);
      if (meant) block.failed.add(meant);
      continue;
    }
    const directive = lookup(node.name, block.context);
    if (!directive) {
      const where = [...new Set(candidates.flatMap((c) => c.contexts.map((x) => CONTEXT_LABEL[x])))];
      diags.error(
        'wrong-context',
        node,
        `"${node.name}" directive is not allowed in ${CONTEXT_LABEL[block.context]}`,
        `"${node.name}" is allowed in: ${where.join(', ')}`,
      );
      continue;
    }
    if (directive.block && !node.children) {
      diags.error(
        'block-expected',
        node,
        `directive "${node.name}" has no opening "{"`,
        `write ${node.name} ${directive.syntax}`,
      );
      continue;
    }
    if (!directive.block && node.children) {
      diags.error(
        'block-unexpected',
        node,
        `directive "${node.name}" takes no block`,
        `end it with ";": ${node.name} ${directive.syntax};`,
      );
      continue;
    }
    const n = node.args.length;
    if (n < directive.minArgs || n > directive.maxArgs) {
      const extra = node.args[directive.maxArgs];
      diags.error(
        'wrong-arity',
        n > directive.maxArgs && extra ? extra : node,
        `invalid number of arguments in "${node.name}" directive: ${arityText(directive)}, got ${n}`,
        `syntax: ${node.name}${directive.syntax ? ` ${directive.syntax}` : ''}${directive.block ? '' : ';'}`,
      );
      continue;
    }
    if (!directive.multiple) {
      const previous = block.all(directive)[0];
      if (previous) {
        diags.error(
          'duplicate-directive',
          node,
          `"${node.name}" directive is duplicate`,
          `it is already set at ${previous.node.file}:${previous.node.line}:${previous.node.col}`,
        );
        continue;
      }
    }
    if (node.name === 'include') continue;
    const parsed = directive.parse(node.args.map((a) => a.value));
    if (!parsed.ok) {
      const e = parsed.error;
      let hint = e.hint;
      if (e.code === 'comma-separator') {
        // nginx itself reads `80,` as a host name and fails with `host not found in "80,"`.
        const fixed = node.args.map((a) => a.value.replace(/,/g, ' ').trim()).filter(Boolean);
        hint = `write: ${node.name} ${fixed.join(' ')};`;
      }
      diags.error(
        e.code ?? 'bad-value',
        tokenPosition(node, e.arg, e.offset),
        `${node.name}: ${e.message}`,
        hint,
      );
      block.failed.add(directive);
      if (directive.block) collect(node.children ?? [], new Block(directive.block, node), diags, opts);
      continue;
    }
    block.add(directive, { value: parsed.value, node });
    if (directive.block) {
      const child = new Block(directive.block, node, parsed.value);
      block.children.push(child);
      collect(node.children ?? [], child, diags, opts);
    }
  }
}

function arityText(d: Directive): string {
  if (d.minArgs === d.maxArgs)
    return `takes ${d.minArgs === 0 ? 'no' : d.minArgs} argument${d.minArgs === 1 ? '' : 's'}`;
  if (d.maxArgs === Number.POSITIVE_INFINITY) return `takes at least ${d.minArgs}`;
  return `takes ${d.minArgs} to ${d.maxArgs}`;
}

/**
 * A binding's value for a record whose levels are `chain` (innermost first),
 * merged as the table says, with the directive that set it; undefined when
 * nothing sets it and there is no default (the field stays absent). The one
 * merge: keepwire's blocks here, nginx's blocks in the doctor's dialect
 * (config/nginx-dialect.ts).
 */
export function settle(
  directive: Directive,
  binding: Binding,
  chain: readonly Level[],
): { value: unknown; node?: DirectiveNode } | undefined {
  const project = (v: unknown) => (binding.project ? binding.project(v) : v);
  const levels = binding.merge === 'local' ? chain.slice(0, 1) : chain;
  for (const block of levels) {
    const settings = block.all(directive);
    if (settings.length === 0) continue;
    if (directive.multiple) {
      // Every value of this level, in order; list values (server_name a b) are spread.
      const values = settings.flatMap((x) => {
        const v = project(x.value);
        return Array.isArray(v) ? v : [v];
      });
      return { value: values, node: settings[0]!.node };
    }
    const value = project(settings[0]!.value);
    // A level that does not set this projection (keepalive_timeout without a header value) is skipped.
    if (value === undefined) continue;
    return { value, node: settings[0]!.node };
  }
  return fallbackOf(directive, binding);
}

/** The least PING interval grpc-go and grpc-core servers accept by default (5 minutes). */
const GRPC_SERVER_MIN_PING_MS = 300_000;

/** A block as a grpc_pass location's level: each proxy_* directive read under its grpc_* twin. */
function grpcLevel(block: Block): Level {
  return {
    all: (directive) => block.all((GRPC_TWINS.get(directive as Directive) ?? directive) as typeof directive),
  };
}

/** The levels a record of `kind` opened by `block` is resolved from, innermost first. */
function levels(kind: RecordKind, block: Block, parents: readonly Block[]): Block[] {
  return kind === 'config' ? [block, ...block.blocks('events')] : [block, ...parents];
}

class Builder {
  readonly origins = new Origins();

  constructor(private readonly diags: DiagnosticList) {}

  /** Records where a field was set, for hazards that point at the directive. */
  private at<T extends object>(obj: T, field: string, node: Position | undefined): void {
    if (node) this.origins.set(obj, field, node);
  }

  /**
   * Fills every field the directive table binds to records of `kind`: the
   * one generic merge. `record` holds the structural fields already.
   */
  private fill<R extends object>(record: Partial<R>, kind: RecordKind, chain: readonly Level[]): R {
    const out = record as Record<string, unknown>;
    const set: { field: string; node: Position | undefined }[] = [];
    for (const { directive, binding } of bindingsOf(kind)) {
      const found = settle(directive, binding, chain);
      if (found === undefined) continue;
      out[binding.field] = found.value;
      set.push({ field: binding.field, node: found.node });
    }
    const fast = fastRecord(out) as R;
    for (const { field, node } of set) this.at(fast, field, node);
    return fast;
  }

  build(file: string, main: Block): Config {
    const config = this.fill<Config>({ file }, 'config', levels('config', main, []));
    const stream = main.blocks('stream')[0];
    if (stream) config.stream = this.stream(stream, main);
    const http = main.blocks('http')[0];
    if (http) config.http = this.http(http, main);
    this.duplicateListens(config);
    if (config.http) this.sslAddresses(config.http);
    return config;
  }

  /**
   * Certificates per `ssl` address, as nginx (ngx_http_ssl_init, and
   * ngx_http_ssl_servername): the address is `ssl` when any listen on it says
   * so; its default server (`default_server`, else the first) must have a
   * certificate ("no ssl_certificate is defined for the listen ... ssl"); any
   * other server may have none, and a client naming it by SNI then gets the
   * default server's certificate (nginx keeps the default server's SSL_CTX
   * when the matched server has none), which its name usually does not
   * match: a warning.
   */
  private sslAddresses(block: HttpBlock): void {
    type At = { servers: HttpServer[]; ssl: Listen | undefined; defaultServer: HttpServer | undefined };
    // Port 0 is a fresh port per listen directive: never shared.
    const keyOf = (l: Listen): unknown =>
      l.address.port === 0 ? l : `${l.address.host.toLowerCase()}:${l.address.port}`;
    const byKey = new Map<unknown, At>();
    for (const server of block.servers)
      for (const listen of server.listens) {
        const key = keyOf(listen);
        let at = byKey.get(key);
        if (at === undefined) {
          at = { servers: [], ssl: undefined, defaultServer: undefined };
          byKey.set(key, at);
        }
        if (!at.servers.includes(server)) at.servers.push(server);
        if (listen.ssl && at.ssl === undefined) at.ssl = listen;
        if (listen.defaultServer && at.defaultServer === undefined) at.defaultServer = server;
      }
    for (const at of byKey.values()) {
      if (at.ssl === undefined) continue;
      const def = at.defaultServer ?? at.servers[0]!;
      const key = keyOf(at.ssl);
      const text = at.ssl.address.text;
      const defaultListen = def.listens.find((l) => keyOf(l) === key) ?? def.listens[0]!;
      if (def.sslCertificates.length === 0) {
        this.diags.error(
          'missing-directive',
          defaultListen.source,
          `no "ssl_certificate" is defined for the listen ${text} ssl`,
          'ssl_certificate /etc/letsencrypt/live/example.com/fullchain.pem; ssl_certificate_key /etc/letsencrypt/live/example.com/privkey.pem;',
        );
        continue;
      }
      const d = def.source;
      for (const server of at.servers) {
        if (server === def || server.sslCertificates.length > 0) continue;
        const listen = server.listens.find((l) => keyOf(l) === key) ?? server.listens[0]!;
        const names = server.serverNames.filter((n) => n !== '').join(' ') || '(no server_name)';
        this.diags.warning(
          'certificate-from-default',
          listen.source,
          `server ${names} shares the ssl address ${text} but has no ssl_certificate: clients naming it by SNI get the certificate of the default server at ${d.file}:${d.line}`,
          "give this server its own ssl_certificate and ssl_certificate_key, or make sure the default server's certificate covers its names",
        );
      }
    }
  }

  private listen(s: Setting<ListenValue>): Listen {
    const v = s.value;
    const listen: Listen = {
      address: v.address,
      backlog: v.backlog,
      reuseport: v.reuseport,
      source: ref(s.node),
    };
    if (v.defaultServer) listen.defaultServer = true;
    if (v.ssl) listen.ssl = true;
    if (v.soKeepalive) {
      listen.soKeepalive = v.soKeepalive;
      this.at(listen, 'soKeepalive', s.node.args[v.soKeepaliveArg ?? 0]);
    }
    return listen;
  }

  /**
   * ssl_certificate and ssl_certificate_key of the innermost level that sets
   * any, paired by rank as nginx pairs them; relative paths are relative to
   * the file naming them. A stream server with an `ssl` listen needs at
   * least one pair (nginx: "no ssl_certificate is defined for the listen ...
   * ssl"); http servers share addresses, so sslAddresses judges them per
   * address, as nginx's ngx_http_ssl_init does.
   */
  private certificates(
    chain: readonly Block[],
    listens: readonly Listen[],
    node: DirectiveNode,
    module: 'http' | 'stream',
  ): CertificatePair[] {
    const certD = module === 'http' ? D.httpSslCertificate : D.streamSslCertificate;
    const keyD = module === 'http' ? D.httpSslCertificateKey : D.streamSslCertificateKey;
    const level = chain.find((b) => b.all(certD).length > 0 || b.all(keyD).length > 0);
    const certs = level?.all(certD) ?? [];
    const keys = level?.all(keyD) ?? [];
    const pairs: CertificatePair[] = [];
    for (let i = 0; i < Math.max(certs.length, keys.length); i++) {
      const c = certs[i];
      const k = keys[i];
      if (c === undefined || k === undefined) {
        const at = (c ?? k)!.node;
        this.diags.error(
          'missing-directive',
          at,
          c === undefined
            ? `"ssl_certificate_key" without an "ssl_certificate" of the same rank`
            : `no "ssl_certificate_key" is defined for certificate "${c.value}"`,
          'each ssl_certificate needs an ssl_certificate_key, given in the same order',
        );
        continue;
      }
      pairs.push({
        certificate: besideFile(c.node, c.value),
        key: besideFile(k.node, k.value),
        certificateSource: ref(c.node),
        keySource: ref(k.node),
      });
    }
    const tls = listens.find((l) => l.ssl);
    if (module === 'stream' && tls && pairs.length === 0 && certs.length === 0)
      this.diags.error(
        'missing-directive',
        tls.source,
        `no "ssl_certificate" is defined for the listen ${tls.address.text} ssl`,
        'ssl_certificate /etc/letsencrypt/live/example.com/fullchain.pem; ssl_certificate_key /etc/letsencrypt/live/example.com/privkey.pem;',
      );
    void node;
    return pairs;
  }

  /** proxy_ssl_* file paths relative to the file that names them, as ssl_certificate. */
  private upstreamTlsPaths(record: UpstreamTls): void {
    const fields = [
      ['proxySslTrustedCertificate', 'trustedCertificate'],
      ['proxySslCertificate', 'certificate'],
      ['proxySslCertificateKey', 'certificateKey'],
    ] as const;
    for (const [field, name] of fields) {
      const value = record[field];
      const at = this.origins.get(record, field);
      if (value === undefined || at === undefined) continue;
      record[field] = besideFile(at, value);
      record.proxySslSources ??= {};
      record.proxySslSources[name] = ref(at);
    }
  }

  /** As nginx leaves it by default, TLS to an upstream without verification: anyone on the path can pose as it. */
  private verifyOff(at: Position, what: string, family: 'proxy' | 'grpc' = 'proxy'): void {
    const p = family;
    this.diags.warning(
      'tls-verify-off',
      at,
      `${what} without "${p}_ssl_verify on": the upstream's certificate is not checked`,
      `${p}_ssl_verify on; ${p}_ssl_trusted_certificate /path/to/ca.pem; (and ${p}_ssl_name if the name differs)`,
    );
  }

  private upstreams<G extends UpstreamGroup>(
    parent: Block,
    context: 'stream_upstream' | 'http_upstream',
    make: (group: UpstreamGroup, block: Block) => G,
  ): Map<string, G> {
    const groups = new Map<string, G>();
    const serverDirective = context === 'stream_upstream' ? D.streamUpstreamServer : D.httpUpstreamServer;
    for (const block of parent.blocks(context)) {
      const { name } = block.value as { name: string };
      const node = block.node!;
      const existing = groups.get(name);
      if (existing) {
        this.diags.error(
          'duplicate-upstream',
          node.args[0] ?? node,
          `duplicate upstream "${name}"`,
          `"${name}" is already defined at ${existing.source.file}:${existing.source.line}:${existing.source.col}`,
        );
        continue;
      }
      const servers: UpstreamServer[] = block
        .all(serverDirective)
        .map((s) => ({ ...s.value, source: ref(s.node) }));
      if (servers.length === 0 && !block.failed.has(serverDirective as Directive)) {
        this.diags.error(
          'missing-directive',
          node,
          `no servers are inside upstream "${name}"`,
          `add at least one: server 127.0.0.1:8080;`,
        );
      }
      const methods = [...block.all(D.leastConn), ...block.all(D.hash), ...block.all(D.random)].sort(
        (a, b) => a.node.line - b.node.line || a.node.col - b.node.col,
      );
      for (const extra of methods.slice(1)) {
        this.diags.warning(
          'conflict',
          extra.node,
          `load balancing method redefined in upstream "${name}"`,
          `the last one ("${extra.node.name}") wins; keep only one of least_conn, hash, random`,
        );
      }
      const balancing: Balancing = methods[methods.length - 1]?.value ?? { kind: 'round_robin' };
      if (balancing.kind === 'hash' || balancing.kind === 'random') {
        for (const s of block.all(serverDirective)) {
          if (s.value.backup) {
            const arg = s.node.args.findIndex((a) => a.value === 'backup');
            this.diags.error(
              'conflict',
              s.node.args[arg] ?? s.node,
              `balancing method "${balancing.kind}" does not support the "backup" parameter`,
              'use round robin or least_conn for a group with backup servers',
            );
          }
        }
      }
      groups.set(name, make({ name, servers, balancing, source: ref(node) }, block));
    }
    return groups;
  }

  private target(
    s: Setting<ProxyPassValue>,
    upstreams: ReadonlyMap<string, UpstreamGroup>,
    where: string,
  ): ProxyTarget | undefined {
    const v = s.value;
    if (!v.explicitPort && upstreams.has(v.host)) return { kind: 'group', name: v.host };
    if (v.address && (v.explicitPort || isIP(v.host) !== 0)) return { kind: 'address', address: v.address };
    const guess = closest(v.host, upstreams.keys());
    this.diags.error(
      'unknown-upstream',
      positionInToken(s.node.args[0]!.token, v.hostOffset),
      `proxy_pass to unknown upstream "${v.host}": no upstream "${v.host}" in this ${where} block`,
      guess
        ? `did you mean "${guess}"?`
        : `define it (upstream ${v.host} { server 127.0.0.1:8080; }) or give host:port`,
    );
    return undefined;
  }

  private stream(block: Block, main: Block): StreamBlock {
    const upstreams = this.upstreams(block, 'stream_upstream', (g) => g);
    const servers: StreamServer[] = [];
    for (const sb of block.blocks('stream_server')) {
      const node = sb.node!;
      const listens = sb.all(D.streamListen).map((s) => this.listen(s));
      if (listens.length === 0 && !sb.failed.has(D.streamListen)) {
        this.diags.error(
          'missing-directive',
          node,
          'no "listen" is defined for this stream server',
          'listen 127.0.0.1:6432;',
        );
      }
      const pass = sb.first(D.streamProxyPass);
      let proxyPass: ProxyTarget | undefined;
      if (!pass && !sb.failed.has(D.streamProxyPass)) {
        this.diags.error(
          'missing-directive',
          node,
          'no "proxy_pass" in this stream server: connections would have nowhere to go',
          'proxy_pass NAME; or proxy_pass host:port;',
        );
      } else if (pass) {
        proxyPass = this.target(pass, upstreams, 'stream');
      }
      const chain = levels('stream_server', sb, [block, main]);
      const server = this.fill<StreamServer>(
        {
          listens,
          proxyPass: proxyPass ?? { kind: 'group', name: '' },
          sslCertificates: this.certificates(chain, listens, node, 'stream'),
          source: ref(node),
        },
        'stream_server',
        chain,
      );
      this.upstreamTlsPaths(server);
      if (server.proxySsl && !server.proxySslVerify)
        this.verifyOff(this.origins.get(server, 'proxySsl') ?? node, 'proxy_ssl on');
      if (pass) this.at(server, 'proxyPass', pass.node);
      servers.push(server);
    }
    return { upstreams, servers };
  }

  private http(block: Block, main: Block): HttpBlock {
    const upstreams = this.upstreams(block, 'http_upstream', (g, ub) =>
      this.fill<HttpUpstreamGroup>({ ...g }, 'http_upstream', levels('http_upstream', ub, [])),
    );
    const servers: HttpServer[] = [];
    for (const sb of block.blocks('http_server')) {
      const node = sb.node!;
      let listens = sb.all(D.httpListen).map((s) => this.listen(s));
      if (listens.length === 0) {
        // nginx: a server without listen listens on *:80.
        listens = [
          {
            address: { host: '0.0.0.0', port: 80, text: '*:80' },
            backlog: DEFAULT_BACKLOG,
            reuseport: false,
            source: ref(node),
          },
        ];
      }
      const chain = levels('http_server', sb, [block, main]);
      const server = this.fill<HttpServer>(
        {
          listens,
          locations: [],
          sslCertificates: this.certificates(chain, listens, node, 'http'),
          source: ref(node),
        },
        'http_server',
        chain,
      );
      const prefixes = new Map<string, DirectiveNode>();
      for (const lb of sb.blocks('location')) {
        const location = this.location(lb, [sb, block, main], upstreams, prefixes);
        if (location) server.locations.push(location);
      }
      servers.push(server);
    }
    return { upstreams, servers };
  }

  private location(
    block: Block,
    parents: Block[],
    upstreams: ReadonlyMap<string, HttpUpstreamGroup>,
    prefixes: Map<string, DirectiveNode>,
  ): HttpLocation | undefined {
    const node = block.node!;
    const { prefix } = block.value as { prefix: string };
    const previous = prefixes.get(prefix);
    if (previous) {
      this.diags.error(
        'duplicate-location',
        node.args[0] ?? node,
        `duplicate location "${prefix}"`,
        `the same prefix is already handled at ${previous.file}:${previous.line}:${previous.col}`,
      );
      return undefined;
    }
    prefixes.set(prefix, node);
    // Every setting resolved here, client ones included: a request routed to
    // this location runs under exactly these values (proxy/http/limits.ts).
    const grpc = block.first(GRPC.grpcPass);
    const chain = levels('location', block, parents);
    const location = this.fill<HttpLocation>(
      { prefix, source: ref(node) },
      'location',
      // A grpc_pass location reads the grpc_* twins of the proxy_* settings at every level (nginx's grpc module).
      grpc ? chain.map(grpcLevel) : chain,
    );
    this.upstreamTlsPaths(location);
    const proxy = block.first(D.httpProxyPass);
    const pass = proxy ?? grpc;
    const ret = block.first(D.return);
    const health = block.first(D.health);
    // metrics/stub_status/status answer in place of proxy_pass, return and health.
    const pages = (
      [
        ['metrics', block.first(D.metrics)],
        ['stub_status', block.first(D.stubStatus)],
        ['status', block.first(D.status)],
      ] as const
    ).filter(([, setting]) => setting !== undefined);
    // A location answers in exactly one way: proxy_pass, return, health or one page.
    const answers = [proxy, grpc, ret, health, ...pages.map(([, setting]) => setting)]
      .filter((x) => x !== undefined)
      .map((x) => x.node);
    if (answers.length > 1) {
      // Named in the table's order, pointing at the one written later.
      const [a, b] = [answers[0]!, answers[1]!];
      const later = a.line > b.line || (a.line === b.line && a.col > b.col) ? a : b;
      this.diags.error(
        'conflict',
        later,
        `location "${prefix}" has both "${a.name}" and "${b.name}"`,
        'a location either proxies (proxy_pass, grpc_pass), answers itself (return), answers health checks (health) or serves one page (metrics, stub_status, status); keep one',
      );
    } else if (
      answers.length === 0 &&
      !block.failed.has(D.httpProxyPass) &&
      !block.failed.has(GRPC.grpcPass) &&
      !block.failed.has(D.return) &&
      !block.failed.has(D.health)
    ) {
      this.diags.error(
        'missing-directive',
        node,
        `location "${prefix}" has neither "proxy_pass" nor "return"`,
        "add proxy_pass http://NAME; or return CODE; (or health; for a load balancer's health check, metrics; stub_status; status; for keepwire's pages)",
      );
    } else if (answers.length === 1 && pages.length === 1) {
      location.page = pages[0]![0] as LocalPage;
    }
    if (pass) {
      const target = this.target(pass, upstreams, 'http');
      const grpcs = (pass.value as { grpcs?: boolean }).grpcs === true;
      const scheme = grpc ? (grpcs ? 'grpcs' : 'grpc') : pass.value.https ? 'https' : 'http';
      if (target) location.proxyPass = { scheme, target, text: pass.value.text };
      if ((pass.value.https || grpcs) && !location.proxySslVerify)
        this.verifyOff(pass.node, `${pass.node.name} ${pass.value.text}`, grpc ? 'grpc' : 'proxy');
      this.at(location, 'proxyPass', pass.node);
    }
    if (ret && !pass) location.returnDirective = ret.value;
    if (grpc) this.grpcPingPolicy(location);
    return location;
  }

  /** grpc_ping_* origins already warned about (a value set at http level reaches many locations). */
  private readonly pingWarned = new Set<string>();

  /**
   * gRPC servers police the PINGs they receive, by default (grpc-go
   * keepalive/keepalive.go EnforcementPolicy: MinTime "The current default
   * value is 5 minutes", PermitWithoutStream "false by default"; grpc-core
   * doc/keepalive.md: GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS
   * 300000, GRPC_ARG_HTTP2_MAX_PING_STRIKES 2,
   * GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS 0): PINGs more often than every
   * 5 minutes, or on a connection without calls, end in GOAWAY
   * ENHANCE_YOUR_CALM "too_many_pings". The warning names the server-side
   * settings that must be relaxed to match.
   */
  private grpcPingPolicy(location: HttpLocation): void {
    const interval = location.grpcPingIntervalMs;
    if (interval === 0) return;
    const tooOften = interval < GRPC_SERVER_MIN_PING_MS;
    const withoutCalls = location.grpcPingWithoutCalls;
    if (!tooOften && !withoutCalls) return;
    const at =
      (tooOften ? this.origins.get(location, 'grpcPingIntervalMs') : undefined) ??
      this.origins.get(location, 'grpcPingWithoutCalls') ??
      location.source;
    const key = `${at.file}:${at.line}:${at.col}`;
    if (this.pingWarned.has(key)) return;
    this.pingWarned.add(key);
    const text = formatDuration(interval);
    const problems: string[] = [];
    const relax: string[] = [];
    if (tooOften) {
      problems.push(
        `grpc_ping_interval ${text} is below the 5m minimum PING interval gRPC servers enforce by default`,
      );
      relax.push(
        `grpc-go keepalive.EnforcementPolicy{MinTime: ${text} or less}`,
        `grpc-core GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS ${interval} or less`,
        `grpc-java permitKeepAliveTime ${text} or less`,
      );
    }
    if (withoutCalls) {
      problems.push(
        'grpc_ping_without_calls on PINGs connections without calls, which gRPC servers refuse by default',
      );
      relax.push(
        'grpc-go EnforcementPolicy{PermitWithoutStream: true}',
        'grpc-core GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS 1',
        'grpc-java permitKeepAliveWithoutCalls(true)',
      );
    }
    this.diags.warning(
      'grpc-ping-policy',
      at,
      `${problems.join('; ')}: the server answers GOAWAY ENHANCE_YOUR_CALM "too_many_pings" (keepwire then doubles the interval for that server)`,
      `relax the gRPC server to match: ${relax.join('; ')}; or ${[tooOften ? 'grpc_ping_interval 5m' : '', withoutCalls ? 'grpc_ping_without_calls off' : ''].filter(Boolean).join(' and ')}`,
    );
  }

  /**
   * nginx refuses two stream servers on one address, and lets http servers
   * share one (told apart by Host) as long as only one sets socket options.
   * An address used by both stream and http cannot be bound twice.
   */
  private duplicateListens(config: Config): void {
    type Seen = { listen: Listen; kind: 'stream' | 'http'; server: object; hasOptions: boolean };
    const seen = new Map<string, Seen>();
    const defaults = new Map<string, Listen>();
    const visit = (kind: 'stream' | 'http', server: { listens: Listen[] }) => {
      for (const listen of server.listens) {
        const key = `${listen.address.host.toLowerCase()}:${listen.address.port}`;
        const hasOptions =
          listen.soKeepalive !== undefined || listen.reuseport || listen.backlog !== DEFAULT_BACKLOG;
        const first = seen.get(key);
        const display = listen.address.host.includes(':')
          ? `[${listen.address.host}]:${listen.address.port}`
          : `${listen.address.host}:${listen.address.port}`;
        if (listen.defaultServer) {
          const prior = defaults.get(key);
          if (prior === undefined) defaults.set(key, listen);
          else {
            const f = prior.source;
            // nginx: "a duplicate default server for ADDR in FILE:LINE".
            this.diags.error(
              'duplicate-listen',
              listen.source,
              `a duplicate default server for ${display}`,
              `the default server for this address is already set at ${f.file}:${f.line}:${f.col}; keep default_server on one server`,
            );
          }
        }
        if (!first) {
          seen.set(key, { listen, kind, server, hasOptions });
          continue;
        }
        const where = `${first.listen.source.file}:${first.listen.source.line}:${first.listen.source.col}`;
        if (first.server === server) {
          this.diags.error(
            'duplicate-listen',
            listen.source,
            `duplicate listen ${display} in this server`,
            `first listed at ${where}`,
          );
        } else if (first.kind !== kind || kind === 'stream') {
          this.diags.error(
            'duplicate-listen',
            listen.source,
            `duplicate listen ${display}: already used by the ${first.kind} server at ${where}`,
            'each address:port can be bound by one stream server only, and not by both stream and http',
          );
        } else if (first.hasOptions && hasOptions) {
          this.diags.error(
            'duplicate-listen',
            listen.source,
            `duplicate listen options for ${display}`,
            `socket parameters (so_keepalive, backlog, reuseport) for this address are already set at ${where}`,
          );
        } else if (hasOptions) {
          first.hasOptions = true;
        }
      }
    };
    for (const s of config.stream?.servers ?? []) visit('stream', s);
    for (const s of config.http?.servers ?? []) visit('http', s);
  }
}

/** Builds the model from an AST. Returns a config only when there is no error. */
export function validate(
  ast: ConfigAst,
  diags: DiagnosticList,
  opts: ValidateOptions = {},
): Config | undefined {
  const main = new Block('main');
  collect(ast.directives, main, diags, opts);
  // Built even after errors, so cross-directive mistakes show up in the same run.
  const builder = new Builder(diags);
  const config = builder.build(ast.file, main);
  if (diags.hasErrors) return undefined;
  ORIGINS.set(config, builder.origins);
  checkHazards(config, builder.origins, diags);
  return config;
}

const ORIGINS = new WeakMap<Config, Origins>();

/** Where each field of a validated model was set, for hazards that point at the directive (doctor -c). */
export function originsOf(config: Config): Origins {
  return ORIGINS.get(config) ?? new Origins();
}

export { sortDiagnostics };
