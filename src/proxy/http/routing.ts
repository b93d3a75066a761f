/**
 * Request routing as nginx does it: among the servers sharing a listening
 * address, the one whose `server_name` matches the Host (exact name first,
 * then the longest leading wildcard `*.example.com`, then the longest
 * trailing wildcard `mail.*`); without a match the address's default server
 * (the one whose listen says `default_server`, else the first one listed).
 * Within the server, the longest matching prefix `location` wins, matched
 * against the request's normalised path (`uri.ts`), as nginx matches `$uri`.
 */
import type { HttpLocation, HttpServer } from '../../config/model.js';
import { type ClientLimits, clientLimits } from './limits.js';
import type { HeadRules } from './request.js';

export class LocationTable {
  /** Longest prefix first, so the first match is the answer. */
  private readonly ordered: HttpLocation[];

  constructor(locations: readonly HttpLocation[]) {
    this.ordered = [...locations].sort((a, b) => b.prefix.length - a.prefix.length);
  }

  match(path: string): HttpLocation | undefined {
    for (const l of this.ordered) if (path.startsWith(l.prefix)) return l;
    return undefined;
  }
}

export interface VirtualServer {
  model: HttpServer;
  locations: LocationTable;
  /** The server's client settings (a request no location matches). */
  limits: ClientLimits;
  /** Per location: the server's settings with what the location sets itself. */
  locationLimits: ReadonlyMap<HttpLocation, ClientLimits>;
  /** How request heads are read when this is the address's default server. */
  headRules: HeadRules;
}

/** The server's header settings as the request parser takes them. */
export function headRules(model: HttpServer): HeadRules {
  const { number, size } = model.largeClientHeaderBuffers;
  // nginx: a line fits when it fits the first buffer or a large one.
  const lineMax = Math.max(size, model.clientHeaderBufferSize);
  return {
    lineMax,
    headMax: Math.max(number * size, lineMax),
    maxHeaders: model.maxHeaders,
    mergeSlashes: model.mergeSlashes,
    underscores: model.underscoresInHeaders,
    ignoreInvalid: model.ignoreInvalidHeaders,
  };
}

export function virtualServer(model: HttpServer): VirtualServer {
  return {
    model,
    locations: new LocationTable(model.locations),
    limits: clientLimits(model),
    locationLimits: new Map(model.locations.map((l) => [l, clientLimits(model, l)])),
    headRules: headRules(model),
  };
}

export class ServerTable {
  private readonly exact = new Map<string, VirtualServer>();
  private readonly leading: { suffix: string; server: VirtualServer }[] = [];
  private readonly trailing: { prefix: string; server: VirtualServer }[] = [];
  readonly defaultServer: VirtualServer;

  /** `defaultServer`: the one marked `default_server`, else the first. */
  constructor(servers: readonly VirtualServer[], defaultServer: VirtualServer | undefined = servers[0]) {
    if (defaultServer === undefined) throw new Error('an address needs at least one server');
    this.defaultServer = defaultServer;
    for (const server of servers) {
      for (const raw of server.model.serverNames) {
        const name = raw.toLowerCase();
        if (name === '' || name === '_') continue;
        if (name.startsWith('.')) {
          // `.example.com` is both `example.com` and `*.example.com`.
          if (!this.exact.has(name.slice(1))) this.exact.set(name.slice(1), server);
          this.leading.push({ suffix: name, server });
        } else if (name.startsWith('*.')) this.leading.push({ suffix: name.slice(1), server });
        else if (name.endsWith('.*')) this.trailing.push({ prefix: name.slice(0, -1), server });
        else if (!this.exact.has(name)) this.exact.set(name, server);
      }
    }
    this.leading.sort((a, b) => b.suffix.length - a.suffix.length);
    this.trailing.sort((a, b) => b.prefix.length - a.prefix.length);
    this.unnamed = this.exact.size === 0 && this.leading.length === 0 && this.trailing.length === 0;
  }

  /** No server of the address has a name to match (the Host is not looked at). */
  private readonly unnamed: boolean;

  /** `host` is the Host header as sent (port and case allowed). */
  match(host: string | undefined): VirtualServer {
    // An address whose servers name nothing routes every request to its default server.
    if (host === undefined || host === '' || this.unnamed) return this.defaultServer;
    let name = host.toLowerCase();
    const colon = name.lastIndexOf(':');
    if (colon > 0 && !name.endsWith(']')) name = name.slice(0, colon);
    if (name.endsWith('.')) name = name.slice(0, -1);
    const exact = this.exact.get(name);
    if (exact) return exact;
    for (const l of this.leading) if (name.endsWith(l.suffix)) return l.server;
    for (const t of this.trailing) if (name.startsWith(t.prefix)) return t.server;
    return this.defaultServer;
  }
}
