/**
 * `keepwire serve [-c FILE]`: runs the stream (L4) and http (L7) servers of a
 * configuration until SIGTERM/SIGINT; SIGHUP reloads it.
 */
import type { Command } from 'commander';
import { loadServable } from '../config/index.js';
import { serve } from '../serve/process.js';
import { CONFIG_OPTION_HELP, findConfig } from './config-path.js';
import type { Io } from './io.js';

export function registerServe(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command('serve')
    .description(
      'run the load balancer: every stream { server { ... } } and http { server { ... } } block; SIGHUP reloads, SIGQUIT/SIGTERM/SIGINT drain and stop, SIGUSR1/SIGUSR2 are logged',
    )
    .option('-c, --config <file>', CONFIG_OPTION_HELP)
    .action(async (opts: { config?: string }) => {
      const file = findConfig(opts.config, io, setExit);
      if (file === undefined) return;
      setExit(await serve({ file, load: (path) => loadServable(path), io }));
    });
}
