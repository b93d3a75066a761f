/**
 * An upstream group at run time: its hosts, and the policy that picks one
 * for each new connection. Backup servers are a second tier, consulted only
 * when no primary can take the connection; `down` servers are never picked.
 */
import { UPSTREAM_SERVER_DEFAULTS } from '../config/directives.js';
import type { Address, ProxyTarget, SourceRef, UpstreamGroup, UpstreamServer } from '../config/model.js';
import { UpstreamHost } from './hosts.js';
import { createSelector, type PickContext, type Selector } from './selection.js';

export { PassiveHealth } from './health.js';
export { UpstreamHost } from './hosts.js';
export {
  ConsistentHash,
  compileKey,
  createSelector,
  Hash,
  LeastConn,
  type PickContext,
  Random,
  RoundRobin,
  type Selector,
} from './selection.js';

/** The variables of a pick whose balancer reads none. */
export const NO_VARS: Readonly<Record<string, string>> = {};
const NOT_TRIED: ReadonlySet<UpstreamHost> = new Set();

/** The PickContext of one pick: `eligible` reads the skip set and the time given to `Upstream.pick`. */
class Picking implements PickContext {
  vars = NO_VARS;
  tried = NOT_TRIED;
  nowMs = 0;
  readonly eligible = (h: UpstreamHost): boolean => !this.tried.has(h) && h.usable(this.nowMs);
}

export class Upstream {
  readonly name: string;
  readonly hosts: readonly UpstreamHost[];
  /** Its balancer reads request variables (`hash KEY`): picks need them made. */
  readonly keyed: boolean;
  private readonly primary: Selector;
  private readonly backup: Selector;
  private readonly picking = new Picking();

  constructor(group: UpstreamGroup) {
    this.name = group.name;
    this.keyed = group.balancing.kind === 'hash';
    // nginx's `peers->single`: one primary server and no backup (a backup
    // tier makes the group "several peers" again, so max_fails applies).
    const primaries = group.servers.filter((s) => !s.backup).length;
    const single = primaries === 1 && primaries === group.servers.length;
    this.hosts = group.servers.map((s) => new UpstreamHost(s, single));
    this.primary = createSelector(
      group.balancing,
      this.hosts.filter((h) => !h.backup),
    );
    this.backup = createSelector(
      group.balancing,
      this.hosts.filter((h) => h.backup),
    );
  }

  /**
   * Picks a host for a new connection, skipping hosts in `tried` (earlier
   * attempts of the same session). Undefined: no live upstream.
   */
  pick(
    vars: Readonly<Record<string, string>>,
    tried: ReadonlySet<UpstreamHost> = NOT_TRIED,
    nowMs: number = Date.now(),
  ): UpstreamHost | undefined {
    // One context per group, refilled per pick (picks never nest): no
    // closure or object is made per request.
    const ctx = this.picking;
    ctx.vars = vars;
    ctx.tried = tried;
    ctx.nowMs = nowMs;
    const host = this.primary.pick(ctx) ?? this.backup.pick(ctx);
    ctx.vars = NO_VARS;
    ctx.tried = NOT_TRIED;
    return host;
  }

  /** Number of distinct servers a session could try: what `proxy_next_upstream_tries 0` means. */
  get size(): number {
    return this.hosts.length;
  }
}

/**
 * `proxy_pass ADDRESS` is an implicit group of one server with nginx's
 * defaults (weight 1, max_fails 1, fail_timeout 10s); being a group of one,
 * its failures are never counted (see UpstreamHost), so it is never marked
 * unavailable.
 */
export function implicitGroup(address: Address, source: SourceRef): UpstreamGroup {
  const server: UpstreamServer = { address, ...UPSTREAM_SERVER_DEFAULTS, source };
  return { name: address.text, servers: [server], balancing: { kind: 'round_robin' }, source };
}

/** Resolves a proxy_pass target to a group definition; undefined when the named group does not exist. */
export function groupFor(
  target: ProxyTarget,
  groups: ReadonlyMap<string, UpstreamGroup>,
  source: SourceRef,
): UpstreamGroup | undefined {
  return target.kind === 'group' ? groups.get(target.name) : implicitGroup(target.address, source);
}

/**
 * The runtime groups of one configuration generation (one `stream {}` or
 * `http {}` block): each group is built once, on first use, and every server
 * and location that proxies to it shares that one Upstream, so its health,
 * least_conn counts and max_conns are the group's, as in nginx. A bare
 * `proxy_pass ADDRESS` is shared the same way by every user of that address
 * (nginx's implicit upstreams are looked up by host and port).
 */
export class Upstreams<G extends UpstreamGroup = UpstreamGroup> {
  private readonly built = new Map<string, { upstream: Upstream; group: UpstreamGroup }>();

  constructor(private readonly groups: ReadonlyMap<string, G>) {}

  /** The shared runtime group and its definition; undefined when the named group does not exist. */
  entry(
    target: ProxyTarget,
    source: SourceRef,
  ): { upstream: Upstream; group: G | UpstreamGroup } | undefined {
    const key = target.kind === 'group' ? `group:${target.name}` : `addr:${target.address.text}`;
    let entry = this.built.get(key);
    if (entry === undefined) {
      const group = groupFor(target, this.groups, source);
      if (group === undefined) return undefined;
      entry = { upstream: new Upstream(group), group };
      this.built.set(key, entry);
    }
    return entry;
  }

  /** The shared runtime group for a proxy_pass target. */
  for(target: ProxyTarget, source: SourceRef): Upstream | undefined {
    return this.entry(target, source)?.upstream;
  }

  /** Every group built so far, in first-use order. */
  all(): Upstream[] {
    return [...this.built.values()].map((e) => e.upstream);
  }
}
