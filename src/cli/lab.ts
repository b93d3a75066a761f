/**
 * `keepwire lab [SCENARIO[/VARIANT]...] [--lb l4|l7] [--lb-idle T] [--expiry rst|drop] [--json] [--cleanup]`
 *
 * Exit codes: 0 every observed outcome matched its expectation, 1 some did
 * not, 2 usage error or missing capability (not root, no iproute2/nftables).
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import {
  DEFAULT_SCENARIOS,
  type LabReport,
  type LabSysctl,
  runLab,
  SCENARIOS,
  type Variant,
} from '../lab/index.js';
import { relativeTimeline, renderTimeline } from '../lab/timeline.js';
import {
  cleanupStale,
  destroyAllTopologies,
  type Expiry,
  type LbKind,
  netnsAvailable,
} from '../netns/index.js';
import { parseDuration } from '../units/time.js';
import { EXIT, UsageError } from './errors.js';
import type { Io } from './io.js';

function lbIdleArg(value: string): number {
  const parsed = parseDuration(value);
  if (!parsed.ok) throw new InvalidArgumentError(parsed.error.message);
  const seconds = parsed.value / 1000;
  if (!Number.isInteger(seconds) || seconds < 2 || seconds > 30) {
    throw new InvalidArgumentError(
      `"${value}": the lab's LB idle timeout must be whole seconds in 2s..30s (the kernel timer counts seconds; scenarios wait multiples of it)`,
    );
  }
  return seconds;
}

const SYSCTL_HOSTS = ['client', 'lb', 'backend'] as const;

/**
 * `--sysctl host.key=value`, e.g. `backend.net.ipv4.tcp_keepalive_time=60`.
 * Only net.* keys: they are the ones a network namespace has of its own, so
 * the lab never changes the machine it runs on.
 */
function sysctlArg(value: string, previous: LabSysctl[] = []): LabSysctl[] {
  const m = /^(client|lb|backend)\.(net\.[a-z0-9_.]+)=([0-9A-Za-z_ .-]+)$/.exec(value);
  if (!m) {
    throw new InvalidArgumentError(
      `"${value}" is not HOST.KEY=VALUE with HOST one of ${SYSCTL_HOSTS.join(', ')} and a net.* key, e.g. backend.net.ipv4.tcp_keepalive_time=1`,
    );
  }
  return [...previous, { host: m[1] as LabSysctl['host'], key: m[2]!, value: m[3]! }];
}

/** Resolves `scenario` or `scenario/variant` names; `all` selects everything. */
export function selectVariants(names: string[]): Variant[] {
  const wanted = names.length === 0 ? DEFAULT_SCENARIOS : names;
  const out: Variant[] = [];
  for (const name of wanted) {
    if (name === 'all') {
      out.push(...Object.values(SCENARIOS).flat());
      continue;
    }
    const [scenario = '', variant] = name.split('/');
    const variants = SCENARIOS[scenario];
    if (!variants) {
      throw new UsageError(
        `unknown scenario "${scenario}"`,
        `scenarios: ${Object.keys(SCENARIOS).join(', ')}, or all`,
      );
    }
    if (variant === undefined) out.push(...variants);
    else {
      const v = variants.find((x) => x.name === variant);
      if (!v)
        throw new UsageError(
          `scenario ${scenario} has no variant "${variant}"`,
          `variants: ${variants.map((x) => x.name).join(', ')}`,
        );
      out.push(v);
    }
  }
  return [...new Set(out)];
}

export function renderLab(report: LabReport): string {
  const lines: string[] = [];
  lines.push(
    `keepwire lab — ${report.lbKind === 'l7' ? 'L7 LB (nginx)' : 'L4 LB (NAT)'}, idle timeout ${report.lbIdleS}s, expiry ${report.expiry}`,
  );
  for (const r of report.results) {
    lines.push('');
    lines.push(`■ ${r.scenario} / ${r.variant}: ${r.summary}`);
    lines.push(renderTimeline(relativeTimeline(r.timeline)));
    lines.push(
      `    → expected ${r.expected}, observed ${r.observed} (${r.detail}) ${r.ok ? 'ok' : 'MISMATCH'}`,
    );
  }
  lines.push('');
  const rows = [
    ['scenario', 'variant', 'expected', 'observed', 'ok'],
    ...report.results.map((r) => [r.scenario, r.variant, r.expected, r.observed, r.ok ? 'yes' : 'NO']),
    ...report.skipped.map((s) => [s.scenario, s.variant, '-', 'skipped', `(${s.reason})`]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const row of rows)
    lines.push(`  ${row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ')}`.trimEnd());
  lines.push('');
  const matched = report.results.filter((r) => r.ok).length;
  lines.push(
    `${report.ok ? 'lab: ok' : 'lab: FAILED'} — ${matched}/${report.results.length} outcomes as expected in ${report.durationS}s` +
      (report.skipped.length ? `, ${report.skipped.length} skipped` : ''),
  );
  return lines.join('\n');
}

export function registerLab(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command('lab')
    .description('reproduce the load-balancer idle-timeout incident and its fixes in network namespaces')
    .argument('[scenario...]', `scenarios (${Object.keys(SCENARIOS).join(', ')}, all) or scenario/variant`)
    .addOption(
      new Option(
        '--lb <kind>',
        'kind of lab load balancer: l4 (kernel NAT, forwards every segment) or l7 (nginx, terminates TCP; the websocket scenario)',
      )
        .choices(['l4', 'l7'])
        .default('l4'),
    )
    .addOption(
      new Option('--lb-idle <time>', 'idle timeout of the lab load balancer')
        .argParser(lbIdleArg)
        .default(3, '3s'),
    )
    .addOption(
      new Option('--expiry <kind>', 'what the LB does with packets of a forgotten session')
        .choices(['rst', 'drop'])
        .default('rst'),
    )
    .addOption(
      new Option(
        '--sysctl <host.key=value>',
        "set a net.* sysctl in every variant's client, lb or backend namespace (repeatable)",
      ).argParser(sysctlArg),
    )
    .option('--json', 'print the report as JSON')
    .option('--list', 'list scenarios and variants, then exit')
    .option('--cleanup', 'remove namespaces left by killed lab runs, then exit')
    .addHelpText(
      'after',
      '\nNeeds root (CAP_NET_ADMIN), iproute2 and nftables; tcpdump for packet evidence; nginx for the nginx variants; the openssl CLI for the HTTPS ones.\nExit status: 0 all outcomes as expected, 1 a mismatch, 2 usage error or missing capability.',
    )
    .action(
      async (
        names: string[],
        opts: {
          lb: LbKind;
          lbIdle: number;
          expiry: Expiry;
          sysctl?: LabSysctl[];
          json?: boolean;
          list?: boolean;
          cleanup?: boolean;
        },
      ) => {
        if (opts.list) {
          const width = Math.max(...Object.values(SCENARIOS).flatMap((vs) => vs.map((v) => v.name.length)));
          for (const [name, variants] of Object.entries(SCENARIOS)) {
            io.out(`${name}${DEFAULT_SCENARIOS.includes(name) ? ' (default)' : ''}\n`);
            for (const v of variants) io.out(`  ${v.name.padEnd(width)}  ${v.summary}\n`);
          }
          return;
        }
        const cap = netnsAvailable();
        if (!cap.ok) {
          throw new UsageError(
            `keepwire lab needs CAP_NET_ADMIN to build network namespaces: ${cap.reason}`,
            'run it as root (sudo keepwire lab), or inside a user namespace where the kernel allows it (unshare -r -n)',
          );
        }
        if (opts.cleanup) {
          const removed = await cleanupStale();
          io.out(
            removed.length
              ? `removed ${removed.length} namespaces: ${removed.join(' ')}\n`
              : 'nothing to clean up\n',
          );
          return;
        }
        const variants = selectVariants(names);
        const tty = process.stderr.isTTY === true;
        // Once interrupted, the run's own end (scenarios fail or throw as their
        // namespaces go) must not decide the exit: it waits for the cleanup, which exits 130.
        let interrupted: Promise<unknown> | undefined;
        const onSignal = (signal: NodeJS.Signals) => {
          io.err(`\nkeepwire lab: ${signal}, removing namespaces\n`);
          interrupted = destroyAllTopologies().finally(() => process.exit(130));
        };
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        try {
          const report = await runLab(variants, {
            lbIdleS: opts.lbIdle,
            expiry: opts.expiry,
            lbKind: opts.lb,
            sysctls: opts.sysctl ?? [],
            onProgress: ({ running, done, total, elapsedS }) => {
              const line = `lab: ${done}/${total} done, ${elapsedS.toFixed(0)}s, waiting on ${running.slice(0, 3).join(', ')}${running.length > 3 ? ', …' : ''}`;
              if (tty)
                io.err(
                  `\r${line.slice(0, (process.stderr.columns ?? 100) - 1).padEnd((process.stderr.columns ?? 100) - 1)}`,
                );
              else if (Math.round(elapsedS) % 5 === 0) io.err(`${line}\n`);
            },
          });
          if (interrupted) await interrupted;
          if (tty) io.err('\r\x1b[K');
          io.out(opts.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderLab(report)}\n`);
          setExit(report.ok ? EXIT.ok : EXIT.failed);
        } catch (error) {
          if (interrupted) await interrupted;
          throw error;
        } finally {
          process.removeListener('SIGINT', onSignal);
          process.removeListener('SIGTERM', onSignal);
        }
      },
    );
}
