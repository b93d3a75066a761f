/**
 * `keepwire check [-c FILE] [--json] [--strict] [-q]`: validates a configuration the
 * way `nginx -t` does, plus keepalive hazards.
 *
 * Exit codes: 0 valid (warnings allowed), 1 invalid, or warnings with
 * --strict, or the file cannot be read (as `nginx -t`: a missing file is a
 * failed check, not a usage error; so is finding no configuration at all);
 * 2 usage (unknown option).
 */
import { basename } from 'node:path';
import type { Command } from 'commander';
import { checkCertificates } from '../config/certificates.js';
import {
  type Diagnostic,
  formatDiagnostics,
  loadServable,
  resolveNames,
  sortDiagnostics,
} from '../config/index.js';
import { reuseportEffect } from '../serve/reuseport.js';
import { CONFIG_OPTION_HELP, findConfig } from './config-path.js';
import { EXIT } from './errors.js';
import type { Io } from './io.js';

/**
 * Directives every stock nginx.conf carries and keepwire does not have: one
 * of them among the unknown directives means the file was written for
 * nginx, which `doctor --nginx` reads (tolerating what keepwire lacks).
 */
const NGINX_MARKERS = new Set([
  'user',
  'worker_processes',
  'pid',
  'error_log',
  'sendfile',
  'tcp_nopush',
  'types',
  'types_hash_max_size',
  'default_type',
  'root',
  'index',
  'try_files',
  'gzip',
  'server_tokens',
  'ssl_protocols',
  'ssl_certificate',
  'fastcgi_pass',
  'load_module',
]);

/** The hint for a file written for nginx, or undefined. */
export function nginxFileHint(file: string, diagnostics: readonly Diagnostic[]): string | undefined {
  const unknown = diagnostics
    .filter((d) => d.code === 'unknown-directive')
    .map((d) => /^unknown directive "([^"]*)"/.exec(d.message)?.[1] ?? '');
  const markers = [...new Set(unknown.filter((name) => NGINX_MARKERS.has(name)))];
  if (markers.length === 0 && !(unknown.length > 0 && /nginx/i.test(basename(file)))) return undefined;
  const seen =
    markers.length > 0 ? ` (${markers.slice(0, 4).join(', ')}${markers.length > 4 ? ', ...' : ''})` : '';
  return `${file} looks like an nginx configuration${seen}: keepwire check reads keepwire files; to audit an nginx file for keepalive problems run: keepwire doctor --nginx ${file}`;
}

export function registerCheck(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command('check')
    .description(
      'validate a keepwire.conf like nginx -t, and warn about keepalive hazards behind load balancers',
    )
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .option('--json', 'print the diagnostics as a JSON array')
    .option('--strict', 'fail (exit 1) on warnings too')
    .option('-q, --quiet', 'print errors only (as nginx -q): for ExecStartPre and scripts')
    .addHelpText(
      'after',
      '\nExit status: 0 valid, 1 invalid (or warnings with --strict, or FILE unreadable or not found), 2 usage error.',
    )
    .action(async (opts: { config?: string; json?: boolean; strict?: boolean; quiet?: boolean }) => {
      const file = findConfig(opts.config, io, setExit);
      if (file === undefined) return;
      const result = loadServable(file);
      // As nginx -t: every host name must resolve (serve checks the same at start).
      if (result.config !== undefined) {
        const unresolved = await resolveNames(result.config);
        // As nginx -t: every certificate and key is loaded (and judged: config/certificates.ts).
        const tls = checkCertificates(result.config);
        if (unresolved.length > 0 || tls.length > 0)
          result.diagnostics = sortDiagnostics([...result.diagnostics, ...unresolved, ...tls]);
      }
      const errors = result.diagnostics.filter((d) => d.severity === 'error').length;
      const warnings = result.diagnostics.length - errors;
      const failed = errors > 0 || (opts.strict === true && warnings > 0);
      if (opts.json) {
        io.out(`${JSON.stringify(result.diagnostics, null, 2)}\n`);
      } else {
        // -q keeps what makes the test fail: errors, and warnings too under --strict.
        const shown =
          opts.quiet && opts.strict !== true
            ? result.diagnostics.filter((d) => d.severity === 'error')
            : result.diagnostics;
        io.err(formatDiagnostics(shown, (f) => result.sources.get(f)));
        const counts = `${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}`;
        const nginx = nginxFileHint(file, result.diagnostics);
        if (nginx !== undefined && (failed || !opts.quiet)) io.err(`hint: ${nginx}\n`);
        const reuseport = result.config && reuseportEffect(result.config);
        if (reuseport && (reuseport.severity === 'warning' || !opts.quiet))
          io.err(`${reuseport.severity}: ${reuseport.text}\n`);
        if (failed) io.err(`keepwire check: ${file}: test failed (${counts})\n`);
        else if (!opts.quiet)
          io.out(`keepwire check: ${file}: syntax is ok, test is successful (${counts})\n`);
      }
      setExit(failed ? EXIT.failed : EXIT.ok);
    });
}
