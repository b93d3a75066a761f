/**
 * No inspector unless asked for on node's own command line.
 *
 * Node starts its inspector (a debugger that runs whatever code it is sent)
 * on 127.0.0.1:9229 when the process receives SIGUSR1, unless JavaScript
 * listens for SIGUSR1 itself. `keepwire serve` usually runs as root and
 * logrotate scripts written for nginx send it USR1 ("reopen logs"): without a
 * listener, any local user could then attach and run code as root.
 *
 * Importing this module installs a SIGUSR1 listener for the whole life of
 * the process (it is never removed: removing the last listener would give
 * SIGUSR1 back its default action, which kills the process). It is the first
 * import of `main.ts`, so it is in place before the rest of the CLI loads;
 * only Node's own start-up (tens of milliseconds after exec) comes before it.
 * Verified on Node 20 and 26 by `test/serve/signals.test.ts`. Node 26 also has
 * `--disable-sigusr1`, which closes that start-up window too; Node 20 refuses
 * the flag, so keepwire cannot put it in its shebang.
 */
import inspector from 'node:inspector';

process.on('SIGUSR1', () => {
  // `keepwire serve` adds its own listener that logs the signal.
});

const INSPECT = /^--inspect(?:-brk|-wait)?(?:=|$)/;

/**
 * What to say about an inspector that is already open at start.
 *
 * `node --inspect keepwire ...` is an explicit request: run, with a warning.
 * An inspector opened from NODE_OPTIONS is an inherited environment (a
 * developer shell, a stray `Environment=` in a unit) nobody looked at; as
 * root it hands the machine to any local user, so keepwire refuses to start.
 * As another user it warns.
 */
export function inspectorAtStart(): { refuse: boolean; message: string; hint?: string } | undefined {
  const url = inspector.url();
  if (url === undefined) return undefined;
  const asked = process.execArgv.some((a) => INSPECT.test(a));
  const root = process.getuid?.() === 0;
  if (asked) {
    return {
      refuse: false,
      message: `warning: Node's inspector is open on ${url} (--inspect on node's command line): anyone who can connect to it runs code as ${root ? 'root' : 'this user'}`,
    };
  }
  if (root) {
    return {
      refuse: true,
      message: `refusing to run as root with Node's inspector open on ${url} (from NODE_OPTIONS="${process.env.NODE_OPTIONS ?? ''}"): anyone who can connect to it runs code as root`,
      hint: "unset NODE_OPTIONS; to debug on purpose, pass --inspect on node's own command line",
    };
  }
  return {
    refuse: false,
    message: `warning: Node's inspector is open on ${url} (from NODE_OPTIONS): anyone who can connect to it runs code as this user`,
  };
}
