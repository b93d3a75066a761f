/**
 * The incident's network: client → load balancer (VIP) → backend, where the
 * load balancer is the kernel's NAT with an LVS-like idle timer.
 *
 * How the timer works (verified on this kernel, DESIGN.md §5): conntrack's
 * established timeout in the lb namespace is the LB idle timeout, and with
 * nf_conntrack_tcp_loose=0 a packet of a forgotten session is not picked up
 * as a new flow. It is then not translated: the client's packet to the VIP
 * reaches the lb's own stack and is answered with a RST (`rst` expiry, like
 * LVS and AWS NLB); the backend's packet goes to the client untranslated and
 * is refused there. With `ct state invalid` dropped, the session vanishes
 * silently instead (`drop` expiry, like most firewalls and NATs).
 */
import { type Host, Topology } from './topology.js';

export type Expiry = 'rst' | 'drop';

/**
 * `l4`: the LB is the kernel's NAT (the VIP DNATed to the backend), which
 * forwards every segment, keepalive probes included. `l7`: no DNAT; the VIP
 * is only the lb's own address, where a proxy in the lb namespace (the lab's
 * nginx, lab/l7-lb.ts) terminates TCP and opens its own connection to the
 * backend, so only data crosses it.
 */
export type LbKind = 'l4' | 'l7';

export interface LbTopologyOptions {
  /** Seconds a session may stay idle before the LB forgets it. */
  lbIdleSeconds: number;
  expiry: Expiry;
  /** Default l4. */
  kind?: LbKind;
  /**
   * IPv6 beside the IPv4 (LB6_ADDRESSES on the same links): forwarding, routes,
   * the VIP DNATed by an ip6 table and, with `drop` expiry, `ct state invalid`
   * dropped as for IPv4. Conntrack's established timeout is one sysctl for
   * both families, so the LB idle timer is the same.
   */
  ipv6?: boolean;
}

export interface LbTopology {
  topology: Topology;
  client: Host;
  lb: Host;
  backend: Host;
  /** The address clients connect to; DNATed to the backend on every port. */
  vip: string;
  /** The IPv6 VIP (LB6_ADDRESSES.vip) when created with `ipv6`, else undefined. */
  vip6?: string;
  lbIdleSeconds: number;
  expiry: Expiry;
  kind: LbKind;
  /** Changes the LB's idle timer; applies to sessions as their next packet passes. */
  setLbIdle(seconds: number): Promise<void>;
  destroy(): Promise<void>;
}

/**
 * Addresses come from 198.18.0.0/15 (RFC 2544, for benchmarking networks):
 * they exist only inside these namespaces and never leave the machine.
 */
export const LB_ADDRESSES = {
  client: '198.18.1.2',
  lbClientSide: '198.18.1.1',
  lbBackendSide: '198.18.2.1',
  backend: '198.18.2.2',
  vip: '198.18.0.100',
} as const;

/**
 * The same shape over IPv6, from 2001:2::/48 (RFC 5180, for benchmarking,
 * never routed), on the same veths.
 */
export const LB6_ADDRESSES = {
  client: '2001:2:0:1::2',
  lbClientSide: '2001:2:0:1::1',
  lbBackendSide: '2001:2:0:2::1',
  backend: '2001:2:0:2::2',
  vip: '2001:2::100',
} as const;

/**
 * The LB's nftables ruleset for one family: the VIP DNATed to the backend
 * and, with `drop` expiry, `ct state invalid` dropped on input and forward so
 * a forgotten session vanishes silently instead of meeting the lb's RST.
 */
function lbRuleset(
  family: 'ip' | 'ip6',
  addresses: { vip: string; backend: string },
  expiry: Expiry,
  kind: LbKind = 'l4',
): string {
  const table = family === 'ip' ? 'keepwire_lb' : 'keepwire_lb6';
  // The nat chain stays under l7 (empty): it pulls in conntrack, whose
  // table the lab's observer reads either way.
  return `
table ${family} ${table} {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    ${kind === 'l4' ? `${family} daddr ${addresses.vip} dnat to ${addresses.backend}` : ''}
  }
}
${
  expiry === 'drop'
    ? `table ${family} ${table}_drop {
  chain input {
    type filter hook input priority filter; policy accept;
    ct state invalid drop
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    ct state invalid drop
  }
}`
    : ''
}`;
}

/**
 * Adds `cidr` (IPv6) to `dev` of `host` without duplicate address detection,
 * so it is usable at once.
 */
async function addAddress6(host: Host, dev: string, cidr: string): Promise<void> {
  await host.exec('ip', ['-6', 'addr', 'add', cidr, 'dev', dev, 'nodad']);
}

/**
 * Waits until no IPv6 address of `hosts` is tentative: the link-local
 * addresses (neighbour discovery's source) do their own DAD, about a second.
 */
async function ipv6Settled(hosts: Host[]): Promise<void> {
  const deadline = Date.now() + 5000;
  for (const host of hosts) {
    while ((await host.exec('ip', ['-6', 'addr', 'show', 'tentative'])).stdout.trim() !== '') {
      if (Date.now() > deadline) throw new Error(`${host.name}: IPv6 addresses still tentative after 5 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export async function createLbTopology(opts: LbTopologyOptions): Promise<LbTopology> {
  if (!Number.isInteger(opts.lbIdleSeconds) || opts.lbIdleSeconds < 1) {
    throw new RangeError(`lbIdleSeconds must be a whole number >= 1, got ${opts.lbIdleSeconds}`);
  }
  const topology = new Topology();
  try {
    const a = LB_ADDRESSES;
    const client = await topology.addHost('client');
    const lb = await topology.addHost('lb');
    const backend = await topology.addHost('backend');
    await topology.link(
      { host: client, dev: 'eth0', cidr: `${a.client}/24` },
      { host: lb, dev: 'toclient', cidr: `${a.lbClientSide}/24` },
    );
    await topology.link(
      { host: lb, dev: 'tobackend', cidr: `${a.lbBackendSide}/24` },
      { host: backend, dev: 'eth0', cidr: `${a.backend}/24` },
    );
    lb.address = a.vip;
    await client.exec('ip', ['route', 'add', 'default', 'via', a.lbClientSide]);
    await backend.exec('ip', ['route', 'add', 'default', 'via', a.lbBackendSide]);
    // The VIP is the lb's own address, so forgotten sessions reach its stack (and its RST).
    await lb.exec('ip', ['addr', 'add', `${a.vip}/32`, 'dev', 'lo']);
    await lb.sysctl('net.ipv4.ip_forward', 1);
    if (opts.ipv6) {
      const a6 = LB6_ADDRESSES;
      await addAddress6(client, 'eth0', `${a6.client}/64`);
      await addAddress6(lb, 'toclient', `${a6.lbClientSide}/64`);
      await addAddress6(lb, 'tobackend', `${a6.lbBackendSide}/64`);
      await addAddress6(backend, 'eth0', `${a6.backend}/64`);
      await lb.exec('ip', ['-6', 'addr', 'add', `${a6.vip}/128`, 'dev', 'lo']);
      await lb.sysctl('net.ipv6.conf.all.forwarding', 1);
      await client.exec('ip', ['-6', 'route', 'add', 'default', 'via', a6.lbClientSide]);
      await backend.exec('ip', ['-6', 'route', 'add', 'default', 'via', a6.lbBackendSide]);
    }
    await lb.nft(
      lbRuleset('ip', a, opts.expiry, opts.kind) +
        (opts.ipv6 ? lbRuleset('ip6', LB6_ADDRESSES, opts.expiry, opts.kind) : ''),
    );
    // The conntrack sysctls exist once the nat table has pulled in conntrack.
    await lb.sysctl('net.netfilter.nf_conntrack_tcp_loose', 0);
    await lb.sysctl('net.netfilter.nf_conntrack_tcp_timeout_established', opts.lbIdleSeconds);
    if (opts.ipv6) await ipv6Settled([client, lb, backend]);
    const result: LbTopology = {
      topology,
      client,
      lb,
      backend,
      vip: a.vip,
      ...(opts.ipv6 ? { vip6: LB6_ADDRESSES.vip } : {}),
      lbIdleSeconds: opts.lbIdleSeconds,
      expiry: opts.expiry,
      kind: opts.kind ?? 'l4',
      setLbIdle: async (seconds) => {
        await lb.sysctl('net.netfilter.nf_conntrack_tcp_timeout_established', seconds);
        result.lbIdleSeconds = seconds;
      },
      destroy: () => topology.destroy(),
    };
    return result;
  } catch (error) {
    await topology.destroy();
    throw error;
  }
}

export interface PairTopology {
  topology: Topology;
  a: Host;
  b: Host;
  destroy(): Promise<void>;
}

/** The IPv6 addresses of a pair topology created with `ipv6`. */
export const PAIR6_ADDRESSES = { a: '2001:2:0:1::1', b: '2001:2:0:1::2' } as const;

/**
 * Two hosts on one link: 198.18.1.1 (a) and 198.18.1.2 (b); with `ipv6`
 * also PAIR6_ADDRESSES (2001:2:0:1::1 and ::2).
 */
export async function createPairTopology(opts: { ipv6?: boolean } = {}): Promise<PairTopology> {
  const topology = new Topology();
  try {
    const a = await topology.addHost('a');
    const b = await topology.addHost('b');
    await topology.link(
      { host: a, dev: 'eth0', cidr: '198.18.1.1/24' },
      { host: b, dev: 'eth0', cidr: '198.18.1.2/24' },
    );
    if (opts.ipv6) {
      await addAddress6(a, 'eth0', `${PAIR6_ADDRESSES.a}/64`);
      await addAddress6(b, 'eth0', `${PAIR6_ADDRESSES.b}/64`);
      await ipv6Settled([a, b]);
    }
    return { topology, a, b, destroy: () => topology.destroy() };
  } catch (error) {
    await topology.destroy();
    throw error;
  }
}
