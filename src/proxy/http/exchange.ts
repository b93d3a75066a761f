/**
 * One proxied request: picks upstream servers, takes or opens connections,
 * streams the request body up and the response down with backpressure, and
 * decides what a failure becomes.
 *
 * Before any response byte has reached the client a failure can still be
 * hidden or reported cleanly:
 *   - a reused keep-alive connection that fails before any response byte is
 *     the stale-pool race (the upstream closed it as we wrote): the request
 *     is repeated once on a fresh connection to the same server if it is
 *     idempotent or nothing of it was sent, and its body can be replayed
 *     (up to client_body_buffer_size is kept; a larger body is streamed
 *     without a copy and never repeated: 502);
 *   - otherwise `proxy_next_upstream` decides whether the next server is
 *     tried, within proxy_next_upstream_tries and _timeout (checked when a
 *     try fails, as nginx); a non-idempotent request that may have reached
 *     an upstream is never repeated (unless `non_idempotent`): 502;
 *   - timeouts answer 504, other failures 502.
 * Once the response header went out, a failure aborts the client connection
 * without completing the response (no final chunk, or fewer bytes than
 * Content-Length), so a truncated response never looks complete.
 *
 * An Upgrade request (WebSocket) is one of these exchanges until its
 * upstream answers 101 (RFC 9110 §7.8): the same attempts, on a fresh
 * connection each (never a cached one), its body framed as any body. A
 * refusal is an ordinary response and the client connection goes on; on a
 * 101 both sockets go to an `UpgradeTunnel` (`streaming.ts`).
 */
import { Buffer } from 'node:buffer';
import { STATUS_CODES } from 'node:http';
import type { HttpLocation, NextUpstreamCondition } from '../../config/model.js';
import type { KeepaliveApplier } from '../../keepalive/applier.js';
import { type ListenerStats, noteEvent, type UpstreamStats } from '../../metrics/stats.js';
import type { UpstreamHost } from '../../upstream/hosts.js';
import type { Upstream } from '../../upstream/index.js';
import { now } from '../clock.js';
import { Deadline } from '../deadline.js';
import { owned } from '../reads.js';
import { Tries } from '../tries.js';
import type { ClientSide } from './client-side.js';
import { BodyKind, type ClientUser } from './connection.js';
import {
  balancerVars,
  clientResponseHead,
  headerLines,
  idempotent,
  type RequestContext,
  trailerFields,
  upstreamRequestHead,
} from './headers.js';
import type { ClientLimits } from './limits.js';
import {
  NOT_RETRIED_MAY_HAVE_REACHED,
  type RequestEndReason,
  type RequestRecord,
  upstreamFailureReason,
} from './log.js';
import { NO_TRAILERS, type ResponseHead } from './parser.js';
import type { ClientRequest, RequestError } from './request.js';
import { type TunnelOwner, UpgradeTunnel } from './streaming.js';
import type { ConnectionUser, GroupPool, UpstreamConnection } from './transport.js';

/** A location's upstream side, built once per configuration. */
export interface Route {
  upstream: Upstream;
  pool: GroupPool;
  /** proxy_http_version 1.1 and a keep-alive cache: connections may be reused. */
  reuse: boolean;
  conditions: ReadonlySet<NextUpstreamCondition>;
  /** The location's proxy_socket_keepalive, compiled when the generation was built. */
  keepalive: KeepaliveApplier;
  /** The group's counters (src/metrics/stats.ts). */
  stats: UpstreamStats;
}

/** What the exchange needs from the client leg. */
export interface ClientLeg extends TunnelOwner {
  log(record: RequestRecord): void;
  retry(
    exchange: ProxyExchange,
    host: UpstreamHost,
    kind: 'stale_connection' | 'next_upstream',
    detail: string,
  ): void;
  ended(item: ProxyExchange | UpgradeTunnel): void;
  /** An Upgrade request's upstream answered 101: the connection is this tunnel's now. */
  tunnelled(tunnel: UpgradeTunnel): void;
  readonly listenText: string;
  readonly serverPort: number;
  /** The address's counters (src/metrics/stats.ts). */
  readonly stats: ListenerStats;

  /** `https` on an `ssl` address. */
  readonly scheme: 'http' | 'https';
}

type FailureKind = 'connect' | 'connect_timeout' | 'stale' | 'error' | 'timeout' | 'invalid' | 'status';

export class ProxyExchange implements ConnectionUser, ClientUser {
  readonly startedAt = now();
  private readonly method: string;
  private readonly idempotent: boolean;
  private readonly ctx: RequestContext;
  private readonly head: string;
  private readonly hasBody: boolean;
  private readonly chunked: boolean;
  /** The Upgrade asked for (with `Connection: upgrade`), passed upstream. */
  private readonly upgrade: string | undefined;
  /** The client settings of the server and location this request was routed to. */
  private readonly limits: ClientLimits;
  /** The attempts at the group: servers tried, tries and time budget, connect timer, health, max_conns. */
  private readonly tries: Tries;
  private retries = 0;
  private staleRetried = false;

  // Request body state.
  private replay: Buffer[] | undefined;
  private replayBytes = 0;
  private bodyBytes = 0;
  private bodyDone = false;
  private bodyPausedForUpstream = false;
  /** client_body_timeout: the longest gap between two body reads. */
  private bodyDeadline: Deadline<ProxyExchange> | undefined;

  // Current attempt.
  private conn: UpstreamConnection | undefined;
  private reused = false;
  private requestSent = false;
  private attemptStartedAt = 0;
  private connectMs: number | undefined;
  private headerMs: number | undefined;
  private upstreamStatus: number | undefined;
  private lastUpstreamReadAt = 0;
  /** proxy_read_timeout runs for this attempt: the whole request is with the kernel. */
  private awaitingResponse = false;
  private sendTimer: NodeJS.Timeout | undefined;
  private upstreamPaused = false;

  // Client side.
  private headerSent = false;
  private bytesSent = 0;
  private clientWriteBlockedAt = 0;
  private clientTimer: NodeJS.Timeout | undefined;
  private finished = false;
  private reason: RequestEndReason | undefined;
  private detail: string | undefined;

  constructor(
    private readonly leg: ClientLeg,
    private readonly client: ClientSide,
    readonly req: ClientRequest,
    private readonly location: HttpLocation,
    private readonly route: Route,
  ) {
    this.method = req.method;
    this.limits = client.limits;
    // The client connection's idle time before this request (metrics), on the clock read above.
    if (client.requests > 1) leg.stats.idleBeforeReuse.observe((this.startedAt - client.idleSince) / 1000);
    this.tries = new Tries(
      route.upstream,
      location.proxyNextUpstreamTries,
      location.proxyNextUpstreamTimeoutMs,
      this.startedAt,
    );
    this.idempotent = idempotent(this.method);
    const cl = req.contentLength;
    this.chunked = req.chunked;
    this.hasBody = this.chunked || cl > 0;
    this.upgrade = req.upgrade;
    this.ctx = {
      method: this.method,
      url: req.url,
      head: req,
      remoteAddr: client.remoteAddr,
      remotePort: client.remotePort,
      serverPort: leg.serverPort,
      scheme: leg.scheme,
      host: req.host ?? '',
      proxyHost: route.upstream.name,
    };
    this.head = upstreamRequestHead(this.ctx, {
      // Upgrade is HTTP/1.1's (RFC 9110 §7.8); its connection is never reused.
      version: this.upgrade === undefined ? location.proxyHttpVersion : '1.1',
      reuse: route.reuse && this.upgrade === undefined,
      setHeaders: location.proxySetHeaders,
      bodyLength: this.chunked ? 'chunked' : this.hasBody ? cl : cl === 0 ? 0 : 'none',
      upgrade: this.upgrade,
    });
  }

  /** The counters of the upstream group this request goes to. */
  get upstreamStats(): UpstreamStats {
    return this.route.stats;
  }

  /** Attempts made so far (for retry logs). */
  get attempts(): number {
    return this.tries.attempts;
  }

  /** The server of the current (or last) attempt. */
  private get host(): UpstreamHost | undefined {
    return this.tries.host;
  }

  start(): void {
    this.client.user = this;
    if (this.hasBody) {
      this.replay = [];
      // Made only for requests with a body (most have none).
      this.bodyDeadline = new Deadline<ProxyExchange>(
        this,
        this.bodyTimedOut,
        this.limits.clientBodyTimeoutMs,
      );
      this.bodyDeadline.touch();
      this.client.readBody(this);
    } else this.bodyDone = true;
    this.attempt(false);
  }

  // ---- attempts ----------------------------------------------------------

  /** The variables a `hash` key may name (Tries asks only for a group that hashes). */
  vars(): Record<string, string> {
    return balancerVars(this.ctx);
  }

  /** proxy_next_upstream_tries and proxy_next_upstream_timeout allow another try (Tries.left). */
  private triesLeft(): boolean {
    return this.tries.left;
  }

  /** Why a failure that could otherwise have been tried again was not, for the log. */
  private notRetriedNote(): string {
    if (this.replay === undefined && this.hasBody)
      return `; not retried: the request body is over client_body_buffer_size (${this.limits.clientBodyBufferSize} bytes) and was not kept for a repeat`;
    if (this.tries.timeSpent)
      return `; not retried: proxy_next_upstream_timeout (${this.location.proxyNextUpstreamTimeoutMs} ms) spent`;
    return '';
  }

  private attempt(sameHostFresh: boolean): void {
    if (this.finished) return;
    // The stale-connection retry is a free attempt on the same server (see Tries).
    const host = sameHostFresh ? this.tries.again() : this.tries.next(this);
    if (host === undefined) {
      if (this.tries.attempts === 0) {
        this.route.stats.failed('no_live_upstreams');
        this.respondError(502, 'no_live_upstreams', 'no live upstreams');
      } else
        this.respondError(
          this.lastStatus,
          this.reason ?? 'connect_failed',
          this.detail ?? 'all tries failed',
        );
      return;
    }
    const t = now();
    this.attemptStartedAt = t;
    this.connectMs = undefined;
    this.headerMs = undefined;
    this.requestSent = false;
    this.awaitingResponse = false;
    const keepalive = this.route.keepalive;
    let conn =
      sameHostFresh || !this.route.reuse || this.upgrade !== undefined
        ? undefined
        : this.route.pool.take(host, t);
    this.reused = conn !== undefined;
    const stats = this.route.stats;
    if (conn === undefined) {
      stats.connectionsNew++;
      conn = this.route.pool.open(host, keepalive, t);
      const timeoutMs = this.location.proxyConnectTimeoutMs;
      this.tries.armConnect(timeoutMs, () =>
        this.attemptFailed('connect_timeout', `connect timed out after ${timeoutMs} ms`),
      );
    } else {
      stats.connectionsReused++;
      stats.idleBeforeReuse.observe((t - conn.idleSince) / 1000);
      conn.ensureKeepalive(keepalive);
      this.requestSent = true;
    }
    this.conn = conn;
    conn.user = this;
    conn.requests++;
    conn.parser.expect(this.method);
    conn.wire.send(this.head);
    if (this.replay !== undefined) for (const chunk of this.replay) this.writeBody(chunk);
    // A body paused for an earlier attempt was resumed when it ended (dropAttempt).
    if (this.bodyDone) this.finishBody();
    this.afterRequestWrite();
  }

  /**
   * After writing part of the request: as nginx, proxy_send_timeout bounds
   * the wait while the upstream does not take what was written, and
   * proxy_read_timeout starts only once the whole request is written (so an
   * upload slower than proxy_read_timeout is not cut as an upstream timeout).
   */
  private afterRequestWrite(): void {
    if (this.conn === undefined) return;
    if (this.conn.wire.blocked) this.upstreamBlocked();
    else if (this.bodyDone && !this.awaitingResponse) this.armReadTimer();
  }

  onUpstreamConnect(): void {
    this.tries.stopConnect();
    this.connectMs = now() - this.attemptStartedAt;
    this.requestSent = true;
  }

  private get lastStatus(): number {
    return this.reason === 'upstream_timeout' || this.reason === 'connect_timeout' ? 504 : 502;
  }

  /** Ends the current attempt without reuse of its connection. */
  private dropAttempt(): void {
    this.tries.stopConnect();
    clearTimeout(this.sendTimer);
    this.sendTimer = undefined;
    const conn = this.conn;
    this.conn = undefined;
    if (conn) {
      conn.user = undefined;
      conn.destroy();
    }
    this.tries.release();
    this.upstreamPaused = false;
    if (this.bodyPausedForUpstream) {
      // No upstream to wait for: the client's body is read again, for the
      // next attempt or to be dropped after the answer. Left paused, a
      // keep-alive connection answered 502 sat until client_body_timeout and
      // then reset the client's next request.
      this.bodyPausedForUpstream = false;
      this.client.resumeBody();
    }
  }

  private attemptFailed(kind: FailureKind, detail: string): void {
    if (this.finished) return;
    const host = this.host!;
    const reused = this.reused;
    const sent = this.requestSent;
    this.dropAttempt();
    const where = `${host.address.text}: ${detail}`;
    if (this.headerSent) {
      // Part of the response is already with the client: all that can be
      // done honestly is to cut the connection.
      this.abortClient(
        kind === 'timeout' ? 'upstream_timeout' : 'upstream_reset',
        `${where} (response aborted)`,
      );
      return;
    }
    const replayable = this.replay !== undefined || !this.hasBody;
    if (kind === 'stale' && reused && !this.staleRetried && replayable) {
      if (this.idempotent || !sent || this.location.proxyNextUpstream.includes('non_idempotent')) {
        // A free attempt: proxy_next_upstream_tries is not charged for it, as
        // nginx gives back a cached connection's try; the time budget holds.
        if (!this.tries.timeSpent) {
          this.staleRetried = true;
          this.retries++;
          this.leg.retry(this, host, 'stale_connection', detail);
          this.attempt(true);
          return;
        }
      } else {
        this.respondError(502, 'upstream_reset', `${where}; ${NOT_RETRIED_MAY_HAVE_REACHED}`);
        return;
      }
    }
    // A failure on a cached connection says nothing about the server's health.
    if (!reused && kind !== 'status' && kind !== 'invalid') this.tries.failed();
    const status = kind === 'timeout' || kind === 'connect_timeout' ? 504 : 502;
    const reason = upstreamFailureReason(kind);
    this.reason = reason;
    this.detail = where;
    this.route.stats.failed(reason);
    if (reason !== 'upstream_timeout')
      noteEvent('upstream_failure', this.route.stats.upstream, `${reason}: ${where}`);
    const c = this.route.conditions;
    const condition =
      kind === 'timeout' || kind === 'connect_timeout'
        ? 'timeout'
        : kind === 'invalid'
          ? 'invalid_header'
          : 'error';
    if (
      c.has(condition) &&
      this.triesLeft() &&
      replayable &&
      (this.idempotent || !sent || c.has('non_idempotent'))
    ) {
      this.retries++;
      this.leg.retry(this, host, 'next_upstream', detail);
      this.attempt(false);
      return;
    }
    if (sent && !this.idempotent && !c.has('non_idempotent') && c.has(condition))
      this.respondError(status, reason, `${where}; ${NOT_RETRIED_MAY_HAVE_REACHED}`);
    else if (c.has(condition) || (kind === 'stale' && reused))
      this.respondError(status, reason, `${where}${this.notRetriedNote()}`);
    else this.respondError(status, reason, where);
  }

  // ---- request body --------------------------------------------------------

  onBodyData(chunk: Buffer): void {
    if (this.finished) return;
    this.bodyBytes += chunk.length;
    if (this.dropBody) return;
    this.bodyDeadline?.touch();
    const max = this.limits.clientMaxBodySize;
    if (max > 0 && this.bodyBytes > max) {
      this.dropAttempt();
      if (this.headerSent) this.abortClient('body_too_large', `request body over ${max} bytes`);
      else this.respondLocal(413, 'body_too_large', `request body over ${max} bytes`, true);
      return;
    }
    if (this.replay !== undefined) {
      this.replayBytes += chunk.length;
      if (this.replayBytes > this.limits.clientBodyBufferSize) this.replay = undefined;
      else this.replay.push(chunk);
    }
    if (this.conn === undefined) return;
    this.writeBody(chunk);
    if (this.conn.wire.blocked) this.upstreamBlocked();
  }

  private writeBody(chunk: Buffer): void {
    const wire = this.conn!.wire;
    if (this.chunked) wire.sendParts([`${chunk.length.toString(16)}\r\n`, chunk, '\r\n']);
    else wire.send(chunk);
  }

  onBodyEnd(trailers: string[]): void {
    if (this.finished) return;
    this.bodyDone = true;
    this.trailers = trailers;
    this.bodyDeadline?.cancel();
    if (this.conn !== undefined) {
      this.finishBody();
      this.afterRequestWrite();
    }
  }

  /** The request's trailers (a chunked body's); none until its end (no array per request). */
  private trailers: readonly string[] = NO_TRAILERS;

  private finishBody(): void {
    if (!this.chunked) return;
    let last = '0\r\n';
    const t = trailerFields(this.trailers);
    for (let i = 0; i < t.length; i += 2) last += `${t[i]}: ${t[i + 1]}\r\n`;
    this.conn!.wire.send(`${last}\r\n`);
  }

  onClientBodyError(error: RequestError): void {
    this.dropAttempt();
    if (this.headerSent) this.abortClient('bad_request', `request body: ${error.message}`);
    else this.respondLocal(error.status, 'bad_request', `request body: ${error.message}`, true);
  }

  private upstreamBlocked(): void {
    if (!this.bodyDone) {
      // Backpressure: no more body is read from the client than the upstream takes.
      this.client.pauseBody();
      this.bodyPausedForUpstream = true;
    }
    if (this.sendTimer !== undefined) return;
    const timeoutMs = this.location.proxySendTimeoutMs;
    this.sendTimer = setTimeout(() => {
      this.sendTimer = undefined;
      this.attemptFailed('timeout', `proxy_send_timeout (${timeoutMs} ms) writing the request`);
    }, timeoutMs);
  }

  onUpstreamDrain(): void {
    clearTimeout(this.sendTimer);
    this.sendTimer = undefined;
    if (this.bodyPausedForUpstream) {
      this.bodyPausedForUpstream = false;
      if (this.bodyDeadline?.armed) this.bodyDeadline.touch();
      this.client.resumeBody();
    }
    if (this.bodyDone && !this.awaitingResponse && this.conn !== undefined && !this.conn.wire.blocked)
      this.armReadTimer();
  }

  private bodyTimedOut(): void {
    if (this.bodyDone || this.finished) return;
    // Time spent waiting for the upstream to take the body is not the client's.
    if (this.bodyPausedForUpstream) {
      this.bodyDeadline?.touch();
      return;
    }
    const timeoutMs = this.limits.clientBodyTimeoutMs;
    this.dropAttempt();
    if (this.headerSent) this.abortClient('client_body_timeout', `no body bytes for ${timeoutMs} ms`);
    else this.respondLocal(408, 'client_body_timeout', `no body bytes for ${timeoutMs} ms`, true);
  }

  // ---- upstream response -----------------------------------------------

  private armReadTimer(): void {
    this.awaitingResponse = true;
    this.lastUpstreamReadAt = now();
    this.conn?.armReadTimer(this.location.proxyReadTimeoutMs);
  }

  /**
   * proxy_read_timeout is the longest gap between two reads (and the wait
   * for the header), never the length of the whole response.
   */
  onReadTimer(): number {
    if (this.conn === undefined || this.finished) return 0;
    const timeoutMs = this.location.proxyReadTimeoutMs;
    // Reads are paused while the client is slow: that wait is send_timeout's.
    if (this.upstreamPaused) this.lastUpstreamReadAt = now();
    const left = this.lastUpstreamReadAt + timeoutMs - now();
    if (left > 0) return left;
    this.attemptFailed('timeout', `proxy_read_timeout (${timeoutMs} ms)`);
    return 0;
  }

  onInformational(_head: ResponseHead): void {
    // Interim responses (100, 103) are not passed on, as in nginx: keepwire
    // answered the client's Expect itself.
    this.lastUpstreamReadAt = now();
  }

  onHead(head: ResponseHead): void {
    this.lastUpstreamReadAt = now();
    this.headerMs = this.lastUpstreamReadAt - this.attemptStartedAt - (this.connectMs ?? 0);
    this.upstreamStatus = head.statusCode;
    if (head.statusCode === 101) {
      if (this.upgrade === undefined)
        this.attemptFailed('invalid', '101 Switching Protocols to a request without Upgrade');
      // The switch happens after the request (RFC 9110 §7.8): the client's
      // bytes still to come are body, and sent raw into the tunnel they
      // would not be framed as the upstream was told.
      else if (!this.bodyDone)
        this.attemptFailed('invalid', '101 Switching Protocols before the request body was sent');
      else this.switchHead = head;
      return;
    }
    const status = head.statusCode;
    if (status >= 500 || status === 403 || status === 404 || status === 429) {
      const cond = `http_${status}` as NextUpstreamCondition;
      const c = this.route.conditions;
      if (
        c.has(cond) &&
        this.triesLeft() &&
        (this.replay !== undefined || !this.hasBody) &&
        (this.idempotent || c.has('non_idempotent'))
      ) {
        // Tried with another server; 403/404 do not count against the server's health.
        if (status >= 500) this.tries.failed();
        const host = this.host!;
        this.dropAttempt();
        this.retries++;
        this.leg.retry(this, host, 'next_upstream', `upstream answered ${status}`);
        this.attempt(false);
        return;
      }
    }
    const framing = head.framing;
    // The upstream's framing is not the client's: a Content-Length is kept
    // only for a body framed by it (or none), the rest is re-framed.
    const message = head.statusMessage === '' ? statusText(status) : head.statusMessage;
    const headers = clientResponseHead(head, framing === 'chunked' || framing === 'close', message);
    this.headerSent = true;
    // Head, body and end of a small response usually arrive in one read:
    // they are queued and leave in one write (onReadDone or onComplete).
    this.client.startResponse(
      status,
      message,
      headers,
      framing === 'none' ? BodyKind.None : framing === 'length' ? BodyKind.Length : BodyKind.Stream,
      false,
    );
  }

  onBody(chunk: Buffer): void {
    this.lastUpstreamReadAt = now();
    if (this.conn === undefined) return;
    this.bytesSent += chunk.length;
    this.client.writeBody(chunk);
  }

  onReadDone(): void {
    if (!this.headerSent || this.conn === undefined) return;
    if (this.client.flush()) {
      this.conn.wire.pause();
      this.upstreamPaused = true;
      this.clientBlocked();
    }
  }

  onClientDrain(): void {
    if (this.clientWriteBlockedAt === 0) return;
    this.clientWriteBlockedAt = 0;
    clearTimeout(this.clientTimer);
    this.clientTimer = undefined;
    if (this.upstreamPaused) {
      this.upstreamPaused = false;
      this.lastUpstreamReadAt = now();
      this.conn?.wire.resume();
    }
  }

  private clientBlocked(): void {
    if (this.clientWriteBlockedAt !== 0) return;
    this.clientWriteBlockedAt = now();
    const timeoutMs = this.limits.sendTimeoutMs;
    this.clientTimer = setTimeout(() => {
      this.clientTimer = undefined;
      this.dropAttempt();
      this.abortClient('send_timeout', `client took nothing for ${timeoutMs} ms`);
    }, timeoutMs);
  }

  /** A 101 to this Upgrade request, switched to in `onComplete` (the parser's next call). */
  private switchHead: ResponseHead | undefined;

  onComplete(trailers: readonly string[], rest: Buffer | undefined): void {
    const conn = this.conn;
    if (conn !== undefined && this.switchHead !== undefined) {
      this.switchProtocols(conn, this.switchHead, rest);
      return;
    }
    if (conn === undefined || !this.headerSent) return;
    this.tries.stopConnect();
    this.conn = undefined;
    this.tries.succeeded();
    this.tries.release();
    // A response that ended before the request body was sent leaves the
    // upstream mid-request: that connection cannot carry another one. A
    // refused Upgrade's connection was asked to upgrade: not reused either.
    if (this.bodyDone && this.upgrade === undefined) this.route.pool.release(conn, now());
    else conn.destroy();
    this.reason = 'ok';
    if (!this.bodyDone && this.replay !== undefined) this.replay = undefined;
    // send_timeout also covers the last bytes: armed if the socket is full.
    if (this.client.writeBlocked) this.clientBlocked();
    this.client.endResponse(trailers.length > 0 ? trailerFields(trailers) : undefined);
  }

  /**
   * The upstream switched protocols: the 101 goes to the client as received
   * and both sockets become the tunnel's, with what each side sent past the
   * switch. The tunnel keeps this attempt's hold on the host (max_conns,
   * least_conn) and writes the access line when it ends.
   */
  private switchProtocols(conn: UpstreamConnection, head: ResponseHead, rest: Buffer | undefined): void {
    this.tries.stopConnect();
    clearTimeout(this.sendTimer);
    clearTimeout(this.clientTimer);
    this.sendTimer = this.clientTimer = undefined;
    this.bodyDeadline?.cancel();
    this.conn = undefined;
    this.tries.succeeded();
    const held = this.tries.handOver();
    this.finished = true;
    this.headerSent = true;
    this.reason = 'ok';
    // The tunnel's access line tells how the tunnel ended (earlier tries have their retry lines).
    this.detail = undefined;
    const upstream = conn.takeSocket();
    // Only an HTTP/1.1 client side has takeOver; an HTTP/2 request never asks for an Upgrade.
    const client = this.client.takeOver!();
    const tunnel = new UpgradeTunnel(
      this.leg,
      client.socket,
      upstream,
      held,
      this.location.proxyReadTimeoutMs,
      this.limits.accessLog ? this.record(101) : undefined,
      this.startedAt,
      this.location.websocketHeartbeat,
    );
    this.leg.stats.requestEnded(101, 'ok', now() - this.startedAt);
    this.leg.tunnelled(tunnel);
    this.leg.ended(this);
    tunnel.start({
      head: `HTTP/1.1 101 ${head.statusMessage || statusText(101)}\r\n${headerLines(head.rawHeaders)}\r\n`,
      // A view of the shared read buffer (reads.ts) until copied.
      fromUpstream: rest === undefined ? undefined : owned(rest),
      fromClient: client.held,
      clientEnded: client.ended,
    });
  }

  onConnectionError(error: Error): void {
    const code = (error as NodeJS.ErrnoException).code ?? error.message;
    const conn = this.conn;
    if (conn === undefined) return;
    if (error.name === 'ParseError') {
      this.attemptFailed('invalid', `invalid response: ${error.message}`);
      return;
    }
    if (!conn.connected) {
      this.attemptFailed('connect', `connect failed: ${code}`);
      return;
    }
    const nothingYet = conn.parser.untouched && this.upstreamStatus === undefined;
    if (this.reused && nothingYet)
      this.attemptFailed('stale', `reused connection failed before any response byte: ${code}`);
    else this.attemptFailed('error', `${nothingYet ? 'before' : 'during'} the response: ${code}`);
  }

  // ---- client side -----------------------------------------------------

  private respondError(status: number, reason: RequestEndReason, detail: string): void {
    this.respondLocal(status, reason, detail, false);
  }

  /** Answers the client from keepwire itself (errors, 413, 408). */
  respondLocal(status: number, reason: RequestEndReason, detail: string, close: boolean): void {
    if (this.finished || this.headerSent) return;
    this.reason = reason;
    this.detail = detail;
    this.headerSent = true;
    const body = `${status} ${statusText(status)}\n`;
    const headers = ['Content-Type', 'text/plain', 'Content-Length', String(body.length)];
    if (close) {
      // The rest of the body is read and dropped (the connection lingers)
      // so the client sees the answer instead of a reset.
      this.client.readBody(this);
      this.dropBody = true;
    }
    this.bytesSent += this.method === 'HEAD' ? 0 : body.length;
    this.client.respond(status, statusText(status), headers, Buffer.from(body, 'latin1'), close);
  }

  /** Body bytes after a closing local answer are counted, not forwarded. */
  private dropBody = false;

  private abortClient(reason: RequestEndReason, detail: string): void {
    if (this.finished) return;
    this.reason = reason;
    this.detail = detail;
    this.client.abort();
  }

  /** Shutdown deadline: cut the request now. */
  terminate(): void {
    this.dropAttempt();
    this.abortClient('shutdown', 'shutdown deadline');
  }

  onClientDone(complete: boolean): void {
    if (this.finished) return;
    this.finished = true;
    if (!complete) {
      if (this.reason === undefined || this.reason === 'ok') {
        this.reason = 'client_closed';
        this.detail ??= this.headerSent
          ? 'client closed during the response'
          : 'client closed before the response';
      }
      this.dropAttempt();
    }
    this.bodyDeadline?.cancel();
    clearTimeout(this.clientTimer);
    const totalMs = now() - this.startedAt;
    this.leg.stats.requestEnded(this.client.status, this.reason ?? 'ok', totalMs);
    if (!this.limits.accessLog) {
      this.leg.ended(this);
      return;
    }
    this.leg.log(this.record(this.client.status, totalMs));
    this.leg.ended(this);
  }

  private record(status: number, totalMs = now() - this.startedAt): RequestRecord {
    const record: RequestRecord = {
      msg: 'request',
      listen: this.leg.listenText,
      client: this.client.clientText,
      method: this.method,
      path: this.ctx.url,
      host: this.ctx.host,
      status,
      bytesSent: this.bytesSent,
      bytesReceived: this.bodyBytes,
      upstream: this.host ? this.host.address.text : null,
      upstreamConnect: this.host ? (this.reused ? 'reused' : 'new') : null,
      tries: this.tries.attempts,
      retries: this.retries,
      timings: { totalMs },
      reason: this.reason ?? 'ok',
    };
    if (this.upstreamStatus !== undefined) record.upstreamStatus = this.upstreamStatus;
    if (this.connectMs !== undefined) record.timings.connectMs = this.connectMs;
    if (this.headerMs !== undefined) record.timings.headerMs = this.headerMs;
    if (this.detail !== undefined) record.detail = this.detail;
    if (this.client.protocol !== undefined) record.protocol = this.client.protocol;
    return record;
  }
}

export const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  405: 'Method Not Allowed',
  417: 'Expectation Failed',
  505: 'HTTP Version Not Supported',
  404: 'Not Found',
  408: 'Request Timeout',
  413: 'Content Too Large',
  431: 'Request Header Fields Too Large',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** keepwire's wording for the statuses it makes, Node's table for the rest. */
export function statusText(status: number): string {
  return STATUS_TEXT[status] ?? STATUS_CODES[status] ?? '';
}
