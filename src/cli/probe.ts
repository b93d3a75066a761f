/**
 * `keepwire probe HOST:PORT`: measures how long a connection may stay idle on
 * the real path to a service, who ends it (a middlebox or the server itself)
 * and how, in about the time of the timeout.
 *
 * Exit codes: 0 measured (including "no expiry up to --max") and every
 * --verify-keepalive spec survived; 1 the target could not be probed
 * (unresolvable, refused, unreachable, no answer) or a --verify-keepalive spec
 * did not survive; 2 usage error; 130 interrupted (Ctrl-C, SIGTERM), after
 * closing every connection and printing what was known.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { KeepaliveSpec } from '../keepalive/spec.js';
import { parseSoKeepalive } from '../keepalive/spec.js';
import { ProbeError, type Progress, runProbe } from '../probe/engine.js';
import {
  DEFAULT_CONNECTIONS,
  MAX_CONNECTIONS,
  MAX_IDLE_MS,
  MIN_GRID_CONNECTIONS,
  parsePayload,
  parseTarget,
  VERIFY_CONNECTIONS_PER_SPEC,
  WATCH_CONNECTIONS,
} from '../probe/plan.js';
import { buildReport, fmt, renderReport } from '../probe/report.js';
import { parseDuration } from '../units/time.js';
import { EXIT, UsageError } from './errors.js';
import type { Io } from './io.js';

export const EXIT_INTERRUPTED = 130;

function durationArg(value: string): number {
  const parsed = parseDuration(value);
  if (!parsed.ok) throw new InvalidArgumentError(parsed.error.message);
  return parsed.value;
}

function intArg(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`expected a whole number, got "${value}"`);
  return Number(value);
}

function specsArg(value: string, previous: { text: string; spec: KeepaliveSpec }[] = []) {
  const parsed = parseSoKeepalive(value);
  if (!parsed.ok) {
    const e = parsed.error;
    throw new InvalidArgumentError(`${e.message} (column ${e.column})${e.hint ? `; ${e.hint}` : ''}`);
  }
  return [...previous, { text: value, spec: parsed.value }];
}

interface ProbeCliOptions {
  max: number;
  min: number;
  precision: number;
  connections: number;
  payload: string;
  verifyKeepalive?: { text: string; spec: KeepaliveSpec }[];
  watchServer?: number;
  connectTimeout: number;
  json?: boolean;
  progress?: boolean;
}

function renderProgress(p: Progress): string {
  const bracket =
    p.highMs !== undefined
      ? `T in (${fmt(p.lowMs ?? 0)}, ${fmt(p.highMs)}]`
      : p.lowMs !== undefined
        ? `T > ${fmt(p.lowMs)}`
        : 'T unknown yet';
  const eta = `${fmt(p.elapsedMs)} of ${p.bounded ? 'at most ' : '~'}${fmt(p.estimateMs)}`;
  return `probe: ${p.phase}, ${bracket}, ${p.open} connections open (round ${p.round}), ${eta}`;
}

export function registerProbe(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command('probe')
    .description(
      "measure a real path's idle timeout, who enforces it (middlebox or server) and what happens at expiry",
    )
    .argument('<host:port>', 'the service to probe, e.g. db.internal:5432 or [2001:db8::1]:443')
    .addOption(
      new Option('--max <time>', 'longest idle time to look for (at most 9h)')
        .argParser(durationArg)
        .default(900_000, '900s'),
    )
    .addOption(
      new Option('--min <time>', 'shortest idle time to look for').argParser(durationArg).default(1000, '1s'),
    )
    .addOption(
      new Option('--precision <time>', 'report T within ± this').argParser(durationArg).default(1000, '1s'),
    )
    .addOption(
      new Option(
        '--connections <n>',
        `connections open at once, all included (hard cap ${MAX_CONNECTIONS}); more connections, fewer rounds`,
      )
        .argParser(intArg)
        .default(DEFAULT_CONNECTIONS),
    )
    .addOption(
      new Option(
        '--payload <what>',
        'how an idle connection is used: none (one TCP keepalive probe, no application byte), http (a HEAD request), or HEX bytes',
      ).default('none'),
    )
    .addOption(
      new Option(
        '--verify-keepalive <spec>',
        'also hold connections with this keepalive (nginx so_keepalive syntax, e.g. 60s:10s:3) past the measured timeout; repeatable',
      ).argParser(specsArg),
    )
    .addOption(
      new Option(
        '--watch-server <time>',
        "keep keepalive'd connections idle this long to find the server's own idle close behind a shorter middlebox (default: as long as the measurement runs)",
      ).argParser(durationArg),
    )
    .addOption(
      new Option('--connect-timeout <time>', 'how long a connection attempt may take')
        .argParser(durationArg)
        .default(5000, '5s'),
    )
    .option('--json', 'print the report as JSON (bracket, estimate, expiry, evidence per connection)')
    .option('--progress', 'show progress on stderr even when it is not a terminal')
    .addHelpText(
      'after',
      `
With the default ${DEFAULT_CONNECTIONS} connections a probe takes about 2·T (a coarse round, then a fine one).
With --connections >= (max - min) / (1.8 · precision) + ${WATCH_CONNECTIONS + 2} one round suffices: about T.
Exit status: 0 measured (including no expiry up to --max) and every --verify-keepalive spec survived;
1 target unreachable, refused or unresolvable, or a --verify-keepalive spec did not survive;
2 usage error; 130 interrupted (every connection is closed first).`,
    )
    .action(async (targetText: string, opts: ProbeCliOptions) => {
      const target = parseTarget(targetText);
      if ('error' in target) throw new UsageError(target.error);
      const payload = parsePayload(opts.payload);
      if ('error' in payload) throw new UsageError(payload.error);
      if (opts.max > MAX_IDLE_MS - 60_000 || opts.max > 9 * 3_600_000)
        throw new UsageError('--max is limited to 9h', 'a probe holds connections idle for up to --max');
      if (opts.min < 100) throw new UsageError('--min must be at least 100ms');
      if (opts.min >= opts.max)
        throw new UsageError(`--min (${fmt(opts.min)}) must be below --max (${fmt(opts.max)})`);
      if (opts.precision < 100) throw new UsageError('--precision must be at least 100ms');
      if (opts.connectTimeout < 100) throw new UsageError('--connect-timeout must be at least 100ms');
      const verify = opts.verifyKeepalive ?? [];
      const reserved = WATCH_CONNECTIONS + VERIFY_CONNECTIONS_PER_SPEC * verify.length;
      if (opts.connections > MAX_CONNECTIONS)
        throw new UsageError(
          `--connections ${opts.connections} is above the hard cap of ${MAX_CONNECTIONS}`,
          'the probe is meant to be polite to a production service',
        );
      if (opts.connections < reserved + MIN_GRID_CONNECTIONS)
        throw new UsageError(
          `--connections must be at least ${reserved + MIN_GRID_CONNECTIONS} here (${WATCH_CONNECTIONS} watch, ${VERIFY_CONNECTIONS_PER_SPEC} per --verify-keepalive, ${MIN_GRID_CONNECTIONS} to measure)`,
        );
      const probeOpts = {
        host: target.host,
        port: target.port,
        minMs: opts.min,
        maxMs: opts.max,
        precisionMs: opts.precision,
        connections: opts.connections,
        payload,
        verify,
        connectTimeoutMs: opts.connectTimeout,
        ...(opts.watchServer !== undefined ? { watchServerMs: opts.watchServer } : {}),
      };
      const showProgress = opts.progress === true || process.stderr.isTTY === true;
      const tty = process.stderr.isTTY === true;
      let lastLine = 0;
      const onProgress = showProgress
        ? (p: Progress) => {
            if (tty) io.err(`\r\x1b[K${renderProgress(p)}${p.phase === 'done' ? '\n' : ''}`);
            else if (p.phase === 'done' || p.elapsedMs - lastLine >= 2000) {
              lastLine = p.elapsedMs;
              io.err(`${renderProgress(p)}\n`);
            }
          }
        : undefined;
      const controller = new AbortController();
      const stop = () => controller.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        const raw = await runProbe(probeOpts, {
          signal: controller.signal,
          ...(onProgress ? { onProgress } : {}),
        });
        const report = buildReport(probeOpts, raw, opts.payload.toLowerCase());
        io.out(opts.json ? `${JSON.stringify(report, null, 2)}\n` : renderReport(report));
        if (report.interrupted) setExit(EXIT_INTERRUPTED);
        else if (report.verdict === 'inconclusive' || report.verify.some((v) => v.survived === false))
          setExit(EXIT.failed);
        else setExit(EXIT.ok);
      } catch (error) {
        if (!(error instanceof ProbeError)) throw error;
        if (opts.json) io.out(`${JSON.stringify({ error: error.kind, message: error.message }, null, 2)}\n`);
        io.err(`keepwire probe: ${error.message}\n`);
        setExit(EXIT.failed);
      } finally {
        process.removeListener('SIGINT', stop);
        process.removeListener('SIGTERM', stop);
      }
    });
}
