/**
 * Middleboxes that forget idle TCP connections, with the idle timeout and
 * what happens at expiry (DESIGN §6). `--lb NAME` picks one; `--lb NAME=T`
 * overrides its timeout where the product lets operators change it;
 * `--lb-idle T` describes anything else.
 */
import type { Box } from '../config/hazards.js';
import { parseDuration } from '../units/time.js';
import { human } from './findings.js';

/**
 * rst: the box (or the peer it reaches untranslated) answers the next packet
 * with a reset; drop: the next packet vanishes and the sender retransmits
 * until its own timeout; close: an L7 proxy closes its connections;
 * http-error: an L7 proxy answers the client with an error status.
 */
export type Expiry = 'rst' | 'drop' | 'close' | 'http-error';

export interface Middlebox {
  name: string;
  idleSeconds: number;
  expiry: Expiry;
  /**
   * An L7 proxy that keeps idle connections to its backends for reuse: the
   * backend's HTTP keep-alive timeout must outlast this box's idle timeout,
   * or the box reuses a connection the backend is closing (502).
   */
  pools: boolean;
  /** What the timeout is and where the number comes from. */
  note: string;
  /** The vendor page the number comes from (docs/load-balancers.md cites each). */
  source?: string;
  /** False when the number could not be checked against that page (said in docs/load-balancers.md). */
  verified?: boolean;
  /** The status an `http-error` box answers with (Cloudflare 524, nginx/Envoy 504). */
  status?: number;
}

export const PROFILES: Readonly<Record<string, Middlebox>> = {
  lvs: {
    name: 'lvs',
    idleSeconds: 900,
    expiry: 'rst',
    pools: false,
    note: 'LVS/IPVS tcp timeout 900 s by default (ipvsadm --set tcp tcpfin udp = 900 120 300); the classic incident ran 90 s (use --lb lvs=90s); at expiry the entry is removed and the next client packet reaches the director itself and gets a RST',
    source: 'https://github.com/torvalds/linux/blob/master/net/netfilter/ipvs/ip_vs_proto_tcp.c',
    verified: true,
  },
  f5: {
    name: 'f5',
    idleSeconds: 300,
    expiry: 'rst',
    pools: false,
    note: 'F5 BIG-IP fastL4/TCP profile idle timeout 300 s; reset-on-timeout (on by default) sends a RST to both peers',
    source: 'https://my.f5.com/manage/s/article/K7166',
    verified: false,
  },
  'aws-alb': {
    name: 'aws-alb',
    idleSeconds: 60,
    expiry: 'close',
    pools: true,
    note: 'AWS Application Load Balancer idle timeout 60 s by default, for client and target connections; it pools backend connections, so the backend keep-alive timeout must exceed it or 502s follow (AWS says so on the page)',
    source:
      'https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-load-balancer-attributes.html#connection-idle-timeout',
    verified: true,
  },
  'aws-nlb': {
    name: 'aws-nlb',
    idleSeconds: 350,
    expiry: 'rst',
    pools: false,
    note: 'AWS Network Load Balancer TCP idle timeout 350 s (configurable 60-6000 s per TCP listener since 2024; TLS listeners fixed at 350 s); the flow is removed silently and data sent after it gets a RST',
    source: 'https://docs.aws.amazon.com/elasticloadbalancing/latest/network/update-idle-timeout.html',
    verified: true,
  },
  'azure-lb': {
    name: 'azure-lb',
    idleSeconds: 240,
    expiry: 'drop',
    pools: false,
    note: 'Azure Load Balancer idle timeout 4 min (4-100 min); silent drop by default, EnableTcpReset sends a RST both ways',
    source: 'https://learn.microsoft.com/azure/load-balancer/load-balancer-tcp-idle-timeout',
    verified: true,
  },
  'gcp-firewall': {
    name: 'gcp-firewall',
    idleSeconds: 600,
    expiry: 'drop',
    pools: false,
    note: 'GCP VPC firewall connection tracking forgets established TCP flows idle for 10 min; later packets are dropped',
    source: 'https://cloud.google.com/firewall/docs/firewalls#specifications',
    verified: false,
  },
  'gcp-cloud-nat': {
    name: 'gcp-cloud-nat',
    idleSeconds: 1200,
    expiry: 'drop',
    pools: false,
    note: 'GCP Cloud NAT TCP established idle timeout 1200 s by default (tcpEstablishedIdleTimeoutSec, gcloud --tcp-established-idle-timeout); the mapping is removed and later packets do not reach the peer',
    source:
      'https://pub.dev/documentation/google_cloud_compute_v1/latest/compute/RouterNat/tcpEstablishedIdleTimeoutSec.html',
    verified: true,
  },
  'gcp-alb': {
    name: 'gcp-alb',
    idleSeconds: 600,
    expiry: 'close',
    pools: true,
    note: 'GCP global external Application Load Balancer (GFE): backend keep-alive timeout 600 s, fixed (client side 610 s by default); backends need a keep-alive timeout above 600 s or 502s follow',
    source: 'https://cloud.google.com/load-balancing/docs/https/request-distribution',
    verified: true,
  },
  cloudflare: {
    name: 'cloudflare',
    idleSeconds: 100,
    expiry: 'http-error',
    pools: false,
    note: 'Cloudflare Proxy Read Timeout 100 s by default (Enterprise zones up to 6000 s): an origin that sends no HTTP response for longer gets the client an HTTP 524',
    source:
      'https://developers.cloudflare.com/support/troubleshooting/http-status-codes/cloudflare-5xx-errors/error-524/',
    verified: true,
  },
  'linux-conntrack': {
    name: 'linux-conntrack',
    idleSeconds: 432_000,
    expiry: 'drop',
    pools: false,
    note: 'Linux conntrack nf_conntrack_tcp_timeout_established default 432000 s (5 days); NAT and "ct state" rules stop matching the forgotten flow',
    source: 'https://docs.kernel.org/networking/nf_conntrack-sysctl.html',
    verified: true,
  },
  'aws-nat-gateway': {
    name: 'aws-nat-gateway',
    idleSeconds: 350,
    expiry: 'rst',
    pools: false,
    note: 'AWS NAT gateway: a connection idle for 350 s or more times out (not configurable); the NAT gateway then answers the resources behind it that continue the connection with a RST, not a FIN (IdleTimeoutCount metric)',
    source: 'https://docs.aws.amazon.com/vpc/latest/userguide/nat-gateway-troubleshooting.html',
    verified: true,
  },
  'aws-network-firewall': {
    name: 'aws-network-firewall',
    idleSeconds: 350,
    expiry: 'drop',
    pools: false,
    note: 'AWS Network Firewall flow table: TcpIdleTimeoutSeconds 350 s by default (60-6000 s); after it data packets are dropped, a new SYN is a new flow; TCP keepalive resets the timer',
    source: 'https://docs.aws.amazon.com/network-firewall/latest/APIReference/API_FlowTimeouts.html',
    verified: true,
  },
  'aws-gwlb': {
    name: 'aws-gwlb',
    idleSeconds: 350,
    expiry: 'drop',
    pools: false,
    note: 'AWS Gateway Load Balancer listener tcp.idle_timeout.seconds 350 s by default (60-6000 s); send_tcp_reset.on_idle_timeout.enabled (default false) turns the silent drop into a RST to the sender',
    source: 'https://docs.aws.amazon.com/elasticloadbalancing/latest/gateway/gateway-listeners.html',
    verified: true,
  },
  'kube-proxy-ipvs': {
    name: 'kube-proxy-ipvs',
    idleSeconds: 900,
    expiry: 'rst',
    pools: false,
    note: 'kube-proxy in IPVS mode: the kernel IPVS tcp timeout 900 s (kube-proxy ipvs.tcpTimeout 0 leaves the kernel value); an expired entry is gone and the next packet reaches the node itself, which resets it',
    source: 'https://github.com/torvalds/linux/blob/master/net/netfilter/ipvs/ip_vs_proto_tcp.c',
    verified: true,
  },
  'kube-proxy-iptables': {
    name: 'kube-proxy-iptables',
    idleSeconds: 86_400,
    expiry: 'drop',
    pools: false,
    note: 'kube-proxy in iptables/nftables mode: Service DNAT lives in conntrack, and kube-proxy sets nf_conntrack_tcp_timeout_established to conntrack.tcpEstablishedTimeout, 24h0m0s (86400 s) by default, down from the kernel 432000 s; a forgotten flow no longer matches the DNAT',
    source: 'https://kubernetes.io/docs/reference/config-api/kube-proxy-config.v1alpha1/',
    verified: true,
  },
  'azure-redis': {
    name: 'azure-redis',
    idleSeconds: 600,
    expiry: 'close',
    pools: false,
    note: 'Azure Cache for Redis has a 10-minute (600 s) timeout for idle connections, at the server: it counts commands, so TCP keepalive does not help; send a heartbeat (PING, node-redis pingInterval) more often',
    source: 'https://learn.microsoft.com/azure/azure-cache-for-redis/cache-best-practices-connection',
    verified: true,
  },
  'azure-firewall': {
    name: 'azure-firewall',
    idleSeconds: 240,
    expiry: 'rst',
    pools: false,
    note: 'Azure Firewall, north-south (to and from the Internet): TCP idle timeout 4 min (240 s), up to 15 min by a support request; at the timeout it sends a RST to both source and destination (east-west: azure-firewall-east-west)',
    source: 'https://learn.microsoft.com/azure/firewall/tcp-session-behavior',
    verified: true,
  },
  'azure-firewall-east-west': {
    name: 'azure-firewall-east-west',
    idleSeconds: 300,
    expiry: 'drop',
    pools: false,
    note: 'Azure Firewall, east-west (between Azure resources, VNet peering, VPN, ExpressRoute): TCP idle timeout 5 min (300 s), not configurable; no RST at the timeout, so the flow vanishes silently',
    source: 'https://learn.microsoft.com/azure/firewall/tcp-session-behavior',
    verified: true,
  },
  'gcp-ilb': {
    name: 'gcp-ilb',
    idleSeconds: 600,
    expiry: 'drop',
    pools: false,
    note: 'GCP internal passthrough Network Load Balancer connection tracking: an entry is kept 10 min (600 s) without matching traffic by default, up to 16 h (backend service connectionTrackingPolicy.idleTimeoutSec); what a packet of an expired entry meets is not documented there (drop assumed)',
    source:
      'https://pub.dev/documentation/googleapis/latest/compute_v1/BackendServiceConnectionTrackingPolicy/idleTimeoutSec.html',
    verified: true,
  },
  'oci-lb': {
    name: 'oci-lb',
    idleSeconds: 300,
    expiry: 'close',
    pools: true,
    note: 'OCI Load Balancer closes backend connections idle for more than 300 s and asks backends not to close in less than 310 s (else 502); client keep-alive 65 s; listener idle timeout configurable',
    source: 'https://docs.oracle.com/iaas/Content/Balance/Reference/connectionreuse.htm',
    verified: true,
  },
  'haproxy-default': {
    name: 'haproxy-default',
    idleSeconds: 50,
    expiry: 'http-error',
    status: 504,
    pools: false,
    note: "HAProxy with Debian's shipped /etc/haproxy/haproxy.cfg: timeout client 50000 / timeout server 50000 (50 s); a response slower than timeout server gets a 504 (HAProxy itself has no default: without them it warns and never times out)",
    source: 'https://docs.haproxy.org/2.8/configuration.html#4-timeout%20server',
    verified: true,
  },
  'nginx-default': {
    name: 'nginx-default',
    idleSeconds: 60,
    expiry: 'http-error',
    status: 504,
    pools: false,
    note: 'nginx as a proxy with its defaults: proxy_read_timeout 60 s (a slower response gets a 504), keepalive_timeout 75 s toward clients; it pools upstream connections only with `keepalive` in the upstream block',
    source: 'https://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_read_timeout',
    verified: true,
  },
  'envoy-default': {
    name: 'envoy-default',
    idleSeconds: 300,
    expiry: 'http-error',
    status: 504,
    pools: true,
    note: 'Envoy with its defaults: HCM stream_idle_timeout 5 min (300 s); connection idle_timeout 1 h both ways, so it keeps pooled upstream connections up to 1 h: a backend closing idle connections sooner races it (503 UC); the route timeout (15 s) ends a slow response first',
    source: 'https://www.envoyproxy.io/docs/envoy/latest/faq/configuration/timeouts',
    verified: true,
  },
};

/** `--lb list`: every profile with its number and its source, as docs/load-balancers.md has them. */
export function profileList(): Middlebox[] {
  return Object.values(PROFILES);
}

export class ProfileError extends Error {
  override name = 'ProfileError';
}

/** Whole seconds from an nginx time value; refuses sub-second values, which no middlebox uses. */
export function parseSeconds(text: string, what: string): number {
  const parsed = parseDuration(text.trim());
  if (!parsed.ok) throw new ProfileError(`${what}: ${parsed.error.message}`);
  if (parsed.value <= 0 || parsed.value % 1000 !== 0) {
    throw new ProfileError(`${what}: "${text}" must be a positive whole number of seconds`);
  }
  return parsed.value / 1000;
}

/** `aws-nlb` or `aws-nlb=600s`. */
export function middleboxFromArg(arg: string): Middlebox {
  const eq = arg.indexOf('=');
  const name = (eq === -1 ? arg : arg.slice(0, eq)).trim();
  const profile = PROFILES[name];
  if (!profile) {
    throw new ProfileError(
      `unknown load balancer profile "${name}"; known: ${Object.keys(PROFILES).join(', ')}`,
    );
  }
  if (eq === -1) return profile;
  return { ...profile, idleSeconds: parseSeconds(arg.slice(eq + 1), `--lb ${name}`) };
}

export function customMiddlebox(idleSeconds: number): Middlebox {
  return {
    name: 'lb',
    idleSeconds,
    expiry: 'rst',
    pools: false,
    note: `idle timeout ${idleSeconds} s given with --lb-idle; expiry assumed to reset`,
  };
}

/**
 * An L4 box (reset or drop at expiry) forgets a flow by packets, so TCP
 * keepalive probes keep it; an L7 proxy's idle timeout counts data, so they do
 * not (for it, the fix is the backend's HTTP keep-alive timeout above its idle).
 */
export function isL4(box: Middlebox): boolean {
  return box.expiry === 'rst' || box.expiry === 'drop';
}

/** The middlebox that forgets idle connections first: every keepalive must beat it. */
export function tightest(boxes: readonly Middlebox[]): Middlebox | undefined {
  let best: Middlebox | undefined;
  for (const box of boxes) if (!best || box.idleSeconds < best.idleSeconds) best = box;
  return best;
}

/** The failure an expired idle connection turns into, for `why` sentences. */
export function expiryFailure(box: Middlebox): string {
  switch (box.expiry) {
    case 'rst':
      return `${box.name} answers the next packet with a reset (ECONNRESET)`;
    case 'drop':
      return `${box.name} silently drops the next packets, so the sender hangs until its own timeout`;
    case 'close':
      return `${box.name} closes the connection`;
    case 'http-error':
      return `${box.name} gives the client an HTTP ${box.status ?? 524}`;
  }
}

/** A middlebox as the hazard rules of config/hazards.ts take it. */
export function hazardBox(m: Middlebox): Box {
  return {
    label: `${m.name}'s idle timeout ${human(m.idleSeconds)}`,
    idleMs: m.idleSeconds * 1000,
    l4: isL4(m),
    pools: m.pools,
    failure: expiryFailure(m),
    name: m.name,
  };
}
