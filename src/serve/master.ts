/**
 * The master process of `keepwire serve` with `worker_processes` 2 or more,
 * as nginx's: it reads and checks the configuration, owns every listening
 * socket, starts the workers and supervises them, and never serves traffic.
 *
 * Sockets. The master makes each listening socket with libc (src/kernel/
 * listen.ts: socket, SO_REUSEADDR, SO_REUSEPORT for `listen ... reuseport`,
 * bind, listen) and never accepts on it; every worker gets the descriptors as
 * inherited file descriptors (fork's extra stdio entries) and calls
 * `server.listen({ fd })`. The kernel then spreads connections: one shared
 * socket per address (every worker accepts from the one queue, as nginx
 * without `reuseport`), or with `reuseport` one socket per worker slot in one
 * SO_REUSEPORT group (the kernel hashes each connection to one of them, as
 * nginx with `reuseport`; this works on Node 20, which ignores `reusePort`).
 *
 * Why not the cluster module: with its default SCHED_RR the primary accepts
 * every connection and passes it to a worker (the master would serve
 * traffic, and one process's accept loop would be the bottleneck);
 * SCHED_NONE shares a handle the primary made through a private net API and
 * has no SO_REUSEPORT on Node 20; and neither lets a reload keep a socket
 * while swapping every worker. Owning the descriptors does: a reload starts
 * the new generation of workers on the same sockets (an address that stays
 * in the configuration is never closed, so there is no ECONNREFUSED window),
 * and only then tells the old workers to drain (SIGQUIT's path,
 * `Runtime.shutdown`); they close their copies, the socket stays open. While
 * no worker accepts (all restarting), connections wait in the backlog.
 *
 * Configuration. The master sends the Config it checked and resolved to each
 * worker (structured clone over IPC, ipc.ts); workers never read the file.
 *
 * Supervision. A worker that exits unasked is logged with its exit code or
 * signal and restarted on the same descriptors: at once when it had been
 * serving, with a doubling back-off (100 ms to 10 s) while restarts keep
 * failing before they listen. If the first generation cannot start at all,
 * the master stops the others and exits with the worker's status.
 *
 * Per-worker state, as nginx without a `zone`: passive health (max_fails),
 * least_conn counts, max_conns and upstream keep-alive pools are each
 * worker's own; `worker_connections` is per worker too.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Config, Listen } from '../config/model.js';
import { closeFd, openListeningSocket } from '../kernel/index.js';
import { httpAddresses } from '../proxy/http/index.js';
import { bindHost, listenKey } from '../proxy/listener.js';
import { makeTicketKeys } from '../proxy/tls.js';
import { listenError } from './index.js';
import { COLLECT_TIMEOUT_MS, FIRST_LISTEN_FD, type ToMaster, type ToWorker } from './ipc.js';
import {
  type ConfigLoader,
  loadForReload,
  type ServeIo,
  type ServeLog,
  takeSignals,
  workerCount,
} from './process.js';

const WORKER_MAIN = fileURLToPath(new URL('./worker-main.js', import.meta.url));
/** How long a new worker may take to listen before it counts as failed. */
const START_TIMEOUT_MS = 15_000;
const BACKOFF_FIRST_MS = 100;
const BACKOFF_MAX_MS = 10_000;
/** Beyond worker_shutdown_timeout, how long the master waits for a draining worker before SIGKILL. */
const KILL_MARGIN_MS = 5000;

export interface MasterOptions {
  file: string;
  load: ConfigLoader;
  io: ServeIo;
  signals: NodeJS.EventEmitter;
  log: ServeLog;
  /** The configuration serve already checked and resolved. */
  first: Config;
}

/** One listening address of a configuration, as the worker's Runtime keys it. */
interface Address {
  key: string;
  listen: Listen;
}

/**
 * Every address a configuration listens on, keyed as the worker's generations
 * key them (StreamGeneration: `host:port`, `#N` per port-0 listen in server
 * order; httpAddresses for http), so the worker finds its descriptor by key.
 */
export function configAddresses(config: Config): Address[] {
  const out: Address[] = [];
  let anonymous = 0;
  for (const server of config.stream?.servers ?? [])
    for (const listen of server.listens)
      out.push({
        key: listen.address.port === 0 ? `${listenKey(listen)}#${anonymous++}` : listenKey(listen),
        listen,
      });
  if (config.http) for (const a of httpAddresses(config.http)) out.push({ key: a.key, listen: a.listen });
  return out;
}

/** The listening socket(s) of one address: one, or with reuseport one per worker slot. */
interface Socket {
  key: string;
  listen: Listen;
  fds: number[];
  port: number;
}

interface Worker {
  child: ChildProcess;
  pid: number;
  generation: Generation;
  slot: number;
  listening: boolean;
  /** Told to drain (reload or stop): its exit is expected. */
  retiring: boolean;
  exited: Promise<void>;
}

interface Generation {
  id: number;
  config: Config;
  count: number;
  sockets: Map<string, Socket>;
  /** Made once for the generation and handed to each of its workers (ssl_session_tickets across workers). */
  ticketKeys: Buffer;
  workers: (Worker | undefined)[];
  /** Consecutive failed starts per slot (for the back-off). */
  failures: number[];
}

class StartFailure extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

export async function runMaster(opts: MasterOptions): Promise<number> {
  const { file, load, io, signals, log } = opts;
  const { logger } = log;
  let current: Generation | undefined;
  const old = new Set<Worker>();
  let stopping = false;
  let generationId = 0;
  const restartTimers = new Set<NodeJS.Timeout>();

  /** Opens what `config` needs that `keep` does not have; throws ConfigStartError (closing what it opened). */
  const openSockets = async (config: Config, count: number, keep?: Map<string, Socket>) => {
    const next = new Map<string, Socket>();
    const opened: number[] = [];
    try {
      for (const { key, listen } of configAddresses(config)) {
        const want = listen.reuseport ? count : 1;
        const s = listen.source;
        const at = `${s.file}:${s.line}:${s.col}`;
        const kept = listen.address.port === 0 ? undefined : keep?.get(key);
        if (kept && kept.listen.reuseport !== listen.reuseport)
          throw listenError(at, key, {
            name: 'Error',
            message: 'reuseport changed',
            code: `reuseport ${listen.reuseport ? 'added to' : 'removed from'} a bound address needs a restart (the bound socket ${listen.reuseport ? 'lacks' : 'has'} SO_REUSEPORT)`,
          });
        const fds = kept ? kept.fds.slice(0, want) : [];
        let port = kept?.port ?? listen.address.port;
        const host = await numericHost(bindHost(listen));
        while (fds.length < want) {
          try {
            const o = openListeningSocket({
              host,
              port,
              backlog: listen.backlog,
              reuseport: listen.reuseport,
            });
            opened.push(o.fd);
            fds.push(o.fd);
            port = o.port;
          } catch (error) {
            throw listenError(at, key.replace(/#.*$/, ''), error as NodeJS.ErrnoException);
          }
        }
        next.set(key, { key, listen, fds, port });
      }
    } catch (error) {
      for (const fd of opened) closeFd(fd);
      throw error;
    }
    return next;
  };

  /** Closes the descriptors of `from` that `to` does not use. */
  const closeUnused = (from: Map<string, Socket>, to: Map<string, Socket> | undefined) => {
    const used = new Set<number>();
    for (const s of to?.values() ?? []) for (const fd of s.fds) used.add(fd);
    for (const s of from.values()) for (const fd of s.fds) if (!used.has(fd)) closeFd(fd);
  };

  // ---- gather: a worker asks, every serving worker answers ----
  let collectId = 1;
  const collecting = new Map<number, (value: unknown) => void>();
  // The serving generation's workers answer; workers of an older generation
  // that are still draining are left out (their counters leave with them, as
  // an nginx worker's do after a reload without a zone).
  const gatherAll = async (topic: Extract<ToMaster, { type: 'gather' }>['topic']): Promise<unknown[]> => {
    const serving = (current?.workers ?? []).filter((w): w is Worker => w?.listening === true);
    const answers = await Promise.all(
      serving.map(
        (w) =>
          new Promise<unknown>((resolve) => {
            const id = collectId++;
            const done = (value: unknown) => {
              clearTimeout(timer);
              collecting.delete(id);
              resolve(value);
            };
            // A worker that dies or hangs is skipped, not waited for.
            const timer = setTimeout(() => done(undefined), COLLECT_TIMEOUT_MS);
            void w.exited.then(() => done(undefined));
            collecting.set(id, done);
            sendTo(w, { type: 'collect', id, topic });
          }),
      ),
    );
    return answers.filter((a) => a !== undefined);
  };

  const sendTo = (w: Worker, message: ToWorker) => {
    if (w.child.connected) w.child.send(message, (error) => error && undefined);
  };

  /** Forks one worker of `gen` in `slot`; resolves once it listens, rejects with StartFailure. */
  const startWorker = (gen: Generation, slot: number): Promise<Worker> => {
    const fds: Record<string, number> = {};
    const inherited: number[] = [];
    for (const s of gen.sockets.values()) {
      fds[s.key] = FIRST_LISTEN_FD + inherited.length;
      inherited.push(s.fds.length > 1 ? s.fds[slot]! : s.fds[0]!);
    }
    const child = fork(WORKER_MAIN, [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc', ...inherited],
      serialization: 'advanced',
      // Its own process group: a Ctrl-C at the terminal reaches the master
      // alone, which forwards it once (a worker that got it twice, from the
      // terminal and from the master, would take it as a second signal and
      // reset everything). systemd's unit has KillMode=mixed for the same reason.
      detached: true,
    });
    let resolveExit!: () => void;
    const w: Worker = {
      child,
      pid: child.pid ?? -1,
      generation: gen,
      slot,
      listening: false,
      retiring: false,
      exited: new Promise<void>((r) => {
        resolveExit = r;
      }),
    };
    gen.workers[slot] = w;
    sendTo(w, { type: 'start', config: gen.config, fds, generation: gen.id, ticketKeys: gen.ticketKeys });
    logger.info({ worker: w.pid, generation: gen.id, slot }, 'worker started');
    return new Promise<Worker>((resolve, reject) => {
      let failure: string | undefined;
      let failureCode = 1;
      const timer = setTimeout(() => {
        failure = `worker ${w.pid} did not listen within ${START_TIMEOUT_MS} ms`;
        child.kill('SIGKILL');
      }, START_TIMEOUT_MS);
      child.on('message', (m: ToMaster) => {
        if (m.type === 'listening') {
          clearTimeout(timer);
          w.listening = true;
          resolve(w);
        } else if (m.type === 'failed') {
          failure = m.message;
          failureCode = m.exitCode;
        } else if (m.type === 'gather')
          void gatherAll(m.topic).then((answers) => sendTo(w, { type: 'gathered', id: m.id, answers }));
        else if (m.type === 'collected') collecting.get(m.id)?.(m.value);
      });
      child.on('error', (error) => {
        failure ??= error.message;
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        resolveExit();
        old.delete(w);
        const was = w.listening;
        w.listening = false;
        if (gen.workers[slot] === w) gen.workers[slot] = undefined;
        const fields = { worker: w.pid, generation: gen.id, slot, code, signal };
        if (w.retiring) logger.info(fields, 'worker exited');
        else logger.error(fields, 'worker exited unexpectedly');
        if (!was) {
          reject(
            new StartFailure(
              failure ?? `worker exited with ${signal ?? `code ${code}`}`,
              code || failureCode,
            ),
          );
          return;
        }
        if (!w.retiring && !stopping && gen === current) restart(gen, slot, 0);
      });
    });
  };

  /** Starts `slot` of the running generation again after `delayMs`, doubling on each failure. */
  const restart = (gen: Generation, slot: number, delayMs: number) => {
    logger.info({ generation: gen.id, slot, delayMs }, 'worker restarting');
    const timer = setTimeout(() => {
      restartTimers.delete(timer);
      if (stopping || gen !== current) return;
      startWorker(gen, slot).then(
        () => {
          gen.failures[slot] = 0;
        },
        (error: Error) => {
          const n = (gen.failures[slot] ?? 0) + 1;
          gen.failures[slot] = n;
          logger.error({ generation: gen.id, slot, error: error.message }, 'worker failed to start');
          if (!stopping && gen === current)
            restart(gen, slot, Math.min(BACKOFF_FIRST_MS * 2 ** (n - 1), BACKOFF_MAX_MS));
        },
      );
    }, delayMs);
    restartTimers.add(timer);
  };

  /** Starts every worker of a generation; on any failure stops those that started and throws it. */
  const startGeneration = async (config: Config, sockets: Map<string, Socket>): Promise<Generation> => {
    const count = workerCount(config);
    const gen: Generation = {
      id: ++generationId,
      config,
      count,
      sockets,
      ticketKeys: makeTicketKeys(),
      workers: new Array(count).fill(undefined),
      failures: new Array(count).fill(0),
    };
    const results = await Promise.allSettled(
      Array.from({ length: count }, (_, slot) => startWorker(gen, slot)),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      for (const w of gen.workers) if (w) stopWorker(w, 'SIGTERM');
      await Promise.all(gen.workers.map((w) => w?.exited));
      throw failed.reason;
    }
    return gen;
  };

  /** Tells a worker to drain (SIGQUIT) or, after that, to stop now (SIGTERM); SIGKILL past the bound. */
  const stopWorker = (w: Worker, signal: 'SIGQUIT' | 'SIGTERM', reload = false) => {
    w.retiring = true;
    old.add(w);
    sendTo(w, reload ? { type: 'signal', signal, reload: true } : { type: 'signal', signal });
    if (!w.child.connected) w.child.kill(signal);
    const bound = setTimeout(
      () => w.child.kill('SIGKILL'),
      w.generation.config.shutdownTimeoutMs + KILL_MARGIN_MS,
    );
    void w.exited.then(() => clearTimeout(bound));
  };

  // ---- first generation ----
  let sockets: Map<string, Socket>;
  try {
    sockets = await openSockets(opts.first, workerCount(opts.first));
  } catch (error) {
    io.err(`${(error as Error).message}\n`);
    log.flush();
    return (error as { exitCode?: number }).exitCode ?? 1;
  }
  return new Promise<number>((resolve) => {
    let chain: Promise<void> = startGeneration(opts.first, sockets).then(
      (gen) => {
        current = gen;
        logger.info(
          {
            listen: [...gen.sockets.values()].map(
              (s) => `${s.key.replace(/#.*$/, '')}${s.listen.address.port === 0 ? `->${s.port}` : ''}`,
            ),
            workers: gen.workers.map((w) => w?.pid),
            generation: gen.id,
          },
          'started',
        );
      },
      (error: Error) => {
        closeUnused(sockets, undefined);
        io.err(`${error.message}\n`);
        logger.error({ error: error.message }, 'workers could not start');
        detach();
        log.flush();
        resolve(error instanceof StartFailure && error.exitCode !== 0 ? error.exitCode : 1);
        stopping = true;
      },
    );

    const reload = async () => {
      if (stopping || current === undefined) return;
      const running = current;
      const loaded = await loadForReload(file, load, io, logger);
      if (loaded === undefined) return;
      const { next, warnings } = loaded;
      if (warnings.length > 0) logger.warn({ file, diagnostics: warnings }, 'configuration warnings');
      let gen: Generation;
      let nextSockets: Map<string, Socket> | undefined;
      try {
        nextSockets = await openSockets(next, workerCount(next), running.sockets);
        gen = await startGeneration(next, nextSockets);
      } catch (error) {
        if (nextSockets) closeUnused(nextSockets, running.sockets);
        const message = (error as Error).message;
        io.err(`${message}\n`);
        logger.error({ file, error: message }, 'reload rejected: keeping the running configuration');
        return;
      }
      // The new generation accepts on every address; now the old one drains.
      current = gen;
      for (const w of running.workers) if (w) stopWorker(w, 'SIGQUIT', true);
      for (const t of restartTimers) clearTimeout(t);
      restartTimers.clear();
      // The master's copies of sockets the new configuration dropped: the
      // kernel socket closes when the draining workers closed theirs too.
      closeUnused(running.sockets, gen.sockets);
      logger.info({ generation: gen.id, workers: gen.workers.map((w) => w?.pid) }, 'reloaded');
    };

    const onHup = () => {
      chain = chain.then(reload);
    };
    let stopSignal: string | undefined;
    const onStop = (signal: string) => {
      if (stopSignal !== undefined) {
        if (signal === 'SIGQUIT') return;
        logger.info({ signal }, 'stopping now');
        for (const w of [...(current?.workers ?? []), ...old]) if (w) stopWorker(w, 'SIGTERM');
        return;
      }
      stopSignal = signal;
      logger.info({ signal }, 'shutting down');
      // As nginx's master: QUIT is passed on as QUIT (graceful, shutdown_delay
      // first), TERM and INT as TERM (fast stop).
      const forward = signal === 'SIGQUIT' ? 'SIGQUIT' : 'SIGTERM';
      void chain.then(async () => {
        stopping = true;
        for (const t of restartTimers) clearTimeout(t);
        const all = [...(current?.workers ?? []), ...old].filter((w): w is Worker => w !== undefined);
        for (const w of all) stopWorker(w, forward);
        await Promise.all(all.map((w) => w.exited));
        if (current) closeUnused(current.sockets, undefined);
        logger.info({}, 'stopped');
        detach();
        log.flush();
        resolve(0);
      });
    };
    const onTerm = () => onStop('SIGTERM');
    const onInt = () => onStop('SIGINT');
    const onQuit = () => onStop('SIGQUIT');
    const detach = takeSignals(signals, logger, {
      SIGHUP: onHup,
      SIGTERM: onTerm,
      SIGINT: onInt,
      SIGQUIT: onQuit,
    });
  });
}

/** A numeric address to bind (names resolve as at check time; the first answer, as nginx binds one). */
async function numericHost(host: string): Promise<string> {
  if (isIP(host) !== 0) return host;
  return (await lookup(host)).address;
}
