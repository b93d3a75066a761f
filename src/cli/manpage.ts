/**
 * man/keepwire.1, generated from the commander program that prints `--help`
 * (`npm run docs:man`; test/cli/manpage.test.ts checks the file is current).
 * The sections a man page has and --help has not (FILES, ENVIRONMENT,
 * SIGNALS, EXIT STATUS) are written here.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { isMainModule } from '../units/main-module.js';
import { DEFAULT_CONFIG } from './config-path.js';
import { buildProgram } from './program.js';

/** roff text: backslashes, hyphens (\- stays a minus in copy and paste), and a leading dot or quote. */
function roff(text: string): string {
  return text
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .split('\n')
    .map((line) => (/^[.']/.test(line) ? `\\&${line}` : line))
    .join('\n');
}

function commandSection(command: Command): string[] {
  const help = command.createHelp();
  const lines = [
    `.SS "${roff(`keepwire ${command.name()} ${command.usage()}`)}"`,
    roff(command.description()),
  ];
  for (const option of help.visibleOptions(command)) {
    lines.push('.TP', `.B ${roff(help.optionTerm(option))}`, roff(help.optionDescription(option)));
  }
  for (const argument of help.visibleArguments(command)) {
    lines.push('.TP', `.I ${roff(help.argumentTerm(argument))}`, roff(help.argumentDescription(argument)));
  }
  return lines;
}

export function renderManPage(): string {
  const program = buildProgram({ out: () => {}, err: () => {} }, () => {});
  const version = (
    JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
  ).version;
  const help = program.createHelp();
  const out = [
    `.\\" Generated from keepwire's --help by src/cli/manpage.ts (npm run docs:man). Do not edit.`,
    `.TH KEEPWIRE 1 "" "keepwire ${version}" "User Commands"`,
    '.SH NAME',
    `keepwire \\- ${roff(program.description())}`,
    '.SH SYNOPSIS',
    '.B keepwire',
    '.I command',
    '[\\fIoptions\\fR]',
    '.br',
    '.B keepwire serve',
    '[\\fB\\-c\\fR \\fIfile\\fR]',
    '.br',
    '.B keepwire check',
    '[\\fB\\-q\\fR] [\\fB\\-c\\fR \\fIfile\\fR]',
    '.SH DESCRIPTION',
    roff(
      'keepwire keeps long-lived TCP and HTTP connections alive across load balancers with idle timeouts: per-socket keepalive control, an nginx-style L4/L7 proxy (serve, check), a kernel lab that reproduces the incident, a probe that measures a real path, and a doctor that audits a host.',
    ),
    '.SH OPTIONS',
  ];
  for (const option of help.visibleOptions(program)) {
    out.push('.TP', `.B ${roff(help.optionTerm(option))}`, roff(help.optionDescription(option)));
  }
  out.push('.SH COMMANDS');
  for (const command of program.commands) out.push(...commandSection(command));
  out.push(
    '.SH FILES',
    '.TP',
    `.I ${roff(DEFAULT_CONFIG)}`,
    roff(
      'The configuration serve and check read when neither -c nor $KEEPWIRE_CONF names one (nginx syntax; see docs/config.md).',
    ),
    '.TP',
    '.I /lib/systemd/system/keepwire.service',
    roff(
      'The systemd unit of the Debian package: check -q before start and reload, SIGHUP reload, SIGQUIT graceful stop.',
    ),
    '.SH ENVIRONMENT',
    '.TP',
    '.B KEEPWIRE_CONF',
    roff('The configuration file of serve and check when -c is not given.'),
    '.SH SIGNALS',
    roff('keepwire serve handles signals as the nginx master process does:'),
    '.TP',
    '.B SIGHUP',
    roff('reload the configuration; one that does not load or start is rejected and the running one stays.'),
    '.TP',
    '.B SIGQUIT',
    roff(
      'graceful stop: for shutdown_delay keep serving with health locations at 503 and Connection: close, then stop accepting and drain live sessions for worker_shutdown_timeout, then close the rest.',
    ),
    '.TP',
    '.B SIGTERM, SIGINT',
    roff('fast stop: the same drain without shutdown_delay.'),
    '.TP',
    '.B SIGUSR1, SIGUSR2',
    roff('logged (logs go to standard output; binary upgrade is not supported).'),
    '.SH EXIT STATUS',
    roff(
      '0 success; 1 failure (an invalid configuration, a failed check, no configuration found); 2 usage error.',
    ),
    '.SH SEE ALSO',
    '.BR nginx (8),',
    '.BR systemd.service (5),',
    '.BR tcp (7)',
    '',
  );
  return out.join('\n');
}

if (isMainModule(import.meta.url)) process.stdout.write(renderManPage());
