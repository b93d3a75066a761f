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

export interface LbTopologyOptions {
  /** Seconds a session may stay idle before the LB forgets it. */
  lbIdleSeconds: number;
  expiry: Expiry;
}

export interface LbTopology {
  topology: Topology;
  client: Host;
  lb: Host;
  backend: Host;
  /** The address clients connect to; DNATed to the backend on every port. */
  vip: string;
  lbIdleSeconds: number;
  expiry: Expiry;
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
    await lb.nft(`
table ip keepwire_lb {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr ${a.vip} dnat to ${a.backend}
  }
}
${
  opts.expiry === 'drop'
    ? `table ip keepwire_lb_drop {
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
}`);
    // The conntrack sysctls exist once the nat table has pulled in conntrack.
    await lb.sysctl('net.netfilter.nf_conntrack_tcp_loose', 0);
    await lb.sysctl('net.netfilter.nf_conntrack_tcp_timeout_established', opts.lbIdleSeconds);
    const result: LbTopology = {
      topology,
      client,
      lb,
      backend,
      vip: a.vip,
      lbIdleSeconds: opts.lbIdleSeconds,
      expiry: opts.expiry,
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

/** Two hosts on one link: 198.18.1.1 (a) and 198.18.1.2 (b). */
export async function createPairTopology(): Promise<PairTopology> {
  const topology = new Topology();
  try {
    const a = await topology.addHost('a');
    const b = await topology.addHost('b');
    await topology.link(
      { host: a, dev: 'eth0', cidr: '198.18.1.1/24' },
      { host: b, dev: 'eth0', cidr: '198.18.1.2/24' },
    );
    return { topology, a, b, destroy: () => topology.destroy() };
  } catch (error) {
    await topology.destroy();
    throw error;
  }
}
