/**
 * What every stream session has, whichever way its bytes move: on
 * net.Sockets (`StreamSession`, proxy/stream.ts: TLS either side, or where
 * this Node lacks the handle internals) or on bare TCP handles
 * (`HandleSession`, proxy/stream-handles.ts: plain TCP). The attempts at the
 * group, the idle deadline, the byte counters, the end reason and the one
 * session record are kept here so both paths log, count and drain alike.
 */
import type { Socket } from 'node:net';
import type { Listen } from '../config/model.js';
import { type ListenerStats, noteEvent } from '../metrics/stats.js';
import type { UpstreamHost } from '../upstream/hosts.js';
import { now } from './clock.js';
import { Deadline } from './deadline.js';
import type { SessionEndReason, SessionRecord, StreamProxy } from './stream.js';
import { Tries } from './tries.js';

export function endpoint(address: string | undefined, port: number | undefined): string {
  if (address === undefined) return '-';
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** What a session's client side tells of its addresses (a net.Socket, or a handle session's view, handle-view.ts). */
export interface ClientAddresses {
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
}

/**
 * `$remote_addr`, `$remote_port`, `$server_addr`, `$server_port` of a
 * client, each read when used (the `hash` key of a stream upstream), for
 * both session paths.
 */
export class ClientVars {
  // A #private field: `hash $c` must not find the client by name.
  readonly #c: ClientAddresses;
  constructor(c: ClientAddresses) {
    this.#c = c;
  }
  get remote_addr(): string {
    return this.#c.remoteAddress ?? '';
  }
  get remote_port(): string {
    return String(this.#c.remotePort ?? '');
  }
  get server_addr(): string {
    return this.#c.localAddress ?? '';
  }
  get server_port(): string {
    return String(this.#c.localPort ?? '');
  }
}

export abstract class SessionCore {
  /** The upstream that accepted the connection. */
  host: UpstreamHost | undefined;
  readonly startedAt: number;
  protected bytesFromClient = 0;
  protected bytesFromUpstream = 0;
  /** The session's attempts at the group (tries, time budget, connect timer, health, max_conns). */
  protected readonly tries: Tries;
  protected reason: SessionEndReason | undefined;
  protected detail: string | undefined;
  protected readonly idle: Deadline<SessionCore>;
  protected clientClosed = false;
  protected upstreamClosed = true;
  private finished = false;
  protected readonly now: () => number;

  /**
   * @param stats the listen's counters, looked up once per listen by the
   *   proxy (a Map lookup per session less)
   */
  constructor(
    protected readonly proxy: StreamProxy,
    protected readonly listen: Listen,
    private readonly stats: ListenerStats | undefined,
  ) {
    // The proxy's clock (clock.ts): one reading for all the questions of one held callback.
    this.now = proxy.deps.now ?? now;
    this.startedAt = this.now();
    const m = proxy.model;
    this.tries = new Tries(
      proxy.upstream,
      m.proxyNextUpstreamTries,
      m.proxyNextUpstreamTimeoutMs,
      this.startedAt,
      this.now,
    );
    // One deadline per session: the data path only moves it (see Deadline).
    this.idle = new Deadline<SessionCore>(this, this.expire, m.proxyTimeoutMs, false, this.now);
  }

  /** The client connection, as the status page reads a socket. */
  abstract readonly client: Socket;
  /** The upstream connection while one is open or connecting, as the status page reads a socket. */
  abstract readonly upstreamSocket: Socket | undefined;
  /** The client's address as the session line writes it. */
  protected abstract get clientText(): string;
  /** proxy_timeout passed with no byte either way. */
  protected abstract expire(): void;
  /** Ends the session now with a reset both ways (drain deadline passed). */
  abstract terminate(reason: SessionEndReason): void;

  get listenText(): string {
    return this.listen.address.text;
  }

  /** Time since the last byte either way (keepwire's clock; the status page prefers the kernel's). */
  get idleForMs(): number {
    const left = this.idle.left;
    const period = this.proxy.model.proxyTimeoutMs;
    return left === undefined ? 0 : Math.max(0, period - left);
  }

  /** `proxy_next_upstream on` (every connect failure qualifies), within the tries and time budget. */
  protected mayRetry(): boolean {
    return this.proxy.model.proxyNextUpstream && this.tries.left;
  }

  /** Once both sides are closed: the session's record, counters and line, and its slot given back. */
  protected maybeFinish(): void {
    if (this.finished || !this.clientClosed || !this.upstreamClosed) return;
    this.finished = true;
    this.idle.cancel();
    this.tries.stopConnect();
    const reason = this.reason ?? 'client_closed';
    const proxy = this.proxy;
    this.stats?.sessionEnded(reason);
    const clean = reason === 'client_closed' || reason === 'upstream_closed';
    // access_log off: no record at all for a clean end; a failure or a cut is still logged.
    if (clean && !proxy.model.accessLog) {
      proxy.ended(this);
      return;
    }
    const record: SessionRecord = {
      msg: 'session',
      listen: this.listen.address.text,
      client: this.clientText,
      upstream: this.host ? this.host.address.text : null,
      upstreamGroup: proxy.upstream.name,
      tries: this.tries.attempts,
      bytesFromClient: this.bytesFromClient,
      bytesFromUpstream: this.bytesFromUpstream,
      durationMs: this.now() - this.startedAt,
      idleTimeoutMs: proxy.model.proxyTimeoutMs,
      reason,
    };
    if (this.detail !== undefined) record.detail = this.detail;
    if (!clean)
      noteEvent(
        'session_end',
        record.listen,
        `${record.client}: ${record.reason}${record.detail ? ` (${record.detail})` : ''}`,
      );
    proxy.deps.log(record);
    proxy.ended(this);
  }
}
