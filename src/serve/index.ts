/**
 * Runs a Config: builds one list of generations from it (the `stream {}`
 * block's StreamGeneration, the `http {}` block's HttpGeneration, both with
 * one runtime Upstream per group), binds their addresses, and carries the
 * process through reloads and shutdown with the one Generation lifecycle.
 *
 * Reload (SIGHUP) builds a new generation next to the old one. Addresses in
 * both configurations keep their bound socket and simply switch handler, so
 * no connection is refused during the swap; sessions accepted earlier stay
 * with the generation (and upstream objects) they started on until they end.
 * If anything in the new configuration cannot be started, nothing changes.
 */
import type { Config, Listen } from '../config/model.js';
import type { KeepaliveFailureLog } from '../keepalive/applier.js';
import { type Generation, GenerationBuildError, StreamGeneration } from '../proxy/generation.js';
import { HttpGeneration, type HttpLogRecord, httpAddresses } from '../proxy/http/index.js';
import { ConnectionLimiter } from '../proxy/limits.js';
import { Listener } from '../proxy/listener.js';
import type { SessionRecord } from '../proxy/stream.js';
import type { SessionCore } from '../proxy/stream-session.js';
import { makeTicketKeys } from '../proxy/tls.js';

export interface RuntimeDeps {
  sessionLog: (record: SessionRecord) => void;
  /** One line per HTTP request and per upstream retry. */
  httpLog?: (record: HttpLogRecord) => void;
  /** Lifecycle events (started, reloaded, draining, stopped). */
  event?: (msg: string, fields?: Record<string, unknown>) => void;
  /**
   * A worker under a master: the listening descriptor the master handed this
   * process for an address key (src/serve/master.ts); the address is then
   * never bound here. Undefined (one process): every address is bound here.
   */
  inheritedFd?: (key: string) => number | undefined;
  /**
   * A worker under a master: the TLS session ticket keys of its worker
   * generation, made once by the master (proxy/tls.ts makeTicketKeys), so a
   * ticket issued by one worker resumes on every other. Undefined (one
   * process): each configuration generation makes its own.
   */
  ticketKeys?: Buffer;
}

export class ConfigStartError extends Error {
  override name = 'ConfigStartError';
  constructor(
    message: string,
    /** Exit status of `serve` when this stops it at start: 2 for a missing capability (README "CLI"). */
    readonly exitCode: 1 | 2 = 1,
  ) {
    super(message);
  }
}

/**
 * Why an address cannot be bound, in one line with what to do about it, the
 * way `nginx: [emerg] bind() to 0.0.0.0:80 failed (98: Address already in
 * use)` is one line. A privileged port without the capability is a missing
 * capability (exit 2); the rest are failures of this start (exit 1).
 */
export function listenError(at: string, key: string, error: NodeJS.ErrnoException): ConfigStartError {
  const code = error.code ?? error.message;
  const port = /:(\d+)$/.exec(key)?.[1] ?? '';
  const [what, hint, exit]: [string, string, 1 | 2] =
    code === 'EADDRINUSE'
      ? [
          'address already in use',
          `another process listens there: ss -ltnp 'sport = :${port}' shows which`,
          1,
        ]
      : code === 'EACCES' || code === 'EPERM'
        ? [
            'permission denied',
            'ports below net.ipv4.ip_unprivileged_port_start (1024 by default) need CAP_NET_BIND_SERVICE (root has it unless dropped; systemd: AmbientCapabilities=CAP_NET_BIND_SERVICE)',
            2,
          ]
        : code === 'EADDRNOTAVAIL'
          ? ['address not available', 'no interface of this host has that address: ip -br addr lists them', 1]
          : [code, 'see the listen directive', 1];
  return new ConfigStartError(
    `${at}: error: cannot listen on ${key}: ${what} (${code})\n  hint: ${hint}`,
    exit,
  );
}

export class Runtime {
  readonly limiter = new ConnectionLimiter(0);
  private listeners = new Map<string, Listener>();
  /** The running generation's proxies: stream first, then HTTP. */
  private current: Generation[] = [];
  /** Earlier generations that still carry live sessions or connections. */
  private readonly retired = new Set<Generation>();
  private config: Config | undefined;
  private stopping = false;
  /** Ends the shutdown_delay under way early (terminateAll). */
  private endDelay: (() => void) | undefined;

  /** A keepalive setting the kernel refused: one line naming the directive, the connection goes on. */
  private readonly keepaliveFailed: KeepaliveFailureLog | undefined;

  constructor(private readonly deps: RuntimeDeps) {
    const event = deps.event;
    if (event) this.keepaliveFailed = (failure) => event('keepalive not applied', { ...failure });
  }

  get active(): Config | undefined {
    return this.config;
  }

  /** Every generation with something live, oldest first. */
  private generations(): Generation[] {
    return [...this.retired, ...this.current];
  }

  /** Live sessions across every generation. */
  get sessionCount(): number {
    let n = 0;
    for (const g of this.generations()) n += g.liveCount;
    return n;
  }

  /** The running HTTP generation (for tests and diagnostics). */
  get httpGeneration(): HttpGeneration | undefined {
    return this.current.find((g): g is HttpGeneration => g instanceof HttpGeneration);
  }

  /** Cuts every live session and HTTP connection now (second stop signal); ends a shutdown_delay. */
  terminateAll(): void {
    this.endDelay?.();
    for (const g of this.generations()) g.stop();
  }

  /** Live stream sessions across every generation, oldest generation first. */
  liveSessions(): SessionCore[] {
    return this.generations().flatMap((g) => (g instanceof StreamGeneration ? g.sessions() : []));
  }

  /** Ports actually bound, in listen order (for tests that listen on port 0). */
  boundPorts(): number[] {
    return [...this.listeners.values()].map((l) => l.port);
  }

  /** Starts a configuration, or replaces the running one. Throws ConfigStartError and keeps the old one on failure. */
  async apply(config: Config): Promise<void> {
    if (this.stopping) throw new ConfigStartError('shutting down');
    const built: Generation[] = [];
    // One set of TLS session ticket keys per configuration generation, for every ssl address of it.
    const ticketKeys = this.deps.ticketKeys ?? makeTicketKeys();
    try {
      // One runtime Upstream per group for the whole generation (see Upstreams).
      if (config.stream && config.stream.servers.length > 0)
        built.push(
          new StreamGeneration(config.stream, {
            ticketKeys,
            limiter: this.limiter,
            log: this.deps.sessionLog,
            ...(this.keepaliveFailed && { keepaliveFailed: this.keepaliveFailed }),
          }),
        );
      const addresses = config.http ? httpAddresses(config.http) : [];
      if (config.http && addresses.length > 0)
        built.push(
          new HttpGeneration(config.http, addresses, {
            ticketKeys,
            limiter: this.limiter,
            log: this.deps.httpLog ?? (() => {}),
            ...(this.keepaliveFailed && { keepaliveFailed: this.keepaliveFailed }),
          }),
        );
    } catch (error) {
      if (error instanceof GenerationBuildError) throw new ConfigStartError(error.message);
      throw error;
    }

    const next = new Map<string, Listener>();
    const opened: Listener[] = [];
    const bindings: Listener[][] = [];
    /** The listener for `key`: the running one (a reload keeps it bound), else a new one opened now. */
    const listenerFor = async (listen: Listen, key: string): Promise<Listener> => {
      let listener = listen.address.port === 0 ? undefined : this.listeners.get(key);
      if (listener === undefined) {
        listener = new Listener(listen);
        try {
          await listener.open(this.deps.inheritedFd?.(key));
        } catch (error) {
          const s = listen.source;
          throw listenError(
            `${s.file}:${s.line}:${s.col}`,
            key.replace(/#\d+$/, ''),
            error as NodeJS.ErrnoException,
          );
        }
        opened.push(listener);
      }
      next.set(key, listener);
      return listener;
    };
    try {
      for (const gen of built) {
        const mine: Listener[] = [];
        for (const { key, listen } of gen.addresses) {
          if (next.has(key)) {
            const s = listen.source;
            const also = gen.kind === 'http' ? ' (also used by stream)' : '';
            throw new ConfigStartError(`${s.file}:${s.line}:${s.col}: duplicate listen ${key}${also}`);
          }
          mine.push(await listenerFor(listen, key));
        }
        bindings.push(mine);
      }
    } catch (error) {
      for (const l of opened) l.close();
      throw error;
    }

    // Point of no return: swap generations.
    this.limiter.limit = config.workerConnections;
    for (const old of this.current) this.retire(old);
    this.current = built;
    for (const [i, gen] of built.entries()) gen.start(bindings[i]!);
    for (const [key, l] of this.listeners) if (!next.has(key)) l.close();
    this.listeners = next;
    const first = this.config === undefined;
    this.config = config;
    this.deps.event?.(first ? 'started' : 'reloaded', {
      listen: [...next.values()].map(
        (l) => `${l.key.replace(/#\d+$/, '')}${l.listen.address.port === 0 ? `->${l.port}` : ''}`,
      ),
      servers: (config.stream?.servers.length ?? 0) + (config.http?.servers.length ?? 0),
    });
  }

  private retire(gen: Generation): void {
    // A reload in this process: the new generation took the listeners, so
    // the old one accepts nothing and has no shutdown_delay to wait (the
    // process is not going away, so its health locations keep answering 200;
    // a worker process of an old generation stops through shutdown()).
    // Idle keep-alive clients are not cut (see HttpFrontend.detach).
    gen.detach(false);
    if (gen.liveCount === 0) return;
    this.retired.add(gen);
    void gen.drained().then(() => this.retired.delete(gen));
  }

  /**
   * Graceful shutdown. First, for `delayMs` (`shutdown_delay` by default;
   * 0 for a fast stop), everything is still accepted and served, but HTTP
   * `health` locations answer 503 and every HTTP response says `Connection:
   * close` (Generation.announceDrain), so the load balancer deregisters this
   * instance and keep-alive clients leave; a second stop signal
   * (terminateAll) ends the delay. Then stop accepting, let live sessions
   * finish for up to `graceMs` (idle HTTP keep-alive connections close after
   * a response with `Connection: close` or at their keepalive_timeout, never
   * at once: HttpFrontend.detach), then reset the rest (reason `shutdown`).
   * Returns how many were reset.
   *
   * `why` 'reload': this process is an old generation being replaced while
   * the instance stays (a worker of a reload): the delay and `Connection:
   * close` are the same, but `health` keeps answering 200, since a 503 from
   * an old worker would make the load balancer count the whole instance as
   * failing.
   */
  async shutdown(
    graceMs: number,
    delayMs = this.config?.shutdownDelayMs ?? 0,
    why: 'stop' | 'reload' = 'stop',
  ): Promise<{ drained: number; reset: number }> {
    this.stopping = true;
    // The running generation first: its sessions are reset (and logged) first, as before.
    const all = [...this.current, ...this.retired];
    for (const g of all) g.announceDrain(why === 'stop');
    if (delayMs > 0) {
      this.deps.event?.('shutdown delay', { delayMs, sessions: this.sessionCount, why });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delayMs);
        this.endDelay = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.endDelay = undefined;
      this.deps.event?.('shutdown delay over', { sessions: this.sessionCount });
    }
    for (const l of this.listeners.values()) l.close();
    this.listeners.clear();
    for (const g of all) g.detach(false);
    const before = this.sessionCount;
    this.deps.event?.('draining', { sessions: before, graceMs });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(all.map((g) => g.drained())),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs);
      }),
    ]);
    clearTimeout(timer);
    const reset = this.sessionCount;
    for (const g of all) g.stop();
    await Promise.all(all.map((g) => g.drained()));
    this.deps.event?.('stopped', { drained: before - reset, reset });
    return { drained: before - reset, reset };
  }
}
