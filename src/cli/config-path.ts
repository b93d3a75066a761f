/**
 * Where `serve` and `check` find their configuration, as nginx does with its
 * compiled-in path: `-c FILE`, else `$KEEPWIRE_CONF`, else
 * /etc/keepwire/keepwire.conf (the path the .deb and the systemd unit use).
 *
 * An explicit choice (-c, or the variable when set) is used as given, and a
 * missing file is then reported by the loader like any unreadable file. Only
 * when nothing was named and the default is missing does discovery fail, and
 * its error names every place that was looked at.
 */
import { existsSync } from 'node:fs';
import { EXIT } from './errors.js';
import type { Io } from './io.js';

export const DEFAULT_CONFIG = '/etc/keepwire/keepwire.conf';

/** The configuration file a command reads, or undefined when nothing was named and the default is missing. */
export function configPath(
  given: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  if (given !== undefined) return given;
  const fromEnv = env.KEEPWIRE_CONF;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  return existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : undefined;
}

/**
 * Resolves the configuration for a command, or says where it looked and sets
 * exit 1 (as `nginx -t` without its file: a failed test, not a usage error).
 */
export function findConfig(
  given: string | undefined,
  io: Io,
  setExit: (code: number) => void,
): string | undefined {
  const path = configPath(given);
  if (path !== undefined) return path;
  io.err(
    `keepwire: no configuration file: looked at -c (not given), $KEEPWIRE_CONF (not set), ${DEFAULT_CONFIG} (no such file)\n` +
      `hint: pass -c FILE, set KEEPWIRE_CONF=FILE, or create ${DEFAULT_CONFIG}\n`,
  );
  setExit(EXIT.failed);
  return undefined;
}

/** The help text of `-c` for commands that discover their configuration. */
export const CONFIG_OPTION_HELP = `configuration file (default: $KEEPWIRE_CONF, else ${DEFAULT_CONFIG})`;
