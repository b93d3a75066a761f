/**
 * `keepwire check -c FILE [--json] [--strict]`: validates a configuration the
 * way `nginx -t` does, plus keepalive hazards.
 *
 * Exit codes: 0 valid (warnings allowed), 1 invalid, or warnings with
 * --strict, or the file cannot be read (as `nginx -t`: a missing file is a
 * failed check, not a usage error); 2 usage (missing -c, unknown option).
 */
import type { Command } from 'commander';
import { formatDiagnostic, loadConfig } from '../config/index.js';
import { EXIT } from './errors.js';
import type { Io } from './io.js';

export function registerCheck(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command('check')
    .description(
      'validate a keepwire.conf like nginx -t, and warn about keepalive hazards behind load balancers',
    )
    .requiredOption('-c, --config <file>', 'configuration file to check')
    .option('--json', 'print the diagnostics as a JSON array')
    .option('--strict', 'fail (exit 1) on warnings too')
    .addHelpText(
      'after',
      '\nExit status: 0 valid, 1 invalid (or warnings with --strict, or FILE unreadable), 2 usage error.',
    )
    .action((opts: { config: string; json?: boolean; strict?: boolean }) => {
      const result = loadConfig(opts.config);
      const errors = result.diagnostics.filter((d) => d.severity === 'error').length;
      const warnings = result.diagnostics.length - errors;
      const failed = errors > 0 || (opts.strict === true && warnings > 0);
      if (opts.json) {
        io.out(`${JSON.stringify(result.diagnostics, null, 2)}\n`);
      } else {
        for (const d of result.diagnostics) io.err(`${formatDiagnostic(d, result.sources.get(d.file))}\n`);
        const counts = `${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}`;
        if (failed) io.err(`keepwire check: ${opts.config}: test failed (${counts})\n`);
        else io.out(`keepwire check: ${opts.config}: syntax is ok, test is successful (${counts})\n`);
      }
      setExit(failed ? EXIT.failed : EXIT.ok);
    });
}
