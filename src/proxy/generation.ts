/**
 * The lifecycle every proxy of one configuration generation shares, so the
 * runtime (`src/serve`) keeps one list of generations and treats the stream
 * and HTTP proxies alike: build from the model (constructor, may throw
 * GenerationBuildError) → start on the listeners the runtime bound for its
 * addresses → announceDrain (a graceful stop: still serving, but saying so)
 * → detach (a reload or shutdown: no new connections) → drained (live ones
 * ended) → stop (reset what is left).
 */
import type { Listen, StreamBlock } from '../config/model.js';
import { Upstreams } from '../upstream/index.js';
import { GenerationBuildError } from './build-error.js';
import { type Listener, listenKey } from './listener.js';
import { type StreamDeps, StreamProxy } from './stream.js';
import type { SessionCore } from './stream-session.js';

export { GenerationBuildError };

/** A listening address a generation needs, identified by `key` (shared across reloads when equal). */
export interface GenerationAddress {
  key: string;
  listen: Listen;
}

export interface Generation {
  readonly kind: 'stream' | 'http';
  /** What to bind; `start` gets one listener per address, in this order. */
  readonly addresses: readonly GenerationAddress[];
  start(listeners: readonly Listener[]): void;
  /**
   * The process is stopping (graceful stop, from the start of
   * `shutdown_delay`): connections are still accepted and served, but HTTP
   * `health` locations answer 503 and every HTTP response says `Connection:
   * close`, so a load balancer and keep-alive clients leave before the
   * listeners close. Stream sessions are not told anything (TCP has no way).
   * `healthDown` false (an old generation replaced by a reload while the
   * instance stays): `health` keeps answering 200.
   */
  announceDrain(healthDown?: boolean): void;
  /**
   * Stops taking connections; the listeners are closed by their owner. Idle
   * HTTP keep-alive clients are not cut, on a reload or a shutdown: each
   * closes after a response with `Connection: close` or at its
   * keepalive_timeout (HttpFrontend.detach). `closeIdle` true closes them
   * now (the old, nginx-like behaviour; only for cutting everything).
   */
  detach(closeIdle?: boolean): void;
  /** Resolves once every live connection or session has ended. */
  drained(): Promise<void>;
  /** Resets what is left (shutdown deadline, second stop signal). */
  stop(): void;
  /** Live sessions, connections and tunnels. */
  readonly liveCount: number;
}

/** What every stream server of the generation shares: the connection cap, the session log, the keepalive failure log. */
export type StreamGenerationDeps = StreamDeps;

/**
 * The `stream {}` block of one generation: a StreamProxy per server block,
 * all sharing one runtime Upstream per group (`Upstreams`).
 */
export class StreamGeneration implements Generation {
  readonly kind = 'stream';
  readonly addresses: GenerationAddress[] = [];
  readonly proxies: StreamProxy[] = [];
  readonly upstreams: Upstreams;
  /** For each proxy, the indexes of its addresses. */
  private readonly owned: number[][] = [];

  constructor(block: StreamBlock | undefined, deps: StreamGenerationDeps) {
    this.upstreams = new Upstreams(block?.upstreams ?? new Map());
    let anonymous = 0;
    for (const server of block?.servers ?? []) {
      const upstream = this.upstreams.for(server.proxyPass, server.source);
      if (upstream === undefined) {
        const s = server.source;
        const name = server.proxyPass.kind === 'group' ? server.proxyPass.name : '';
        throw new GenerationBuildError(`${s.file}:${s.line}:${s.col}: no upstream group "${name}"`);
      }
      this.proxies.push(new StreamProxy(server, upstream, deps));
      const mine: number[] = [];
      for (const listen of server.listens) {
        // Port 0 asks the kernel for a fresh port each time: never shared.
        const key = listen.address.port === 0 ? `${listenKey(listen)}#${anonymous++}` : listenKey(listen);
        mine.push(this.addresses.length);
        this.addresses.push({ key, listen });
      }
      this.owned.push(mine);
    }
  }

  start(listeners: readonly Listener[]): void {
    for (const [i, proxy] of this.proxies.entries()) {
      const bound = new Map<Listen, Listener>();
      for (const at of this.owned[i]!) bound.set(this.addresses[at]!.listen, listeners[at]!);
      proxy.start(bound);
    }
  }

  /** Stream sessions drain as they are: nothing to announce on a TCP stream. */
  announceDrain(): void {}

  detach(): void {
    for (const p of this.proxies) p.detach();
  }

  drained(): Promise<void> {
    return Promise.all(this.proxies.map((p) => p.drained())).then(() => {});
  }

  stop(): void {
    for (const p of this.proxies) p.stop();
  }

  get liveCount(): number {
    let n = 0;
    for (const p of this.proxies) n += p.sessions.size;
    return n;
  }

  /** Live sessions (for tests and diagnostics). */
  sessions(): SessionCore[] {
    return this.proxies.flatMap((p) => [...p.sessions]);
  }
}
