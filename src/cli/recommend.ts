/**
 * `keepwire recommend`: the settings that follow from a load balancer's idle
 * timeout (--lb-idle T, or --lb PROFILE from doctor's profiles), as the
 * reasoning (default) or as a ready-to-paste snippet for one tool (--for).
 * The knowledge is in keepalive/recommend.ts and advisor/snippets.ts.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { isTarget, snippet, TARGETS } from '../advisor/snippets.js';
import { middleboxFromArg, ProfileError } from '../doctor/profiles.js';
import { type Recommendation, recommend, sysctlLines } from '../keepalive/recommend.js';
import { parseDuration } from '../units/time.js';
import { UsageError } from './errors.js';
import type { Io } from './io.js';

/** Parses a time argument such as `90s` or `1m30s` into whole seconds. */
export function secondsArg(value: string): number {
  const parsed = parseDuration(value);
  if (!parsed.ok) throw new InvalidArgumentError(parsed.error.message);
  if (parsed.value % 1000 !== 0)
    throw new InvalidArgumentError(`"${value}" is not a whole number of seconds`);
  return parsed.value / 1000;
}

interface RecommendOptions {
  lbIdle?: number;
  lb?: string;
  margin?: number;
  for?: string;
  json?: boolean;
}

function reasoningText(rec: Recommendation, source: string): string {
  const k = rec.keepalive;
  return [
    `LB idle timeout ${rec.lbIdleTimeout}s${source}:`,
    `  TCP keepalive         idle ${k.idle}s, interval ${k.interval}s, count ${k.count} (dead peer noticed after ${rec.detectionTime}s)`,
    `  nginx                 listen 80 so_keepalive=${rec.soKeepalive};`,
    ...sysctlLines(rec.sysctl).map((line, i) => `  ${i === 0 ? 'sysctl' : ''}`.padEnd(24) + line),
    `  HTTP server keep-alive > LB: keepalive_timeout ${rec.httpServerKeepaliveTimeout}s;`,
    `  client pool idle      < LB: ${rec.clientPoolIdleTimeout}s`,
    `  application pings     every ${rec.appPing.period}s (HTTP/2, gRPC, WebSocket)`,
    ...rec.reasoning.map((r) => `  - ${r}`),
    `  (keepwire recommend --for ${TARGETS.join('|')} prints the settings for one tool)`,
    '',
  ].join('\n');
}

export function registerRecommend(program: Command, io: Io): void {
  program
    .command('recommend')
    .description(
      'keepalive and idle-timeout settings for a load balancer idle timeout, optionally as a snippet for one tool',
    )
    .addOption(
      new Option('--lb-idle <time>', 'idle timeout of the load balancer (e.g. 90s, 350s, 4m)').argParser(
        secondsArg,
      ),
    )
    .addOption(
      new Option(
        '--lb <profile>',
        'a load balancer profile (keepwire doctor --lb), e.g. aws-nlb or aws-nlb=600s',
      ).conflicts('lbIdle'),
    )
    .addOption(
      new Option('--margin <time>', 'how long before the LB deadline the first probe goes out').argParser(
        secondsArg,
      ),
    )
    .addOption(
      new Option('--for <target>', 'print ready-to-paste settings for one tool').choices([...TARGETS]),
    )
    .option('--json', 'print as JSON')
    .action((opts: RecommendOptions) => {
      let lbIdle = opts.lbIdle;
      let source = '';
      if (opts.lb !== undefined) {
        try {
          const box = middleboxFromArg(opts.lb);
          lbIdle = box.idleSeconds;
          source = ` (${box.name})`;
        } catch (error) {
          if (error instanceof ProfileError) throw new UsageError(error.message, 'keepwire doctor --lb list');
          throw error;
        }
      }
      if (lbIdle === undefined) {
        throw new UsageError(
          'recommend needs the load balancer: --lb-idle TIME or --lb PROFILE',
          'e.g. keepwire recommend --lb-idle 350s --for nginx',
        );
      }
      let rec: Recommendation;
      try {
        rec = recommend(lbIdle, opts.margin === undefined ? {} : { margin: opts.margin });
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      if (opts.for !== undefined && isTarget(opts.for)) {
        const s = snippet(opts.for, rec);
        io.out(opts.json ? `${JSON.stringify(s, null, 2)}\n` : s.text);
        return;
      }
      io.out(opts.json ? `${JSON.stringify(rec, null, 2)}\n` : reasoningText(rec, source));
    });
}
