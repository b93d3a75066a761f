import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { recommend } from '../keepalive/recommend.js';
import { parseSoKeepalive } from '../keepalive/spec.js';
import { parseDuration } from '../units/time.js';
import { registerCheck } from './check.js';
import { registerCompletion } from './completion.js';
import { registerDoctor } from './doctor.js';
import { EXIT, UsageError } from './errors.js';
import type { Io } from './io.js';
import { registerLab } from './lab.js';
import { registerProbe } from './probe.js';
import { registerRecommend, secondsArg } from './recommend.js';
import { renderSelfcheck, selfcheck } from './selfcheck.js';
import { registerServe } from './serve.js';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/** An LB idle timeout: whole seconds, and long enough for a keepalive probe to fit under it. */
function lbIdleArg(value: string): number {
  const seconds = secondsArg(value);
  try {
    recommend(seconds);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
  return seconds;
}

function msArg(value: string): number {
  const parsed = parseDuration(value);
  if (!parsed.ok) throw new InvalidArgumentError(parsed.error.message);
  return parsed.value;
}

function specArg(value: string) {
  const parsed = parseSoKeepalive(value);
  if (!parsed.ok) {
    const e = parsed.error;
    throw new InvalidArgumentError(`${e.message} (column ${e.column})${e.hint ? `; ${e.hint}` : ''}`);
  }
  return parsed.value;
}

export type { Io } from './io.js';

export function buildProgram(io: Io, setExit: (code: number) => void): Command {
  const program = new Command('keepwire')
    .description(
      'TCP keepalive done right across load balancers: per-socket control, proxy, and a kernel lab',
    )
    .version(version(), '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err });

  program
    .command('selfcheck')
    .description("print this host's keepalive defaults and verify that per-socket settings reach the kernel")
    .addOption(
      new Option(
        '--spec <so_keepalive>',
        'keepalive to apply, nginx so_keepalive syntax (default: recommended for --lb-idle)',
      ).argParser(specArg),
    )
    .addOption(
      new Option('--user-timeout <time>', 'TCP_USER_TIMEOUT to apply')
        .argParser(msArg)
        .default(30_000, '30s'),
    )
    .addOption(
      new Option('--lb-idle <time>', 'idle timeout of the load balancer in front')
        .argParser(lbIdleArg)
        .default(90, '90s'),
    )
    .option('--json', 'print the report as JSON')
    .action(
      async (opts: {
        spec?: ReturnType<typeof specArg>;
        userTimeout: number;
        lbIdle: number;
        json?: boolean;
      }) => {
        const spec = opts.spec ?? { enable: true, ...recommend(opts.lbIdle).keepalive };
        const report = await selfcheck(spec, opts.userTimeout, opts.lbIdle);
        io.out(opts.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderSelfcheck(report)}\n`);
        setExit(report.ok ? EXIT.ok : EXIT.failed);
      },
    );

  registerRecommend(program, io);
  registerServe(program, io, setExit);
  registerCheck(program, io, setExit);
  registerLab(program, io, setExit);
  registerProbe(program, io, setExit);
  registerDoctor(program, io, setExit);
  registerCompletion(program, io);
  return program;
}

/** Runs the CLI; returns the exit code. Never lets a stack trace reach the user for their own mistakes. */
export async function run(argv: string[], io: Io): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram(io, (c) => {
    code = c;
  });
  if (argv.length === 0) {
    program.outputHelp();
    return EXIT.usage;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end with exit code 0; every other commander error is a usage error.
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (error instanceof UsageError) {
      io.err(`keepwire: ${error.message}\n${error.hint ? `hint: ${error.hint}\n` : ''}`);
      return EXIT.usage;
    }
    throw error;
  }
}
