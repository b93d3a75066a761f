/**
 * `keepwire doctor --netns PID|NAME`: the audit run inside another network
 * namespace (a pod's, a container's, an `ip netns` one), seen from the host.
 *
 * The doctor is run again, whole, in a child process that starts inside the
 * namespace: `nsenter --net=/proc/PID/ns/net` for a process, `ip netns exec
 * NAME` for a named one. Not setns(2) in this process: setns(CLONE_NEWNET)
 * moves only the calling thread, while Node runs libuv's thread pool and
 * V8's threads beside it, and the sysctl files under /proc/sys/net, the
 * `ss` child and /proc/net/tcp each answer for the namespace of whoever opens
 * them; a half-moved process would mix two namespaces in one report, and one
 * that fails to move back would audit the wrong one for the rest of its life.
 * A child entered whole reads every layer (keepalive sysctls, conntrack
 * timeout, live sockets) in one namespace and exits.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export class NetnsError extends Error {
  override name = 'NetnsError';
}

/** What `--netns` names: a process (its namespace) or an `ip netns` name. */
export type NetnsTarget = { kind: 'pid'; pid: number } | { kind: 'name'; name: string };

export function netnsTarget(arg: string): NetnsTarget {
  if (/^[1-9][0-9]*$/.test(arg)) {
    const pid = Number(arg);
    if (!existsSync(`/proc/${pid}/ns/net`))
      throw new NetnsError(`--netns ${arg}: no process ${pid} (/proc/${pid}/ns/net)`);
    return { kind: 'pid', pid };
  }
  if (!/^[A-Za-z0-9_.-]+$/.test(arg))
    throw new NetnsError(`--netns "${arg}" is neither a process id nor a namespace name`);
  if (!existsSync(`/run/netns/${arg}`)) {
    throw new NetnsError(
      `--netns ${arg}: no network namespace "${arg}" (see ip netns list; a pod's: give a process id of it)`,
    );
  }
  return { kind: 'name', name: arg };
}

export function netnsLabel(target: NetnsTarget): string {
  return target.kind === 'pid'
    ? `the network namespace of pid ${target.pid}`
    : `network namespace ${target.name}`;
}

/** The command that runs `argv` inside the target's network namespace. */
export function netnsCommand(target: NetnsTarget, argv: string[]): [string, string[]] {
  return target.kind === 'pid'
    ? ['nsenter', [`--net=/proc/${target.pid}/ns/net`, '--', ...argv]]
    : ['ip', ['netns', 'exec', target.name, ...argv]];
}

/**
 * Runs keepwire's own entry point with `args` in the namespace; its output
 * and exit status are the doctor's. The label reaches the child's report
 * through KEEPWIRE_DOCTOR_NETNS.
 */
export function runInNetns(
  target: NetnsTarget,
  args: string[],
): { status: number; stdout: string; stderr: string } {
  const [cmd, argv] = netnsCommand(target, [process.execPath, process.argv[1]!, ...args]);
  const r = spawnSync(cmd, argv, {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, KEEPWIRE_DOCTOR_NETNS: netnsLabel(target) },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw new NetnsError(`cannot run ${cmd} to enter ${netnsLabel(target)}: ${r.error.message}`);
  if (r.status === null)
    throw new NetnsError(`${cmd} was killed by ${r.signal} while auditing ${netnsLabel(target)}`);
  // nsenter/ip say themselves why they could not enter (no CAP_SYS_ADMIN, a vanished process).
  if (r.status !== 0 && r.stdout === '') {
    throw new NetnsError(
      `${cmd} could not enter ${netnsLabel(target)}: ${r.stderr.trim().split('\n').at(-1) ?? ''} (needs root)`,
    );
  }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The argv of this doctor run without `--netns X` (both `--netns X` and `--netns=X`). */
export function withoutNetns(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--netns') {
      i++;
      continue;
    }
    if (a.startsWith('--netns=')) continue;
    out.push(a);
  }
  return out;
}
