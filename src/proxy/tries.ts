/**
 * The attempts of one stream session or one HTTP exchange (Upgrade requests
 * included) at an upstream group, as nginx's `ngx_event_connect_peer` loop:
 * server choice skipping the servers already tried, the tries and time
 * budget of `proxy_next_upstream_tries` / `proxy_next_upstream_timeout`
 * (checked when a try has failed, never cutting one in progress), the
 * connect timer, passive health (max_fails/fail_timeout) and the slot each
 * attempt holds on its server (max_conns, least_conn).
 *
 * Which failures may go to the next server is the caller's rule (stream:
 * `proxy_next_upstream on|off`; HTTP: the conditions, idempotence, the
 * replay buffer); the caller asks `left` once it has decided a failure
 * qualifies. The HTTP stale-connection retry is a free attempt on the same
 * server (`again`), as nginx gives back the try of a cached connection that
 * failed (`u->peer.tries++` in ngx_http_upstream_next): it is logged as an
 * attempt but not counted against proxy_next_upstream_tries.
 */
import type { UpstreamHost } from '../upstream/hosts.js';
import { NO_VARS, type Upstream } from '../upstream/index.js';
import { now } from './clock.js';
import { Deadline } from './deadline.js';

const NONE: ReadonlySet<UpstreamHost> = new Set();

function connectTimedOut(this: Tries): void {
  const onTimeout = this.onConnectTimeout;
  this.onConnectTimeout = undefined;
  onTimeout?.();
}

/** Who makes the attempts: the request variables a `hash` key reads, asked for only by a group that hashes. */
export interface VarsSource {
  vars(): Readonly<Record<string, string>>;
}

export class Tries {
  /** Attempts made, the free ones included (what the log's `tries` says). */
  attempts = 0;
  /** Tries counted against proxy_next_upstream_tries. */
  private counted = 0;
  /** The server of the current (or last) attempt. */
  host: UpstreamHost | undefined;
  /** The server whose slot (active count) the current attempt holds. */
  private held: UpstreamHost | undefined;
  /** Servers tried, made only when a second attempt needs to skip them (the first is `host`). */
  private tried: Set<UpstreamHost> | undefined;
  /** proxy_connect_timeout of the current attempt, made at the first connect (a reused connection needs none). */
  private connectDeadline: Deadline<Tries> | undefined;
  /** @internal */ onConnectTimeout: (() => void) | undefined;

  /**
   * @param maxTries proxy_next_upstream_tries (0: no limit)
   * @param timeoutMs proxy_next_upstream_timeout (0: no limit)
   */
  constructor(
    private readonly upstream: Upstream,
    private readonly maxTries: number,
    private readonly timeoutMs: number,
    readonly startedAt: number,
    private readonly clock: () => number = now,
  ) {}

  /**
   * Picks a server not tried yet and starts an attempt on it (counted,
   * holding a slot). Undefined: no live server left (the group is down, full,
   * or every server was tried).
   */
  next(source: VarsSource): UpstreamHost | undefined {
    const skip = this.attempts === 0 ? NONE : this.triedSet();
    // Only a `hash` group reads variables: the others get none made (an
    // object per attempt, stored into the group's pick context).
    const upstream = this.upstream;
    const host = upstream.pick(upstream.keyed ? source.vars() : NO_VARS, skip, this.clock());
    if (host === undefined) return undefined;
    if (this.attempts > 0) this.triedSet().add(host);
    this.counted++;
    this.begin(host);
    return host;
  }

  /** A free attempt on the current server (the stale keep-alive connection retry). */
  again(): UpstreamHost {
    const host = this.host!;
    this.begin(host);
    return host;
  }

  private begin(host: UpstreamHost): void {
    this.attempts++;
    this.host = host;
    this.held = host;
    host.acquire();
  }

  private triedSet(): Set<UpstreamHost> {
    if (this.tried === undefined) this.tried = new Set(this.host ? [this.host] : []);
    return this.tried;
  }

  /** proxy_next_upstream_tries and proxy_next_upstream_timeout allow another try. */
  get left(): boolean {
    return (this.maxTries === 0 || this.counted < this.maxTries) && !this.timeSpent;
  }

  /** proxy_next_upstream_timeout has passed since the first try. */
  get timeSpent(): boolean {
    return this.timeoutMs > 0 && this.clock() - this.startedAt >= this.timeoutMs;
  }

  /**
   * proxy_connect_timeout for the current attempt: `onTimeout` runs if the
   * connection is not made in `ms`. One timer at a time.
   */
  armConnect(ms: number, onTimeout: () => void): void {
    this.onConnectTimeout = onTimeout;
    // The proxy's one timer idiom (deadline.ts): no Node Timeout per attempt.
    this.connectDeadline ??= new Deadline<Tries>(this, connectTimedOut, 0, false, this.clock);
    this.connectDeadline.arm(ms);
  }

  /** The connection is made (or the attempt is over): no connect timeout. */
  stopConnect(): void {
    this.connectDeadline?.cancel();
    this.onConnectTimeout = undefined;
  }

  /** The current server failed (max_fails within fail_timeout marks it unavailable). */
  failed(): void {
    this.host?.health.failure(this.clock());
  }

  /** The current server answered: its failure count starts again. */
  succeeded(): void {
    this.host?.health.success();
  }

  /** The current attempt gives its slot back (at most once). */
  release(): void {
    const held = this.held;
    if (held !== undefined) {
      this.held = undefined;
      held.release();
    }
  }

  /** The slot leaves with the connection (an Upgrade tunnel keeps it); the caller releases it. */
  handOver(): UpstreamHost | undefined {
    const held = this.held;
    this.held = undefined;
    return held;
  }
}
