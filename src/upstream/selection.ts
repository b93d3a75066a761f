/**
 * Balancing policies over a list of upstream hosts, matching nginx's
 * upstream modules: smooth weighted round robin (ngx_http_upstream_round_robin.c),
 * least_conn with weights, hash KEY (rehash on unavailable, then round robin),
 * hash KEY consistent (ketama ring, 160 points per weight unit) and
 * random [two] (power of two choices by least connections).
 *
 * A policy only chooses; whether a host may be chosen (down, ejected,
 * max_conns, already tried for this request) is the caller's predicate.
 */
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { Balancing } from '../config/model.js';
import type { UpstreamHost } from './hosts.js';

export interface PickContext {
  /** Variables for `hash KEY`: `remote_addr`, `remote_port`, `server_addr`, `server_port`, ... */
  vars: Readonly<Record<string, string>>;
  /** May this host take the connection (usable and not yet tried for this session)? */
  eligible: (host: UpstreamHost) => boolean;
}

export interface Selector {
  pick(ctx: PickContext): UpstreamHost | undefined;
}

/** Smooth weighted round robin: a weight-3/1 pair yields a a b a, never a a a b bursts. */
export class RoundRobin implements Selector {
  private readonly current: Map<UpstreamHost, number>;

  constructor(private readonly hosts: readonly UpstreamHost[]) {
    this.current = new Map(hosts.map((h) => [h, 0]));
  }

  pick(ctx: PickContext): UpstreamHost | undefined {
    return this.pickAmong(this.hosts, ctx.eligible);
  }

  /** Also used by other policies to break ties or fall back, as nginx does. */
  pickAmong(
    hosts: readonly UpstreamHost[],
    eligible: (h: UpstreamHost) => boolean,
  ): UpstreamHost | undefined {
    // One server: its current weight would go up by its weight and back by
    // the total (the same), so there is nothing to keep.
    if (hosts.length === 1) return eligible(hosts[0]!) ? hosts[0] : undefined;
    let best: UpstreamHost | undefined;
    let bestCurrent = 0;
    let total = 0;
    for (const h of hosts) {
      if (!eligible(h)) continue;
      const cur = (this.current.get(h) ?? 0) + h.weight;
      this.current.set(h, cur);
      total += h.weight;
      if (best === undefined || cur > bestCurrent) {
        best = h;
        bestCurrent = cur;
      }
    }
    if (best !== undefined) this.current.set(best, bestCurrent - total);
    return best;
  }
}

/** Fewer connections relative to weight wins: compares a.conns/a.weight < b.conns/b.weight without division. */
function lessLoaded(a: UpstreamHost, b: UpstreamHost): number {
  return a.activeConns * b.weight - b.activeConns * a.weight;
}

export class LeastConn implements Selector {
  private readonly rr: RoundRobin;

  constructor(private readonly hosts: readonly UpstreamHost[]) {
    this.rr = new RoundRobin(hosts);
  }

  pick(ctx: PickContext): UpstreamHost | undefined {
    let best: UpstreamHost | undefined;
    let ties: UpstreamHost[] = [];
    for (const h of this.hosts) {
      if (!ctx.eligible(h)) continue;
      const cmp = best === undefined ? -1 : lessLoaded(h, best);
      if (cmp < 0) {
        best = h;
        ties = [h];
      } else if (cmp === 0) {
        ties.push(h);
      }
    }
    if (ties.length <= 1) return best;
    // nginx breaks least_conn ties with weighted round robin among the tied peers.
    const tied = new Set(ties);
    return this.rr.pickAmong(ties, (h) => tied.has(h));
  }
}

const VARIABLE = /\$(?:\{(\w+)\}|(\w+))/g;

/** Compiles a hash key template such as `$remote_addr:$server_port`; unknown variables expand to "". */
export function compileKey(template: string): (vars: Readonly<Record<string, string>>) => string {
  if (!template.includes('$')) return () => template;
  return (vars) =>
    template.replace(VARIABLE, (_m, braced: string | undefined, bare: string) => vars[braced ?? bare] ?? '');
}

/** nginx tries 20 rehashes before giving up on the hash and falling back to round robin. */
const HASH_TRIES = 20;

export class Hash implements Selector {
  private readonly key: (vars: Readonly<Record<string, string>>) => string;
  private readonly totalWeight: number;
  private readonly rr: RoundRobin;

  constructor(
    private readonly hosts: readonly UpstreamHost[],
    key: string,
  ) {
    this.key = compileKey(key);
    this.totalWeight = hosts.reduce((sum, h) => sum + h.weight, 0);
    this.rr = new RoundRobin(hosts);
  }

  pick(ctx: PickContext): UpstreamHost | undefined {
    if (this.totalWeight === 0) return undefined;
    const key = this.key(ctx.vars);
    for (let attempt = 0; attempt < HASH_TRIES; attempt++) {
      // Attempt 0 depends on the key alone, so a key maps to the same server as long as it is usable.
      const h = attempt === 0 ? crc32(key) : crc32(`${attempt}${key}`);
      let w = h % this.totalWeight;
      for (const host of this.hosts) {
        w -= host.weight;
        if (w < 0) {
          if (ctx.eligible(host)) return host;
          break;
        }
      }
    }
    return this.rr.pick(ctx);
  }
}

/** Ketama-style ring: each weight unit places 160 points, so removing one of N servers remaps about 1/N of keys. */
export class ConsistentHash implements Selector {
  static readonly POINTS_PER_WEIGHT = 160;
  private readonly points: Uint32Array;
  private readonly owners: UpstreamHost[];
  private readonly key: (vars: Readonly<Record<string, string>>) => string;

  constructor(hosts: readonly UpstreamHost[], key: string) {
    this.key = compileKey(key);
    const ring: { point: number; host: UpstreamHost }[] = [];
    for (const host of hosts) {
      const count = ConsistentHash.POINTS_PER_WEIGHT * host.weight;
      // Points come from the server's address, not its position, so removing
      // one server leaves every other server's points where they were.
      for (let i = 0; i < count; i += 4) {
        const digest = createHash('md5')
          .update(`${host.address.text}-${i / 4}`)
          .digest();
        for (let j = 0; j < 4 && i + j < count; j++) ring.push({ point: digest.readUInt32LE(j * 4), host });
      }
    }
    ring.sort((a, b) => a.point - b.point);
    this.points = Uint32Array.from(ring.map((r) => r.point));
    this.owners = ring.map((r) => r.host);
  }

  pick(ctx: PickContext): UpstreamHost | undefined {
    const n = this.points.length;
    if (n === 0) return undefined;
    const h = crc32(this.key(ctx.vars));
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.points[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    // Walk clockwise past unusable servers; each distinct server is checked once.
    const seen = new Set<UpstreamHost>();
    for (let k = 0; k < n; k++) {
      const host = this.owners[(lo + k) % n]!;
      if (seen.has(host)) continue;
      seen.add(host);
      if (ctx.eligible(host)) return host;
    }
    return undefined;
  }
}

export class Random implements Selector {
  constructor(
    private readonly hosts: readonly UpstreamHost[],
    private readonly two: boolean,
    private readonly random: () => number = Math.random,
  ) {}

  private weighted(candidates: readonly UpstreamHost[], total: number): UpstreamHost {
    let r = this.random() * total;
    for (const h of candidates) {
      r -= h.weight;
      if (r < 0) return h;
    }
    return candidates[candidates.length - 1]!;
  }

  pick(ctx: PickContext): UpstreamHost | undefined {
    const candidates = this.hosts.filter(ctx.eligible);
    if (candidates.length <= 1) return candidates[0];
    const total = candidates.reduce((sum, h) => sum + h.weight, 0);
    const first = this.weighted(candidates, total);
    if (!this.two) return first;
    let second = first;
    // Two distinct weighted draws; bounded like nginx's 20 tries.
    for (let i = 0; i < 20 && second === first; i++) second = this.weighted(candidates, total);
    if (second === first) return first;
    return lessLoaded(second, first) < 0 ? second : first;
  }
}

export function createSelector(balancing: Balancing, hosts: readonly UpstreamHost[]): Selector {
  switch (balancing.kind) {
    case 'round_robin':
      return new RoundRobin(hosts);
    case 'least_conn':
      return new LeastConn(hosts);
    case 'hash':
      return balancing.consistent ? new ConsistentHash(hosts, balancing.key) : new Hash(hosts, balancing.key);
    case 'random':
      return new Random(hosts, balancing.two);
  }
}
