/**
 * keepwire probe's measurement: many connections idle for different planned
 * durations, each then used once, so that one round of waiting answers many
 * guesses at once.
 *
 * Three kinds of connection:
 * - grid: no keepalive; idle for a planned duration, then used (a payload, or
 *   with `--payload none` a single keepalive probe). The kernel says whether
 *   the peer acknowledged it: SIOCOUTQ back to zero, or an ACK newer than the
 *   probe in TCP_INFO. A short TCP_USER_TIMEOUT turns a silent blackhole into
 *   a prompt ETIMEDOUT. Grid connections also see a server that closes idle
 *   connections on its own (FIN or RST without any use).
 * - watch: keepalive every second. TCP keepalive refreshes every middlebox on
 *   the path but not an application's idle timer, so these outlive a shorter
 *   middlebox and still see the server's own idle close behind it; and when
 *   grid connections are closed without use while these live on, the closer
 *   is a middlebox that resets at expiry, not the server.
 * - verify: the user's --verify-keepalive settings, held past the measured T
 *   and then used once.
 *
 * With `--payload http`, every connection first makes one HEAD request and
 * idles from its answer: HTTP servers arm their keep-alive timeout after a
 * response (nginx keepalive_timeout, Node's keepAliveTimeout), not on a fresh
 * connection, so idling fresh connections would never see it (#23). A
 * server that answers the first request with Connection: close has no
 * keep-alive timeout to find: then connections idle fresh, as before.
 */
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { applyKeepalive, type KeepaliveOptions, toKeepaliveOptions } from '../keepalive/socket.js';
import type { KeepaliveSpec } from '../keepalive/spec.js';
import { fdOf, setIntOption, sockoptConstants } from '../kernel/index.js';
import { tcpInfo, unackedBytes } from './kernel.js';
import {
  bracketDone,
  formatTarget,
  type HttpAnswer,
  MAX_IDLE_MS,
  median,
  type Payload,
  parseHttpAnswer,
  payloadBytes,
  planGrid,
  planRefinement,
  VERIFY_CONNECTIONS_PER_SPEC,
  WATCH_CONNECTIONS,
} from './plan.js';

export interface ProbeOptions {
  host: string;
  port: number;
  minMs: number;
  maxMs: number;
  precisionMs: number;
  /** Every connection open at once counts: grid, watch and verify. */
  connections: number;
  payload: Payload;
  verify: { text: string; spec: KeepaliveSpec }[];
  /** Keep watch connections at least this long (from their connect) to see a later server close. */
  watchServerMs?: number;
  connectTimeoutMs: number;
}

export type Role = 'grid' | 'watch' | 'verify';

/**
 * What one connection showed. `rst` and `drop` are outcomes of a use; `fin`
 * and `rst-by-server` are closes without any use; `alive` is a use that was
 * acknowledged (or, for watch connections, still open at the end).
 */
export type Outcome =
  | 'pending'
  | 'alive'
  | 'rst'
  | 'drop'
  | 'fin'
  | 'rst-by-server'
  | 'error'
  | 'connect-failed'
  | 'cancelled';

export interface ConnectionEvidence {
  id: number;
  role: Role;
  /** Grid round (1 = the first, coarse one); 0 for watch and verify connections. */
  round: number;
  /** The --verify-keepalive spec, for verify connections. */
  spec?: string;
  plannedIdleMs?: number;
  /** Milliseconds from the start of the probe. */
  connectedAtMs?: number;
  usedAtMs?: number;
  /** How long the connection had been idle when it was used or closed. */
  idleMs?: number;
  outcome: Outcome;
  detail: string;
  /** With `--payload http`: what the server answered to the HEAD request, when an answer came. */
  http?: HttpAnswer;
}

export interface Progress {
  elapsedMs: number;
  phase: 'measuring' | 'verifying' | 'watching' | 'done';
  lowMs?: number;
  highMs?: number;
  open: number;
  pendingTests: number;
  round: number;
  /** When the probe should end if nothing new happens, from the start; `bounded` while no expiry is seen yet. */
  estimateMs: number;
  bounded: boolean;
}

export class ProbeError extends Error {
  override name = 'ProbeError';
  constructor(
    readonly kind: 'resolve' | 'refused' | 'unreachable' | 'timeout' | 'failed',
    message: string,
  ) {
    super(message);
  }
}

export interface RawProbe {
  address: string;
  rttMs: number;
  ackWaitMs: number;
  elapsedMs: number;
  rounds: number;
  connectionsOpened: number;
  interrupted: boolean;
  evidence: ConnectionEvidence[];
  /** Keepalive of the watch connections. */
  watchKeepalive: { idle: number; interval: number; count: number };
  /** `--payload http`: connections idled from the answer to a first request (the server kept it open). */
  idleAfterRequest: boolean;
}

interface Conn {
  ev: ConnectionEvidence;
  socket: net.Socket;
  lastActivity: number;
  connected: boolean;
  using: boolean;
  settled: boolean;
  keepaliveOn: boolean;
  timer?: NodeJS.Timeout;
  poll?: NodeJS.Timeout;
  useStart: number;
  finDuringUse?: boolean;
  /** Settles the current use from the socket's error or close. */
  onUseEnd?: (outcome: Outcome, detail: string) => void;
  /** `--payload http`: the answer's bytes so far, until its head is complete. */
  answer?: Buffer;
}

/** An answer head longer than this is recorded as not HTTP. */
const MAX_ANSWER_HEAD = 16 * 1024;

const WATCH_KEEPALIVE = { idle: 1, interval: 1, count: 5 };
const POLL_MS = 10;
/**
 * How long a used connection stays readable after the kernel acknowledged the
 * HEAD request, for the server's answer: it is evidence only, and on a busy
 * host the server can be scheduled well after its kernel acknowledged.
 */
const ANSWER_WAIT_MS = 2000;

function errorCode(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
}

/** Runs one probe. Resolves with the raw evidence (see classify.ts); rejects with ProbeError when the target cannot be reached at all. */
export async function runProbe(
  opts: ProbeOptions,
  hooks: { onProgress?: (p: Progress) => void; signal?: AbortSignal } = {},
): Promise<RawProbe> {
  let address: string;
  let family: number;
  try {
    const found = await lookup(opts.host);
    address = found.address;
    family = found.family;
  } catch (error) {
    throw new ProbeError('resolve', `cannot resolve ${opts.host}: ${errorCode(error)}`);
  }
  const run = new ProbeRun(opts, address, family, hooks);
  return run.start();
}

class ProbeRun {
  private readonly t0 = performance.now();
  private readonly conns: Conn[] = [];
  private nextId = 1;
  private rttMs = 0;
  private ackWaitMs = 1000;
  private lowMs: number | undefined;
  private highMs: number | undefined;
  private round = 0;
  private gridDone = false;
  private gridDoneAt = 0;
  private finished = false;
  private interrupted = false;
  private resolve!: (r: RawProbe) => void;
  private progressTimer?: NodeJS.Timeout;
  private readonly payload: Buffer | undefined;
  /** `--payload http` and the server keeps connections after an answer: every connection makes a request first. */
  private afterRequest = false;

  constructor(
    private readonly opts: ProbeOptions,
    private readonly address: string,
    private readonly family: number,
    private readonly hooks: { onProgress?: (p: Progress) => void; signal?: AbortSignal },
  ) {
    this.payload = payloadBytes(opts.payload, opts.host, opts.port);
  }

  private now(): number {
    return performance.now() - this.t0;
  }

  async start(): Promise<RawProbe> {
    // One connection first: it tells unreachable from refused before anything
    // else is opened, and its handshake time sets how long an unacknowledged
    // use may take before it counts as dropped.
    const first = await this.preflight();
    this.rttMs = first.rttMs;
    this.ackWaitMs = Math.min(10_000, Math.max(1000, Math.ceil(4 * this.rttMs + 500)));
    const done = new Promise<RawProbe>((resolve) => {
      this.resolve = resolve;
    });
    const onAbort = () => {
      this.interrupted = true;
      this.finish();
    };
    if (this.hooks.signal?.aborted) {
      // Interrupted while the first connection was being made: open nothing more.
      first.socket.destroy();
      this.interrupted = true;
      this.gridDone = true;
      this.finish();
      return done;
    }
    this.hooks.signal?.addEventListener('abort', onAbort, { once: true });
    if (this.opts.payload.kind === 'http') this.afterRequest = await this.keepsAliveAfterAnswer(first.socket);
    if (this.finished) {
      // Interrupted while the first request was answered.
      first.socket.destroy();
      return done;
    }
    if (first.socket.destroyed) this.open('watch', {});
    else this.adopt(first.socket, 'watch');
    for (let i = 1; i < WATCH_CONNECTIONS; i++) this.open('watch', {});
    for (const v of this.opts.verify) {
      for (let i = 0; i < VERIFY_CONNECTIONS_PER_SPEC; i++) this.open('verify', { spec: v });
    }
    const gridBudget = this.opts.connections - this.openCount();
    this.openRound(planGrid(this.opts.minMs, this.opts.maxMs, gridBudget, this.opts.precisionMs));
    if (this.hooks.onProgress) {
      this.progressTimer = setInterval(() => this.hooks.onProgress?.(this.progress()), 500);
    }
    const result = await done;
    this.hooks.signal?.removeEventListener('abort', onAbort);
    return result;
  }

  private preflight(): Promise<{ socket: net.Socket; rttMs: number }> {
    return new Promise((resolve, reject) => {
      const started = performance.now();
      const socket = net.connect({ host: this.address, port: this.opts.port, family: this.family });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(
          new ProbeError(
            'timeout',
            `${this.describeTarget()}: no answer to the connection attempt within ${this.opts.connectTimeoutMs} ms (filtered, or the host is down)`,
          ),
        );
      }, this.opts.connectTimeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve({ socket, rttMs: performance.now() - started });
      });
      socket.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const code = error.code ?? '';
        if (code === 'ECONNREFUSED')
          reject(
            new ProbeError('refused', `${this.describeTarget()}: connection refused (nothing listens there)`),
          );
        else if (['EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN'].includes(code))
          reject(new ProbeError('unreachable', `${this.describeTarget()}: unreachable (${code})`));
        else if (code === 'ETIMEDOUT')
          reject(new ProbeError('timeout', `${this.describeTarget()}: connection attempt timed out`));
        else
          reject(
            new ProbeError('failed', `${this.describeTarget()}: cannot connect: ${code || error.message}`),
          );
      });
    });
  }

  /**
   * `--payload http`: the first request, on the first connection. True when
   * the server answered and kept the connection open, so its keep-alive
   * timeout is there to be measured after a request; the connection is
   * closed otherwise.
   */
  private keepsAliveAfterAnswer(socket: net.Socket): Promise<boolean> {
    return new Promise((resolve) => {
      let head = Buffer.alloc(0);
      const done = (keepAlive: boolean) => {
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('close', onClose);
        socket.off('error', onClose);
        if (!keepAlive) socket.destroy();
        resolve(keepAlive);
      };
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0 && head.length < MAX_ANSWER_HEAD) return;
        const answer = end < 0 ? undefined : parseHttpAnswer(head.subarray(0, end).toString('latin1'));
        done(answer?.keepAlive === true);
      };
      const onClose = () => done(false);
      const timer = setTimeout(() => done(false), this.ackWaitMs + ANSWER_WAIT_MS);
      socket.on('data', onData);
      socket.once('close', onClose);
      socket.once('error', onClose);
      socket.write(this.payload!);
    });
  }

  private describeTarget(): string {
    const addr = this.address === this.opts.host ? '' : ` (${this.address})`;
    return `${formatTarget(this.opts.host, this.opts.port)}${addr}`;
  }

  private openCount(): number {
    let n = 0;
    for (const c of this.conns) if (!c.settled) n++;
    return n;
  }

  /** A speculative round is labelled as the next round but only counts once it becomes the fine round. */
  private openRound(points: number[], speculative = false): void {
    if (points.length === 0) return;
    if (!speculative) this.round++;
    for (const planned of points)
      this.open('grid', { planned, round: speculative ? this.round + 1 : this.round });
  }

  private keepaliveFor(role: Role, spec?: KeepaliveSpec): KeepaliveOptions {
    if (role === 'watch') return { enable: true, ...WATCH_KEEPALIVE };
    if (role === 'verify') return toKeepaliveOptions(spec!);
    if (this.opts.payload.kind === 'none') {
      // Armed but dormant: setting TCP_KEEPIDLE low later sends one probe at once.
      return {
        enable: true,
        idle: MAX_IDLE_MS / 1000,
        interval: Math.ceil(this.ackWaitMs / 1000),
        count: 9,
        userTimeout: this.ackWaitMs,
      };
    }
    return { enable: false, userTimeout: this.ackWaitMs };
  }

  private open(
    role: Role,
    extra: { planned?: number; round?: number; spec?: { text: string; spec: KeepaliveSpec } },
  ): void {
    const socket = net.connect({ host: this.address, port: this.opts.port, family: this.family });
    const conn = this.track(socket, role, extra);
    // Held in conn.timer so that settling the connection (cancelled, or the probe ends) clears it
    // and no timer keeps the process alive after the result.
    conn.timer = setTimeout(() => {
      if (!conn.connected)
        this.settle(conn, 'connect-failed', `no connection within ${this.opts.connectTimeoutMs} ms`);
    }, this.opts.connectTimeoutMs);
    socket.once('connect', () => {
      clearTimeout(conn.timer);
      this.connected(conn);
    });
  }

  private adopt(socket: net.Socket, role: Role): void {
    const conn = this.track(socket, role, {});
    this.connected(conn);
  }

  private track(
    socket: net.Socket,
    role: Role,
    extra: { planned?: number; round?: number; spec?: { text: string; spec: KeepaliveSpec } },
  ): Conn {
    const ev: ConnectionEvidence = {
      id: this.nextId++,
      role,
      round: role === 'grid' ? (extra.round ?? this.round) : 0,
      outcome: 'pending',
      detail: '',
    };
    if (extra.planned !== undefined) ev.plannedIdleMs = extra.planned;
    if (extra.spec) ev.spec = extra.spec.text;
    const ka = this.keepaliveFor(role, extra.spec?.spec);
    const conn: Conn = {
      ev,
      socket,
      lastActivity: 0,
      connected: false,
      using: false,
      settled: false,
      keepaliveOn: ka.enable !== false,
      useStart: 0,
    };
    this.conns.push(conn);
    try {
      applyKeepalive(socket, ka);
    } catch (error) {
      queueMicrotask(() =>
        this.settle(conn, 'error', `keepalive could not be set: ${(error as Error).message}`),
      );
    }
    socket.on('data', (chunk: Buffer) => {
      conn.lastActivity = this.now();
      if (this.opts.payload.kind === 'http' && conn.useStart > 0) this.recordAnswer(conn, chunk);
    });
    socket.on('end', () => {
      if (conn.settled) return;
      if (conn.using) {
        // The peer answered and closed (an HTTP server answering `Connection: close`, or 400 and
        // close). Its FIN may arrive before the next poll: if the kernel already has the payload
        // acknowledged, the use succeeded; otherwise it is judged by what follows.
        if (this.payload && this.payloadAcked(conn)) {
          conn.onUseEnd?.(
            'alive',
            `payload acknowledged after ${Math.round(this.now() - conn.useStart)} ms, then the peer closed`,
          );
          return;
        }
        conn.finDuringUse = true;
        return;
      }
      this.unsolicited(conn, 'fin', 'FIN from the peer');
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (conn.settled) return;
      const code = error.code ?? error.message;
      if (!conn.connected) {
        this.settle(conn, 'connect-failed', code);
        return;
      }
      if (conn.using && conn.onUseEnd) {
        const kind: Outcome =
          code === 'ECONNRESET' || code === 'EPIPE' ? 'rst' : code === 'ETIMEDOUT' ? 'drop' : 'error';
        conn.onUseEnd(kind, `${code} ${Math.round(this.now() - conn.useStart)} ms after use`);
        return;
      }
      // Without use: a reset from the peer, or a keepalive probe that met a forgotten session.
      if (code === 'ECONNRESET' || code === 'EPIPE') {
        // A verify connection's own keepalive probe may have met a forgotten session.
        this.unsolicited(conn, role === 'verify' ? 'rst' : 'rst-by-server', `${code} without use`);
      } else if (code === 'ETIMEDOUT') {
        this.unsolicited(conn, 'drop', 'ETIMEDOUT: keepalive probes went unanswered');
      } else this.unsolicited(conn, 'error', code);
    });
    socket.on('close', () => {
      if (conn.settled) return;
      if (conn.using && conn.onUseEnd && conn.finDuringUse)
        conn.onUseEnd('fin', `FIN from the peer ${Math.round(this.now() - conn.useStart)} ms into the use`);
      else if (conn.using && conn.onUseEnd) conn.onUseEnd('error', 'closed during use');
      else this.unsolicited(conn, 'error', 'closed');
    });
    return conn;
  }

  private connected(conn: Conn): void {
    if (conn.settled) return;
    conn.connected = true;
    conn.lastActivity = this.now();
    conn.ev.connectedAtMs = Math.round(conn.lastActivity);
    // The first request: its answer (a 'data' event) restarts the idle time, and `use` waits the
    // full planned idle from there.
    if (this.afterRequest && conn.ev.role !== 'verify' && this.payload) conn.socket.write(this.payload);
    if (conn.ev.role === 'grid') this.scheduleUse(conn, conn.ev.plannedIdleMs!);
    else if (conn.ev.role === 'verify') this.armVerify();
    this.maybeFinish();
  }

  private scheduleUse(conn: Conn, idleMs: number): void {
    clearTimeout(conn.timer);
    const at = conn.lastActivity + idleMs;
    conn.timer = setTimeout(() => this.use(conn), Math.max(0, at - this.now()));
  }

  /** Uses an idle connection once and settles it by what the kernel reports. */
  private use(conn: Conn): void {
    if (conn.settled || conn.using) return;
    // Data from the peer (a banner, a late answer) refreshed the path: wait the full idle again.
    if (conn.ev.role === 'grid' && this.now() - conn.lastActivity < conn.ev.plannedIdleMs! - 5) {
      this.scheduleUse(conn, conn.ev.plannedIdleMs!);
      return;
    }
    conn.using = true;
    conn.useStart = this.now();
    conn.ev.usedAtMs = Math.round(conn.useStart);
    conn.ev.idleMs = Math.round(conn.useStart - conn.lastActivity);
    const socket = conn.socket;
    const end = (outcome: Outcome, detail: string) => {
      if (conn.settled) return;
      clearTimeout(conn.poll);
      conn.onUseEnd = undefined;
      this.settle(conn, outcome, detail);
    };
    conn.onUseEnd = end;
    try {
      if (this.payload) {
        const c = sockoptConstants();
        setIntOption(fdOf(socket), c.IPPROTO_TCP, c.TCP_USER_TIMEOUT!, this.ackWaitMs, 'TCP_USER_TIMEOUT');
        socket.write(this.payload);
      } else this.sendKeepaliveProbe(conn);
    } catch (error) {
      end('error', `could not use the connection: ${(error as Error).message}`);
      return;
    }
    const deadline = this.ackWaitMs + 1500;
    const check = () => {
      if (conn.settled) return;
      const elapsed = this.now() - conn.useStart;
      try {
        if (this.payload) {
          if (this.payloadAcked(conn)) {
            end('alive', `payload acknowledged after ${Math.round(elapsed)} ms`);
            return;
          }
        } else if (tcpInfo(socket).lastAckRecvMs < elapsed) {
          end('alive', `keepalive probe answered after ${Math.round(elapsed)} ms`);
          return;
        }
      } catch {
        // The socket closed between polls; its error event settles it.
        return;
      }
      if (elapsed > deadline) {
        end('drop', `unacknowledged after ${Math.round(elapsed)} ms`);
        return;
      }
      conn.poll = setTimeout(check, POLL_MS);
    };
    conn.poll = setTimeout(check, 0);
  }

  /** The payload has left Node's buffer and the peer's kernel acknowledged every byte of it. */
  private payloadAcked(conn: Conn): boolean {
    try {
      return conn.socket.writableLength === 0 && unackedBytes(conn.socket) === 0;
    } catch {
      return false;
    }
  }

  /**
   * Keeps the head of an HTTP answer to the probe's HEAD request as evidence.
   * It is not what decides the use (the kernel's acknowledgement does), and it
   * may come after the use was judged: the connection stays readable for a
   * second after it.
   */
  private recordAnswer(conn: Conn, chunk: Buffer): void {
    if (conn.ev.http) return;
    conn.answer = conn.answer ? Buffer.concat([conn.answer, chunk]) : chunk;
    const end = conn.answer.indexOf('\r\n\r\n');
    if (end < 0 && conn.answer.length < MAX_ANSWER_HEAD) return;
    const head = conn.answer.subarray(0, end < 0 ? MAX_ANSWER_HEAD : end).toString('latin1');
    conn.answer = undefined;
    conn.ev.http = parseHttpAnswer(head) ?? {
      statusLine: JSON.stringify(head.split('\r\n')[0]!.slice(0, 80)),
      status: 0,
      keepAlive: false,
    };
  }

  /**
   * One keepalive probe now: with SO_KEEPALIVE on, lowering TCP_KEEPIDLE below
   * the time already idle makes the kernel send a probe at once
   * (tcp_sock_set_keepidle_locked). If it goes unanswered, the next timer
   * firing after TCP_KEEPINTVL finds TCP_USER_TIMEOUT exceeded and reports
   * ETIMEDOUT; a forgotten session that resets answers the probe with a RST.
   */
  private sendKeepaliveProbe(conn: Conn): void {
    const c = sockoptConstants();
    const fd = fdOf(conn.socket);
    setIntOption(fd, c.IPPROTO_TCP, c.TCP_USER_TIMEOUT!, this.ackWaitMs, 'TCP_USER_TIMEOUT');
    setIntOption(fd, c.IPPROTO_TCP, c.TCP_KEEPINTVL, Math.ceil(this.ackWaitMs / 1000), 'TCP_KEEPINTVL');
    setIntOption(fd, c.IPPROTO_TCP, c.TCP_KEEPIDLE, 1, 'TCP_KEEPIDLE');
    if (!conn.keepaliveOn) {
      setIntOption(fd, c.SOL_SOCKET, c.SO_KEEPALIVE, 1, 'SO_KEEPALIVE');
      conn.keepaliveOn = true;
    }
  }

  private unsolicited(conn: Conn, outcome: Outcome, detail: string): void {
    conn.ev.idleMs = Math.round(this.now() - conn.lastActivity);
    this.settle(conn, outcome, `${detail} after ${conn.ev.idleMs} ms idle`);
  }

  private settle(conn: Conn, outcome: Outcome, detail: string): void {
    if (conn.settled) return;
    conn.settled = true;
    conn.using = false;
    clearTimeout(conn.timer);
    clearTimeout(conn.poll);
    conn.ev.outcome = outcome;
    conn.ev.detail = detail;
    if (outcome === 'alive' && !conn.socket.destroyed) {
      conn.socket.end();
      setTimeout(() => conn.socket.destroy(), ANSWER_WAIT_MS).unref();
    } else conn.socket.destroy();
    if (this.finished) return;
    if (conn.ev.role === 'grid') this.afterGridResult(conn);
    this.maybeFinish();
  }

  private reconciling = false;

  private afterGridResult(conn: Conn): void {
    const idle = conn.ev.idleMs;
    if (idle !== undefined && conn.ev.usedAtMs !== undefined) {
      if (conn.ev.outcome === 'alive') this.lowMs = Math.max(this.lowMs ?? 0, idle);
      if (conn.ev.outcome === 'rst' || conn.ev.outcome === 'drop')
        this.highMs = Math.min(this.highMs ?? Number.POSITIVE_INFINITY, idle);
    }
    // Cancelling connections settles them, which lands here again.
    if (this.gridDone || this.reconciling) return;
    // Verification can start as soon as the path's limit is known, without waiting for the fine rounds.
    this.armVerify();
    this.reconciling = true;
    try {
      this.reconcile();
    } finally {
      this.reconciling = false;
    }
  }

  private reconcile(): void {
    const low = this.lowMs ?? 0;
    const high = this.highMs;
    // Pending guesses outside the bracket can no longer teach anything.
    for (const c of this.conns) {
      if (c.settled || c.using || c.ev.role !== 'grid') continue;
      const p = c.ev.plannedIdleMs!;
      if ((high !== undefined && p >= high) || (this.lowMs !== undefined && p <= this.lowMs)) {
        this.settle(c, 'cancelled', `the bracket moved past ${p} ms`);
      }
    }
    const pendingGrid = this.conns.filter((c) => c.ev.role === 'grid' && !c.settled);
    if (high !== undefined) {
      if (bracketDone(low, high, this.opts.precisionMs)) {
        this.endGrid();
        return;
      }
      const inBracket = pendingGrid.filter((c) => c.ev.plannedIdleMs! > low && c.ev.plannedIdleMs! < high);
      // Points started early on the bet that T lies in this gap have become the fine round.
      for (const c of inBracket) this.round = Math.max(this.round, c.ev.round);
      if (inBracket.length === 0) {
        // Nothing survived even the shortest idle tried: T is below --min, which bounds the search.
        if (this.lowMs === undefined) {
          this.endGrid();
          return;
        }
        const free = this.opts.connections - this.openCount();
        this.openRound(planRefinement(low, high, free, this.opts.precisionMs));
      }
    } else if (this.lowMs !== undefined) {
      // No failure yet, so T lies beyond `low`, perhaps before the next planned point. Start that
      // gap's finer points now: if the next point fails, they answer one gap sooner than a round
      // opened after the failure would. If it survives, they are cancelled above and their slots reused.
      const ahead = pendingGrid.map((c) => c.ev.plannedIdleMs!).filter((p) => p > low);
      const next = Math.min(...ahead);
      if (ahead.length > 0 && !ahead.some((p) => p < next)) {
        const free = this.opts.connections - this.openCount();
        this.openRound(planRefinement(low, next, free, this.opts.precisionMs), true);
      }
    }
    if (this.conns.every((c) => c.ev.role !== 'grid' || c.settled)) this.endGrid();
  }

  private endGrid(): void {
    if (this.gridDone) return;
    this.gridDone = true;
    this.gridDoneAt = this.now();
    for (const c of this.conns) {
      if (c.ev.role === 'grid' && !c.settled && !c.using) this.settle(c, 'cancelled', 'measurement complete');
    }
    this.armVerify();
  }

  /** The idle time the path allows, as far as the grid saw: the first failure or the first close without use. */
  private gridLimitMs(): number | undefined {
    const closes = this.conns
      .filter((c) => c.ev.role === 'grid' && (c.ev.outcome === 'fin' || c.ev.outcome === 'rst-by-server'))
      .map((c) => c.ev.idleMs!);
    const candidates = [...closes, ...(this.highMs !== undefined ? [this.highMs] : [])];
    return candidates.length ? Math.min(...candidates) : undefined;
  }

  private verifyHoldMs(): number | undefined {
    const limit = this.gridLimitMs();
    if (limit === undefined) return undefined;
    // Past the point where unprotected connections died, by a margin; not much longer, so that a
    // server's own idle close further out does not end the verification before it is made.
    return limit + Math.max(1000, Math.ceil(limit * 0.25));
  }

  private armVerify(): void {
    const hold = this.verifyHoldMs();
    for (const c of this.conns) {
      if (c.ev.role !== 'verify' || c.settled || c.using) continue;
      if (hold === undefined) {
        if (this.gridDone)
          this.settle(c, 'cancelled', `no expiry up to ${this.opts.maxMs} ms: nothing to verify against`);
        continue;
      }
      if (!c.connected) continue;
      clearTimeout(c.timer);
      const at = c.lastActivity + hold;
      c.timer = setTimeout(() => this.use(c), Math.max(0, at - this.now()));
    }
    this.maybeFinish();
  }

  /** Until when the watch connections must stay open for their evidence to mean something. */
  private watchUntilMs(): number {
    let until = this.gridDoneAt;
    const gridCloses = this.conns.filter(
      (c) => c.ev.role === 'grid' && (c.ev.outcome === 'fin' || c.ev.outcome === 'rst-by-server'),
    );
    for (const w of this.conns) {
      if (w.ev.role !== 'watch' || w.ev.connectedAtMs === undefined) continue;
      if (gridCloses.length > 0) {
        // To tell the server's close from a middlebox's, watchers must outlive the grid's closes by a margin.
        const s = median(gridCloses.map((c) => c.ev.idleMs!));
        until = Math.max(until, w.ev.connectedAtMs + s + Math.max(1000, s * 0.1));
      }
      if (this.opts.watchServerMs !== undefined)
        until = Math.max(until, w.ev.connectedAtMs + this.opts.watchServerMs);
    }
    return until;
  }

  private maybeFinish(): void {
    if (this.finished || !this.gridDone) return;
    if (this.conns.some((c) => c.ev.role === 'verify' && !c.settled)) return;
    const openWatchers = this.conns.filter((c) => c.ev.role === 'watch' && !c.settled);
    if (openWatchers.length > 0) {
      const until = this.watchUntilMs();
      if (this.now() < until) {
        for (const w of openWatchers) {
          clearTimeout(w.timer);
          w.timer = setTimeout(() => this.maybeFinish(), until - this.now() + 1);
        }
        return;
      }
    }
    this.finish();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    clearInterval(this.progressTimer);
    for (const c of this.conns) {
      if (c.settled) continue;
      if (c.ev.role === 'watch' && c.connected && !this.interrupted) {
        c.ev.idleMs = Math.round(this.now() - c.lastActivity);
        this.settle(
          c,
          'alive',
          `still open after ${c.ev.idleMs} ms with keepalive ${WATCH_KEEPALIVE.idle}s:${WATCH_KEEPALIVE.interval}s:${WATCH_KEEPALIVE.count}`,
        );
      } else this.settle(c, 'cancelled', this.interrupted ? 'interrupted' : 'probe finished');
    }
    this.hooks.onProgress?.(this.progress());
    void this.answersSettled().then(() => this.report());
  }

  /**
   * With `--payload http`, the last uses may have been acknowledged an instant
   * before the run ended: their answers are still on the way, and reporting
   * now would call them unanswered.
   */
  private async answersSettled(): Promise<void> {
    if (this.opts.payload.kind !== 'http' || this.interrupted) return;
    const waiting = () =>
      this.conns.some(
        (c) => c.ev.outcome === 'alive' && c.ev.usedAtMs !== undefined && !c.ev.http && !c.socket.destroyed,
      );
    const deadline = this.now() + ANSWER_WAIT_MS;
    while (waiting() && this.now() < deadline) await new Promise((r) => setTimeout(r, POLL_MS));
  }

  private report(): void {
    this.resolve({
      address: this.address,
      rttMs: Math.round(this.rttMs * 10) / 10,
      ackWaitMs: this.ackWaitMs,
      elapsedMs: Math.round(this.now()),
      rounds: this.round,
      connectionsOpened: this.conns.length,
      interrupted: this.interrupted,
      evidence: this.conns.map((c) => c.ev),
      watchKeepalive: WATCH_KEEPALIVE,
      idleAfterRequest: this.afterRequest,
    });
  }

  progress(): Progress {
    const pending = this.conns.filter((c) => !c.settled && c.connected && c.ev.role === 'grid');
    let estimate = this.now();
    for (const c of pending)
      estimate = Math.max(estimate, c.lastActivity + c.ev.plannedIdleMs! + this.ackWaitMs);
    if (this.gridDone) {
      const hold = this.verifyHoldMs();
      for (const c of this.conns) {
        if (c.ev.role === 'verify' && !c.settled && hold !== undefined)
          estimate = Math.max(estimate, c.lastActivity + hold + this.ackWaitMs);
      }
      estimate = Math.max(estimate, this.watchUntilMs());
    }
    const p: Progress = {
      elapsedMs: Math.round(this.now()),
      phase: this.finished
        ? 'done'
        : !this.gridDone
          ? 'measuring'
          : this.conns.some((c) => c.ev.role === 'verify' && !c.settled)
            ? 'verifying'
            : 'watching',
      open: this.openCount(),
      pendingTests: pending.length,
      round: this.round,
      estimateMs: Math.round(estimate),
      bounded: this.highMs === undefined && this.gridLimitMs() === undefined && !this.gridDone,
    };
    if (this.lowMs !== undefined) p.lowMs = this.lowMs;
    const limit = this.gridLimitMs();
    if (limit !== undefined) p.highMs = limit;
    return p;
  }
}
