/**
 * `keepwire doctor`: audit this host, its nginx configs and its live sockets
 * against the load balancer in front.
 *
 * Exit codes: 0 no finding at or above --fail-on, 1 findings at or above it,
 * 2 usage (unknown profile, bad time, missing pid).
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { detectNginxVersion, runDoctor } from '../doctor/doctor.js';
import type { FindingSeverity } from '../doctor/findings.js';
import { NetnsError, type NetnsTarget, netnsTarget, runInNetns, withoutNetns } from '../doctor/netns.js';
import {
  customMiddlebox,
  type Middlebox,
  middleboxFromArg,
  PROFILES,
  ProfileError,
  parseSeconds,
} from '../doctor/profiles.js';
import { failed, profilesJson, renderProfiles, renderReport, reportJson } from '../doctor/report.js';
import { EXIT, UsageError } from './errors.js';
import type { Io } from './io.js';

/** `--lb list` asks for the profiles instead of naming one. */
const LIST = Symbol('list');
type Listed = Middlebox[] & { [LIST]?: true };

function profileArg(value: string, previous: Listed = []): Listed {
  if (value === 'list') return Object.assign([...previous], { [LIST]: true as const });
  try {
    return [...previous, middleboxFromArg(value)];
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function idleArg(value: string, previous: Middlebox[] = []): Middlebox[] {
  try {
    return [...previous, customMiddlebox(parseSeconds(value, '--lb-idle'))];
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function pidArg(value: string): number {
  if (!/^[1-9][0-9]*$/.test(value)) throw new InvalidArgumentError(`"${value}" is not a process id`);
  return Number(value);
}

interface DoctorCliOptions {
  lb?: Middlebox[];
  lbIdle?: Middlebox[];
  upstreamLb?: Middlebox[];
  nginx?: string[];
  haproxy?: string[];
  envoy?: string[];
  k8sManifest?: string[];
  netns?: string;
  config?: string[];
  chain?: string;
  pid?: number;
  sockets: boolean;
  nginxVersion?: string;
  failOn: FindingSeverity;
  json?: boolean;
}

export function registerDoctor(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command('doctor')
    .description(
      'audit this host, its nginx configs and its live sockets against the load balancer in front: every keepalive hazard with evidence and the line that fixes it',
    )
    .addOption(
      new Option(
        '--lb <profile>',
        `middlebox in front, repeatable; PROFILE or PROFILE=T (${Object.keys(PROFILES).join(', ')}); "list" prints them with their sources`,
      ).argParser(profileArg),
    )
    .addOption(
      new Option('--lb-idle <time>', 'idle timeout of a middlebox with no profile, repeatable').argParser(
        idleArg,
      ),
    )
    .addOption(
      new Option(
        '--upstream-lb <profile>',
        'middlebox between the server and its upstreams, repeatable',
      ).argParser(profileArg),
    )
    .addOption(
      new Option('--nginx <file>', 'nginx configuration (includes followed), repeatable').argParser(collect),
    )
    .addOption(new Option('--haproxy <file>', 'HAProxy configuration, repeatable').argParser(collect))
    .addOption(new Option('--envoy <file>', 'Envoy bootstrap (YAML or JSON), repeatable').argParser(collect))
    .addOption(
      new Option(
        '--k8s-manifest <file>',
        'Kubernetes manifests (multi-document YAML: Ingresses, Services, workloads), repeatable',
      ).argParser(collect),
    )
    .addOption(
      new Option('-c, --config <file>', "keepwire's own configuration, repeatable").argParser(collect),
    )
    .option(
      '--chain <hops>',
      'timeout chain along a path, e.g. "client-pool=4s, aws-alb, nginx, app=5s", or a file of hops',
    )
    .addOption(
      new Option(
        '--pid <pid>',
        "exact keepalive values of this process's sockets (needs ptrace rights)",
      ).argParser(pidArg),
    )
    .option(
      '--netns <pid|name>',
      "audit another network namespace (a pod's): its keepalive sysctls and sockets, read by this doctor run again inside it (nsenter or ip netns exec; needs root)",
    )
    .option('--no-sockets', 'skip the host-wide live socket table (ss)')
    .option(
      '--nginx-version <version>',
      'nginx version the configs run on (default: nginx -v when --nginx is given)',
    )
    .addOption(
      new Option('--fail-on <severity>', 'exit 1 on findings at or above this severity')
        .choices(['warning', 'error'])
        .default('error'),
    )
    .option('--json', 'print the report as JSON')
    .addHelpText(
      'after',
      '\nExit status: 0 no finding at or above --fail-on, 1 findings at or above it, 2 usage error.\nExample: keepwire doctor --lb aws-nlb --nginx /etc/nginx/nginx.conf',
    )
    .action(async (opts: DoctorCliOptions, cmd: Command) => {
      if (opts.netns !== undefined) {
        let target: NetnsTarget;
        try {
          target = netnsTarget(opts.netns);
        } catch (error) {
          throw new UsageError((error as Error).message);
        }
        // The child is this same command line, less --netns: the process's own arguments.
        const args = withoutNetns(process.argv.slice(2));
        if (args[0] !== cmd.name()) throw new UsageError('--netns works from the keepwire command line only');
        let r: ReturnType<typeof runInNetns>;
        try {
          r = runInNetns(target, args);
        } catch (error) {
          if (error instanceof NetnsError) throw new UsageError(error.message);
          throw error;
        }
        io.out(r.stdout);
        if (r.stderr) io.err(r.stderr);
        setExit(r.status);
        return;
      }
      if ((opts.lb as Listed | undefined)?.[LIST]) {
        io.out(opts.json ? profilesJson() : renderProfiles());
        setExit(EXIT.ok);
        return;
      }
      const nginx = opts.nginx ?? [];
      let nginxVersion = opts.nginxVersion;
      if (nginxVersion !== undefined && !/^[0-9]+(\.[0-9]+){0,2}$/.test(nginxVersion))
        throw new UsageError(`--nginx-version "${nginxVersion}" is not a version like 1.22.1`);
      if (nginxVersion === undefined && nginx.length > 0) nginxVersion = detectNginxVersion();
      let report: Awaited<ReturnType<typeof runDoctor>>;
      try {
        report = await runDoctor({
          front: [...(opts.lb ?? []), ...(opts.lbIdle ?? [])],
          upstream: opts.upstreamLb ?? [],
          nginx,
          haproxy: opts.haproxy ?? [],
          envoy: opts.envoy ?? [],
          k8s: opts.k8sManifest ?? [],
          keepwireConfigs: opts.config ?? [],
          ...(opts.chain !== undefined ? { chain: opts.chain } : {}),
          ...(opts.pid !== undefined ? { pid: opts.pid } : {}),
          sockets: opts.sockets,
          ...(nginxVersion !== undefined ? { nginxVersion } : {}),
        });
      } catch (error) {
        const e = error as Error & { code?: string };
        if (error instanceof ProfileError) throw new UsageError(e.message);
        if (e.name === 'PidAccessError' && e.code === 'ESRCH') throw new UsageError(e.message);
        throw error;
      }
      io.out(opts.json ? reportJson(report, opts.failOn) : renderReport(report, opts.failOn));
      setExit(failed(report, opts.failOn) ? EXIT.failed : EXIT.ok);
    });
}
