/** What a lab scenario is: named variants, each with an expected outcome. */
import type { Expiry, LbKind, LbTopology, SocketAgent } from '../netns/index.js';
import type { HostName, TimelineEvent } from './timeline.js';

/**
 * What the client saw in the end:
 * - response: the answer arrived;
 * - reset: the connection was reset (ECONNRESET);
 * - timeout: the client gave up after its own timeout, nothing having arrived;
 * - keepalive-timeout: the kernel declared the peer dead (ETIMEDOUT from keepalive or TCP_USER_TIMEOUT);
 * - waiting: still waiting, silently, when the scenario's own limit ran out;
 * - gateway-error: a proxy on the way answered 502/503/504 instead;
 * - closed: a hop on the way closed the connection (FIN), as an L7 load
 *   balancer does at its idle timeout;
 * - error: anything else (a lab failure, shown with its detail).
 */
export type Outcome =
  | 'response'
  | 'reset'
  | 'timeout'
  | 'keepalive-timeout'
  | 'waiting'
  | 'gateway-error'
  | 'closed'
  | 'error';

export interface Observation {
  outcome: Outcome;
  detail: string;
  /** Seconds from the variant's start to the outcome, when it is a moment. */
  afterS?: number;
}

export interface LabContext {
  lb: LbTopology;
  lbIdleS: number;
  expiry: Expiry;
  /** `--lb`: the kernel's NAT (l4) or a terminating proxy in the lb namespace (l7). */
  lbKind: LbKind;
  /** Wall-clock ms when the variant started. */
  start: number;
  note(host: HostName, kind: string, what: string, at?: number): void;
  /** Sets a sysctl in a host's namespace unless the user's --sysctl set that key there; says whether it did. */
  sysctl(host: 'client' | 'lb' | 'backend', key: string, value: string | number): Promise<boolean>;
  /** A socket agent in one of the hosts; stopped with the topology. */
  agent(host: 'client' | 'lb' | 'backend'): Promise<SocketAgent>;
  sleep(ms: number): Promise<void>;
  /** Names the owner of the client namespace's LB-facing sockets in the timeline (default `client`). */
  clientSide(host: HostName): void;
  /** Runs at the end of the variant, success or not (temp files, processes outside the topology). */
  defer(cleanup: () => void | Promise<void>): void;
}

export interface Variant {
  scenario: string;
  name: string;
  /** One line: what is set up and why. */
  summary: string;
  expected(expiry: Expiry, lbKind: LbKind): Outcome;
  /** LB kinds the variant runs under (default l4 only: it relies on the NAT). */
  lbKinds?: LbKind[];
  /** External programs or optional packages the variant needs (checked before running). */
  needs?: ('nginx' | 'grpc-js' | 'openssl')[];
  run(ctx: LabContext): Promise<Observation>;
}

export interface VariantResult {
  scenario: string;
  variant: string;
  summary: string;
  expected: Outcome;
  observed: Outcome;
  detail: string;
  afterS?: number;
  ok: boolean;
  timeline: TimelineEvent[];
}

/** Maps a client-side error code (node or undici) to an outcome. */
export function outcomeOfError(code: string | undefined): Outcome {
  switch (code) {
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
      return 'reset';
    case 'ETIMEDOUT':
      return 'keepalive-timeout';
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'timeout';
    default:
      return 'error';
  }
}

/** An HTTP answer: a proxy's 502/503/504 is its way of saying the path failed. */
export function outcomeOfStatus(status: number | undefined): Outcome {
  return status === 502 || status === 503 || status === 504 ? 'gateway-error' : 'response';
}
