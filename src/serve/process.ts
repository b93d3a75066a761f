/**
 * `keepwire serve` as a process: load the configuration, start it, and map
 * signals onto the runtime like nginx's master process does.
 *
 *   SIGHUP           reload; a configuration that does not load or start is
 *                    rejected with its diagnostics and the running one stays
 *   SIGQUIT          nginx's graceful stop: for shutdown_delay keep serving
 *                    with health locations at 503 and `Connection: close`,
 *                    then stop accepting, drain live sessions for
 *                    worker_shutdown_timeout, then reset the rest; a second
 *                    SIGQUIT changes nothing
 *   SIGTERM, SIGINT  nginx's fast stop: the same drain without shutdown_delay;
 *                    a second signal resets at once
 *   SIGUSR1          nginx's "reopen logs" (logrotate sends it): logs go to
 *                    stdout, so there is nothing to reopen; one line says so.
 *                    Listening for it also keeps Node from opening its
 *                    inspector on 127.0.0.1:9229 (src/cli/no-inspector.ts)
 *   SIGUSR2          nginx's binary upgrade: not supported, one line says so
 *                    and serving goes on (without a listener it would kill
 *                    the process without draining)
 *
 * Every log line (lifecycle events, one per stream session, one per HTTP
 * request and per upstream retry) is JSON on stdout, the one log stream;
 * configuration diagnostics are also printed for the operator on stderr as
 * `file:line:col: ...` with the source line, and their headlines repeated in
 * the JSON line of the event (reload rejected, configuration warnings).
 *
 * `worker_processes` 2 or more at start: this process becomes the master
 * (master.ts) and the same signals go to it; each worker runs `runProcess`
 * (worker-main.ts) with the signals the master forwards. With 1 it stays one
 * process, as before, and a reload asking for more is refused (no master).
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import pino from 'pino';
import { type Diagnostic, formatDiagnostics } from '../config/diagnostics.js';
import type { Config } from '../config/model.js';
import { resolveNames } from '../config/resolve.js';
import { now } from '../proxy/clock.js';
import { type HttpLogRecord, requestFields } from '../proxy/http/index.js';
import type { SessionRecord } from '../proxy/stream.js';
import { ConfigStartError, Runtime, type RuntimeDeps } from './index.js';
import { runMaster } from './master.js';

export type ConfigLoader = (path: string) => {
  config?: Config;
  diagnostics: Diagnostic[];
  /** Text of the files read, to show the offending line. */
  sources?: ReadonlyMap<string, string>;
};

export interface ServeIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

export interface ServeOptions {
  file: string;
  load: ConfigLoader;
  io: ServeIo;
  /** Where signals come from; the real process by default. */
  signals?: NodeJS.EventEmitter;
}

export function renderDiagnostics(
  diagnostics: readonly Diagnostic[],
  known?: ReadonlyMap<string, string>,
): string {
  const sources = new Map<string, string | undefined>(known ?? []);
  const source = (file: string) => {
    if (!sources.has(file)) {
      try {
        sources.set(file, readFileSync(file, 'utf8'));
      } catch {
        sources.set(file, undefined);
      }
    }
    return sources.get(file);
  };
  return formatDiagnostics(diagnostics, source);
}

/** Loads and checks a configuration; prints diagnostics; returns the config only if it has no errors. */
export function loadChecked(file: string, load: ConfigLoader, io: ServeIo): Config | undefined {
  const { config, diagnostics, sources } = load(file);
  if (diagnostics.length > 0) io.err(renderDiagnostics(diagnostics, sources));
  if (config === undefined || diagnostics.some((d) => d.severity === 'error')) return undefined;
  const servers = (config.stream?.servers.length ?? 0) + (config.http?.servers.length ?? 0);
  if (servers === 0) {
    io.err(
      `${file}:1:1: error: nothing to serve: no stream { server { ... } } or http { server { ... } } block\n`,
    );
    return undefined;
  }
  return config;
}

/** The config if every host name in it resolves (nginx resolves them at start and reload too); prints the others. */
export async function resolved(config: Config | undefined, io: ServeIo): Promise<Config | undefined> {
  if (config === undefined) return undefined;
  const unresolved = await resolveNames(config);
  if (unresolved.length === 0) return config;
  io.err(renderDiagnostics(unresolved));
  return undefined;
}

/**
 * An io whose stderr text is also kept: what serve prints for the operator
 * (config errors and warnings) must reach the JSON log on stdout too, so a
 * log collector reading stdout alone sees why a reload was rejected.
 */
export function teeErrors(io: ServeIo): { io: ServeIo; headlines: () => string[] } {
  const text: string[] = [];
  return {
    io: {
      out: io.out,
      err: (t) => {
        text.push(t);
        io.err(t);
      },
    },
    // The `FILE:LINE:COL: severity: message` lines, without source excerpts and hints.
    headlines: () =>
      text
        .join('')
        .split('\n')
        .filter((l) => /^\S.*: (error|warning): /.test(l)),
  };
}

/**
 * The configuration a reload (SIGHUP) asks for, read, checked and resolved
 * as at start, for the one process and the master alike. With errors: they
 * go to stderr, the rejection to the log, and undefined comes back (the
 * running configuration stays). Otherwise the new configuration and the
 * headlines of its warnings, for the caller to log once it takes it.
 */
export async function loadForReload(
  file: string,
  load: ConfigLoader,
  io: ServeIo,
  logger: pino.Logger,
): Promise<{ next: Config; warnings: string[] } | undefined> {
  logger.info({ file }, 'reloading');
  const tee = teeErrors(io);
  let next: Config | undefined;
  try {
    next = await resolved(loadChecked(file, load, tee.io), tee.io);
  } catch (error) {
    tee.io.err(`${file}: error: ${(error as Error).message}\n`);
  }
  if (next === undefined) {
    logger.error(
      { file, diagnostics: tee.headlines() },
      'reload rejected: configuration has errors; keeping the running one',
    );
    return undefined;
  }
  return { next, warnings: tee.headlines() };
}

/** `worker_processes` as a number: `auto` is one per CPU this process may run on (nginx: ngx_ncpu). */
export function workerCount(config: Config): number {
  return config.workerProcesses === 'auto' ? availableParallelism() : config.workerProcesses;
}

/**
 * PIPE_BUF: a write to a pipe up to this many bytes is never interleaved with
 * another process's write (pipe(7)). Under a master, every worker writes its
 * lines to the same stdout, so each write carries whole lines and stays under it.
 */
const PIPE_BUF = 4096;

export interface ServeLog {
  logger: pino.Logger;
  /** The one line per HTTP request and per retry. */
  httpLine: (record: HttpLogRecord) => void;
  /** The one line per stream session. */
  sessionLine: (record: SessionRecord) => void;
  /** Writes what is queued now. */
  flush: () => void;
}

/**
 * The process's log: JSON lines on `io.out`, queued and written once per
 * event-loop turn; `shared` (a master and its workers on one stdout) cuts the
 * writes at line boundaries into pieces of at most PIPE_BUF bytes.
 */
export function createLog(io: ServeIo, shared = false): ServeLog {
  // Log lines leave in one write per event-loop turn: a busy HTTP proxy
  // writes a line per request, and a write call each was a measurable share
  // of its CPU (bench/http.ts profile).
  let pending: string[] = [];
  let flushScheduled = false;
  const flush = () => {
    flushScheduled = false;
    if (pending.length === 0) return;
    const lines = pending;
    pending = [];
    if (!shared) {
      io.out(lines.join(''));
      return;
    }
    let chunk = '';
    let bytes = 0;
    for (const line of lines) {
      const n = Buffer.byteLength(line);
      if (bytes + n > PIPE_BUF && chunk !== '') {
        io.out(chunk);
        chunk = '';
        bytes = 0;
      }
      chunk += line;
      bytes += n;
    }
    if (chunk !== '') io.out(chunk);
  };
  const queueLine = (line: string) => {
    pending.push(line);
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
  };
  const logger = pino(
    { base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    { write: (line: string) => queueLine(line) },
  );
  // The HTTP access log is the one line per request and the stream log the
  // one line per session: serialised by hand (requestJson) or by one
  // JSON.stringify instead of pino's per-field walk, the ISO time formatted
  // once per millisecond. Same fields as a pino info line; `msg` comes after
  // `pid` instead of last. For short stream sessions pino's walk and the
  // copy of the record without `msg` were 3 % of the process's CPU
  // (bench/short.ts profile).
  const pidField = `,"pid":${process.pid},`;
  let timeMs = 0;
  let lineHead = '';
  const head = () => {
    // The clock the request path read at the start of its I/O callback (proxy/clock.ts).
    const ms = now();
    if (ms !== timeMs) {
      timeMs = ms;
      lineHead = `{"level":30,"time":"${new Date(ms).toISOString()}"${pidField}`;
    }
    return lineHead;
  };
  const httpLine = (record: HttpLogRecord) => {
    const fields = record.msg === 'request' ? requestFields(record) : JSON.stringify(record).slice(1);
    queueLine(`${head()}${fields}\n`);
  };
  const sessionLine = (record: SessionRecord) => {
    queueLine(`${head()}${JSON.stringify(record).slice(1)}\n`);
  };
  return { logger, httpLine, sessionLine, flush };
}

/** The runtime's log sinks on a ServeLog. */
export function runtimeDeps(log: ServeLog): RuntimeDeps {
  return {
    sessionLog: log.sessionLine,
    httpLog: log.httpLine,
    event: (msg, fields) => log.logger.info(fields ?? {}, msg),
  };
}

/** Runs until a stop signal; resolves with the exit code. */
export async function serve(opts: ServeOptions): Promise<number> {
  const { io, file, load } = opts;
  const signals = opts.signals ?? process;
  const startTee = teeErrors(io);
  const first = await resolved(loadChecked(file, load, startTee.io), startTee.io);
  if (first === undefined) return 1;
  const workers = workerCount(first);
  const log = createLog(io, workers > 1);
  const startWarnings = startTee.headlines();
  if (startWarnings.length > 0)
    log.logger.warn({ file, diagnostics: startWarnings }, 'configuration warnings');
  // worker_processes 1 stays one process, as before workers existed: nothing
  // changes for it (no fork, no IPC); 2 or more run the master (master.ts).
  if (workers > 1) return runMaster({ file, load, io, signals, log, first });

  const runtime = new Runtime(runtimeDeps(log));
  return runProcess({
    runtime,
    first,
    log,
    io,
    signals,
    reload: async () => {
      const loaded = await loadForReload(file, load, io, log.logger);
      if (loaded === undefined) return;
      const { next, warnings } = loaded;
      const n = workerCount(next);
      if (n > 1) {
        // One process has no master to own sockets and supervise workers;
        // growing into one in place would hand live listeners across an exec.
        const message = `${file}: error: worker_processes ${n} needs a restart: this server was started with worker_processes 1 and runs as one process (no master); restart keepwire serve to run ${n} workers`;
        io.err(`${message}\n`);
        log.logger.error({ file, error: message }, 'reload rejected: keeping the running configuration');
        return;
      }
      if (warnings.length > 0) log.logger.warn({ file, diagnostics: warnings }, 'configuration warnings');
      try {
        await runtime.apply(next);
      } catch (error) {
        if (!(error instanceof ConfigStartError)) throw error;
        io.err(`${error.message}\n`);
        log.logger.error(
          { file, error: error.message },
          'reload rejected: keeping the running configuration',
        );
      }
    },
  });
}

export interface ProcessOptions {
  runtime: Runtime;
  first: Config;
  log: ServeLog;
  io: ServeIo;
  signals: NodeJS.EventEmitter;
  /** SIGHUP; undefined in a worker (reloads go through the master, which starts new workers). */
  reload?: () => Promise<void>;
  /** Called once the first configuration listens. */
  started?: () => void;
}

/**
 * Takes nginx's signals on `signals` (the process, or a test's emitter) for
 * one serving process or the master: HUP, TERM, INT and QUIT as `handlers`
 * say; USR1 and USR2 answered the same everywhere (every log line goes to
 * stdout, so there is nothing to reopen; no binary upgrade). Returns the
 * detach.
 */
export function takeSignals(
  signals: NodeJS.EventEmitter,
  logger: pino.Logger,
  handlers: Record<'SIGHUP' | 'SIGTERM' | 'SIGINT' | 'SIGQUIT', (why?: unknown) => void>,
): () => void {
  const all: Record<string, (why?: unknown) => void> = {
    ...handlers,
    SIGUSR1: () =>
      logger.info({ signal: 'SIGUSR1' }, 'reopen logs: nothing to reopen, every log line goes to stdout'),
    SIGUSR2: () => logger.warn({ signal: 'SIGUSR2' }, 'binary upgrade is not supported; still running'),
  };
  for (const [signal, fn] of Object.entries(all)) signals.on(signal, fn);
  return () => {
    for (const [signal, fn] of Object.entries(all)) signals.off(signal, fn);
  };
}

/**
 * One serving process (the single process, or one worker): applies the
 * first configuration and maps signals onto the runtime until it stopped.
 */
export function runProcess(opts: ProcessOptions): Promise<number> {
  const { runtime, first, log, io, signals } = opts;
  const { logger, flush } = log;
  return new Promise<number>((resolve) => {
    let stopping = false;
    // Signals are taken from before the first listener opens: a SIGTERM that
    // arrives right after the "started" line must drain, not kill the process.
    let reloading: Promise<void> = runtime.apply(first).then(
      () => opts.started?.(),
      (error: unknown) => {
        if (!(error instanceof ConfigStartError)) throw error;
        io.err(`${error.message}\n`);
        stopping = true;
        detachSignals();
        flush();
        resolve(error.exitCode);
      },
    );

    const onHup = () => {
      if (stopping) return;
      const reload = opts.reload;
      if (reload === undefined) {
        logger.info({ signal: 'SIGHUP' }, 'reload goes through the master process; a worker ignores SIGHUP');
        return;
      }
      reloading = reloading.then(reload);
    };

    const onStop = (signal: string, reload = false) => {
      if (stopping && signal === 'SIGQUIT') return;
      if (stopping) {
        // Second signal: do not wait for the grace period.
        logger.info({ signal }, 'stopping now');
        runtime.terminateAll();
        return;
      }
      stopping = true;
      logger.info({ signal }, 'shutting down');
      void reloading
        // Only the graceful stop waits shutdown_delay (the runtime's default); a fast stop does not.
        .then(() =>
          runtime.shutdown(
            runtime.active?.shutdownTimeoutMs ?? 0,
            signal === 'SIGQUIT' ? undefined : 0,
            // An old worker generation of a reload: the instance stays, so `health` stays 200.
            reload ? 'reload' : 'stop',
          ),
        )
        .then(() => {
          detachSignals();
          flush();
          resolve(0);
        });
    };
    const onTerm = () => onStop('SIGTERM');
    const onInt = () => onStop('SIGINT');
    // The master tells an old worker generation of a reload with the argument 'reload' (worker-main.ts); a real signal passes its name.
    const onQuit = (why?: unknown) => onStop('SIGQUIT', why === 'reload');
    const detachSignals = takeSignals(signals, logger, {
      SIGHUP: onHup,
      SIGTERM: onTerm,
      SIGINT: onInt,
      SIGQUIT: onQuit,
    });
  });
}
