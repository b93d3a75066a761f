/**
 * Small networks of Linux network namespaces joined by veth pairs, for tests
 * and the lab: real kernels, real TCP, nothing outside the machine.
 *
 * Names are unique per run (`kw-<pid>-<random>-<host>`) so topologies can be
 * built in parallel, and carry the creating pid so that a crashed run's
 * leftovers can be recognised and removed (`cleanupStale`). Deleting a
 * namespace takes its veth ends, routes and nftables tables with it.
 */
import { type ChildProcess, execFile, execFileSync, type SpawnOptions, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const NS_PREFIX = 'kw-';
const NS_PATTERN = /^kw-(\d+)-([0-9a-f]+)-/;

export interface ExecResult {
  stdout: string;
  stderr: string;
}

/** A namespace playing one host of a topology. */
export class Host {
  readonly children = new Set<ChildProcess>();
  /** The host's main address on its first link (set when linked). */
  address = '';

  constructor(
    readonly name: string,
    readonly ns: string,
  ) {}

  /** Runs a command inside the namespace and returns its output; rejects with stderr on failure. */
  async exec(cmd: string, args: string[], opts: { input?: string } = {}): Promise<ExecResult> {
    if (opts.input !== undefined) {
      return new Promise((resolve, reject) => {
        const child = execFile('ip', ['netns', 'exec', this.ns, cmd, ...args], (error, stdout, stderr) => {
          if (error)
            reject(new Error(`${this.name}: ${cmd} ${args.join(' ')}: ${stderr.trim() || error.message}`));
          else resolve({ stdout, stderr });
        });
        child.stdin?.end(opts.input);
      });
    }
    try {
      return await run('ip', ['netns', 'exec', this.ns, cmd, ...args]);
    } catch (error) {
      const e = error as Error & { stderr?: string };
      throw new Error(`${this.name}: ${cmd} ${args.join(' ')}: ${e.stderr?.trim() || e.message}`);
    }
  }

  /**
   * Starts a long-running process inside the namespace. `ip netns exec` execs
   * the command in place, so the child's pid is the command's own and killing
   * it needs no process-group games. The topology kills it on destroy.
   */
  spawn(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.ns, cmd, ...args], { stdio: 'pipe', ...opts });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** Sets a sysctl in this namespace (net.* sysctls are per namespace). */
  async sysctl(key: string, value: string | number): Promise<void> {
    await this.exec('sysctl', ['-q', '-w', `${key}=${value}`]);
  }

  async readSysctl(key: string): Promise<string> {
    return (await this.exec('sysctl', ['-n', key])).stdout.trim();
  }

  /** Loads an nftables ruleset (nft -f -) into this namespace. */
  async nft(ruleset: string): Promise<void> {
    await this.exec('nft', ['-f', '-'], { input: ruleset });
  }
}

export interface LinkEnd {
  host: Host;
  /** Interface name inside the host's namespace. */
  dev: string;
  /** CIDR, e.g. 198.18.1.2/24 */
  cidr: string;
}

const live = new Set<Topology>();

/** Removes every topology this process still has (for signal handlers). */
export async function destroyAllTopologies(): Promise<void> {
  await Promise.all([...live].map((t) => t.destroy()));
}

/** A set of namespaces that is always removed as a whole. */
export class Topology {
  readonly id: string;
  readonly hosts = new Map<string, Host>();
  private destroyed = false;
  private readonly exitHook = () => this.destroySync();

  constructor() {
    this.id = `${NS_PREFIX}${process.pid}-${randomBytes(3).toString('hex')}`;
    process.once('exit', this.exitHook);
    live.add(this);
  }

  host(name: string): Host {
    const host = this.hosts.get(name);
    if (!host) throw new Error(`topology ${this.id} has no host "${name}"`);
    return host;
  }

  async addHost(name: string): Promise<Host> {
    if (!/^[a-z][a-z0-9]{0,11}$/.test(name))
      throw new Error(`host name "${name}": use 1-12 lowercase letters/digits`);
    const host = new Host(name, `${this.id}-${name}`);
    await run('ip', ['netns', 'add', host.ns]);
    this.hosts.set(name, host);
    await host.exec('ip', ['link', 'set', 'lo', 'up']);
    return host;
  }

  /** Joins two hosts with a veth pair and gives each end its address. */
  async link(a: LinkEnd, b: LinkEnd): Promise<void> {
    // Interface names are global until moved, and limited to 15 characters.
    const tag = randomBytes(4).toString('hex');
    const va = `kw${tag}a`;
    const vb = `kw${tag}b`;
    await run('ip', [
      'link',
      'add',
      va,
      'netns',
      a.host.ns,
      'type',
      'veth',
      'peer',
      'name',
      vb,
      'netns',
      b.host.ns,
    ]);
    for (const [end, tmp] of [
      [a, va],
      [b, vb],
    ] as const) {
      await end.host.exec('ip', ['link', 'set', tmp, 'name', end.dev]);
      await end.host.exec('ip', ['addr', 'add', end.cidr, 'dev', end.dev]);
      await end.host.exec('ip', ['link', 'set', end.dev, 'up']);
      if (!end.host.address) end.host.address = end.cidr.split('/')[0]!;
    }
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    process.removeListener('exit', this.exitHook);
    const exits: Promise<unknown>[] = [];
    for (const host of this.hosts.values()) {
      for (const child of host.children) {
        if (child.exitCode === null && child.signalCode === null) {
          exits.push(new Promise((resolve) => child.once('exit', resolve)));
          child.kill('SIGKILL');
        }
      }
    }
    await Promise.all(exits);
    for (const host of this.hosts.values()) {
      await run('ip', ['netns', 'del', host.ns]).catch(() => undefined);
    }
  }

  /** Last resort on process exit: no event loop left, so everything is synchronous. */
  private destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const host of this.hosts.values()) {
      for (const child of host.children) child.kill('SIGKILL');
      try {
        execFileSync('ip', ['netns', 'del', host.ns], { stdio: 'ignore' });
      } catch {
        // Already gone.
      }
    }
  }
}

/**
 * Whether the run that created namespace `ns` still lives. `kill(pid, 0)`
 * alone is not enough: right after `kill -9` the process is a zombie until
 * its parent reaps it (and kill(0) succeeds on a zombie), and later its pid
 * may belong to an unrelated process. So a zombie or dead process is gone,
 * and so is a process that started after the namespace was made (pid
 * reused). Linux /proc; elsewhere kill(0).
 */
function ownerAlive(pid: number, ns: string): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    return killZero(pid);
  }
  // Fields after the command name, which is in parentheses and may hold spaces: state is the first,
  // starttime (clock ticks since boot, field 22 of the line) the 20th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z' || fields[0] === 'X' || fields[0] === 'x') return false;
  try {
    const btime = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]);
    // USER_HZ is 100 on every Linux architecture Node runs on.
    const startedMs = (btime + Number(fields[19]) / 100) * 1000;
    const createdMs = statSync(`/run/netns/${ns}`).mtimeMs;
    // btime has 1 s granularity: a margin of 2 s either way.
    if (Number.isFinite(startedMs) && startedMs > createdMs + 2000) return false;
  } catch {
    // No /run/netns entry or no btime: keep the pid's word.
  }
  return true;
}

function killZero(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** keepwire namespaces on this machine: name and creating pid. */
export async function listNamespaces(): Promise<{ ns: string; pid: number }[]> {
  const { stdout } = await run('ip', ['netns', 'list']);
  return stdout
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .flatMap((ns) => {
      const m = NS_PATTERN.exec(ns);
      return m ? [{ ns, pid: Number(m[1]) }] : [];
    });
}

/**
 * Removes namespaces left by keepwire runs whose process is gone (killed
 * mid-run). With `all`, removes every keepwire namespace, live owner or not.
 * Returns the names removed.
 */
export async function cleanupStale(opts: { all?: boolean } = {}): Promise<string[]> {
  const removed: string[] = [];
  for (const { ns, pid } of await listNamespaces()) {
    if (pid === process.pid && !opts.all) continue;
    if (opts.all || !ownerAlive(pid, ns)) {
      await run('ip', ['netns', 'pids', ns])
        .then(({ stdout }) => {
          for (const p of stdout.split('\n').filter(Boolean)) {
            try {
              process.kill(Number(p), 'SIGKILL');
            } catch {
              // Exited meanwhile.
            }
          }
        })
        .catch(() => undefined);
      await run('ip', ['netns', 'del', ns]).catch(() => undefined);
      removed.push(ns);
    }
  }
  return removed;
}
