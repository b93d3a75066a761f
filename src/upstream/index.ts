/**
 * An upstream group at run time: its hosts, and the policy that picks one
 * for each new connection. Backup servers are a second tier, consulted only
 * when no primary can take the connection; `down` servers are never picked.
 */
import { UPSTREAM_SERVER_DEFAULTS } from '../config/directives.js';
import type { Address, ProxyTarget, SourceRef, UpstreamGroup, UpstreamServer } from '../config/model.js';
import { UpstreamHost } from './hosts.js';
import { createSelector, type Selector } from './selection.js';

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

export class Upstream {
  readonly name: string;
  readonly hosts: readonly UpstreamHost[];
  private readonly primary: Selector;
  private readonly backup: Selector;

  constructor(group: UpstreamGroup) {
    this.name = group.name;
    this.hosts = group.servers.map((s) => new UpstreamHost(s));
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
    tried: ReadonlySet<UpstreamHost> = new Set(),
    nowMs: number = Date.now(),
  ): UpstreamHost | undefined {
    const eligible = (h: UpstreamHost) => !tried.has(h) && h.usable(nowMs);
    return this.primary.pick({ vars, eligible }) ?? this.backup.pick({ vars, eligible });
  }

  /** Number of distinct servers a session could try: what `proxy_next_upstream_tries 0` means. */
  get size(): number {
    return this.hosts.length;
  }
}

/**
 * `proxy_pass ADDRESS` is an implicit group of one server with nginx's
 * defaults (weight 1, max_fails 1, fail_timeout 10s).
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
