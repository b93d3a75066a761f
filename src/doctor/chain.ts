/**
 * The timeout chain along one request path, e.g.
 * `client-pool=4s, aws-alb, nginx, app=5s`. The rule, hop by hop: whoever
 * keeps an idle connection open toward the next hop (a client pool, nginx's
 * upstream pool, an L7 load balancer's backend pool) must close it before
 * anything further along forgets or closes it; otherwise the caller reuses a
 * connection that is already gone.
 */
import { existsSync, readFileSync } from 'node:fs';
import { recommend } from '../keepalive/recommend.js';
import type { Finding } from './findings.js';
import { human } from './findings.js';
import { expiryFailure, type Middlebox, PROFILES, ProfileError, parseSeconds } from './profiles.js';

export interface EndpointHop {
  kind: 'endpoint';
  name: string;
  /** How long it keeps an idle connection from its caller (an HTTP server's keep-alive timeout). */
  calleeIdle: number;
  /** How long it keeps an idle pooled connection to its callee; undefined: it does not pool. */
  callerIdle?: number;
  /** Where the numbers come from. */
  source: string;
  text: string;
}

export interface MiddleboxHop {
  kind: 'middlebox';
  box: Middlebox;
  text: string;
}

export type Hop = EndpointHop | MiddleboxHop;

/** What nginx's config says, when `--nginx` was read. */
export interface NginxTimeouts {
  keepaliveTimeout: number;
  upstreamKeepaliveTimeout?: number;
  source: string;
}

/** `--chain` takes the list itself or a file holding it (one hop per line or comma-separated; # comments). */
export function readChainArg(arg: string): string {
  if (!arg.includes(',') && existsSync(arg)) {
    return readFileSync(arg, 'utf8')
      .split('\n')
      .map((l) => l.replace(/#.*/, '').trim())
      .filter(Boolean)
      .join(', ');
  }
  return arg;
}

/**
 * `read` gives the hops named after a configuration doctor read (`haproxy`,
 * `envoy`, `k8s`) the timeouts that configuration says.
 */
export function parseChain(
  text: string,
  nginx?: NginxTimeouts,
  read: Record<string, NginxTimeouts> = {},
): Hop[] {
  const entries = text
    .split(/[,\n]/)
    .map((e) => e.trim())
    .filter(Boolean);
  if (entries.length < 2) throw new ProfileError(`--chain needs at least two hops, got "${text}"`);
  return entries.map((entry): Hop => {
    const eq = entry.indexOf('=');
    const name = eq === -1 ? entry : entry.slice(0, eq).trim();
    const value = eq === -1 ? undefined : entry.slice(eq + 1).trim();
    const profile = PROFILES[name];
    if (profile) {
      return {
        kind: 'middlebox',
        box:
          value === undefined ? profile : { ...profile, idleSeconds: parseSeconds(value, `--chain ${name}`) },
        text: entry,
      };
    }
    if (value !== undefined) {
      // `name=T` (both roles) or `name=CALLEE/CALLER`.
      const [callee, caller] = value.split('/');
      const hop: EndpointHop = {
        kind: 'endpoint',
        name,
        calleeIdle: parseSeconds(callee!, `--chain ${name}`),
        source: `--chain ${entry}`,
        text: entry,
      };
      hop.callerIdle = caller === undefined ? hop.calleeIdle : parseSeconds(caller, `--chain ${name}`);
      return hop;
    }
    // A hop named after a configuration doctor read: that configuration's timeouts.
    const readHop = (r: NginxTimeouts): EndpointHop => {
      const hop: EndpointHop = {
        kind: 'endpoint',
        name,
        calleeIdle: r.keepaliveTimeout,
        source: r.source,
        text: entry,
      };
      if (r.upstreamKeepaliveTimeout !== undefined) hop.callerIdle = r.upstreamKeepaliveTimeout;
      return hop;
    };
    if (name === 'nginx') {
      if (nginx) return readHop(nginx);
      return {
        kind: 'endpoint',
        name,
        calleeIdle: 75,
        callerIdle: 60,
        source: 'nginx defaults: keepalive_timeout 75s; upstream keepalive_timeout 60s (with keepalive N)',
        text: entry,
      };
    }
    const known = read[name];
    if (known) return readHop(known);
    throw new ProfileError(
      `--chain hop "${entry}": not a load balancer profile (${Object.keys(PROFILES).join(', ')}) and no timeout given; write ${name}=T`,
    );
  });
}

function isL4(box: Middlebox): boolean {
  return box.expiry === 'rst' || box.expiry === 'drop';
}

function label(h: Hop): string {
  return h.kind === 'middlebox' ? h.box.name : h.name;
}

/** The line that makes a server's keep-alive outlast its caller's. */
function raiseServer(hop: EndpointHop, above: number): string {
  const want = recommend(Math.max(2, above)).httpServerKeepaliveTimeout;
  if (hop.name === 'nginx') return `keepalive_timeout ${want}s;`;
  if (hop.name === 'haproxy') return `timeout http-keep-alive ${want}s`;
  if (hop.name === 'envoy')
    return `common_http_protocol_options: { idle_timeout: ${want}s }  # in the HTTP connection manager`;
  return `server.keepAliveTimeout = ${want * 1000}; // Node http.Server of ${hop.name}, above the ${above}s of its caller`;
}

/** The line that makes a pool drop idle connections sooner. */
function lowerPool(hop: EndpointHop, below: number): string {
  const want = Math.max(1, below - Math.max(1, Math.round(below / 10)));
  if (hop.name === 'nginx') return `keepalive_timeout ${want}s; # in the upstream block`;
  if (hop.name === 'envoy')
    return `common_http_protocol_options: { idle_timeout: ${want}s }  # in the cluster's HttpProtocolOptions`;
  return `new Agent({ keepAliveTimeout: ${want * 1000}, keepAliveMaxTimeout: ${want * 1000} }) // undici pool of ${hop.name}`;
}

export function chainFindings(hops: Hop[], text: string): Finding[] {
  const out: Finding[] = [];
  const evidence = (i: number, j: number) => ({
    where: `--chain hop ${i + 1} "${hops[i]!.text}" -> hop ${j + 1} "${hops[j]!.text}"`,
    value: text,
  });
  for (let i = 0; i < hops.length - 1; i++) {
    const caller = hops[i]!;
    // Who holds idle connections toward the next hops, and for how long.
    let idle: number;
    if (caller.kind === 'endpoint') {
      if (caller.callerIdle === undefined) continue;
      idle = caller.callerIdle;
    } else {
      if (isL4(caller.box)) continue;
      idle = caller.box.idleSeconds;
    }
    for (let j = i + 1; j < hops.length; j++) {
      const next = hops[j]!;
      if (next.kind === 'middlebox') {
        if (idle >= next.box.idleSeconds) {
          const fixLine =
            caller.kind === 'endpoint'
              ? lowerPool(caller, next.box.idleSeconds)
              : `${caller.box.name} idle timeout below ${next.box.idleSeconds}s`;
          out.push({
            severity: 'error',
            code: 'chain-pool-outlives-middlebox',
            layer: 'chain',
            message: `${label(caller)} keeps idle connections ${human(idle)}, not less than ${next.box.name}'s idle timeout ${human(next.box.idleSeconds)} further along`,
            evidence: evidence(i, j),
            why: `${label(caller)} reuses a stale pooled connection that ${next.box.name} already forgot, and ${expiryFailure(next.box)}.`,
            fix: fixLine,
          });
        }
        // An L7 proxy ends the TCP connection: what lies behind it is its own hop.
        if (!isL4(next.box)) break;
        continue;
      }
      if (idle >= next.calleeIdle) {
        const byLb = caller.kind === 'middlebox';
        out.push({
          severity: 'error',
          code: byLb ? 'chain-lb-pool-outlives-backend' : 'chain-caller-outlives-server',
          layer: 'chain',
          message: `${label(caller)} keeps idle connections to ${next.name} ${human(idle)}, but ${next.name} closes them after ${human(next.calleeIdle)} (${next.source})`,
          evidence: evidence(i, j),
          why: byLb
            ? `${next.name} closes an idle connection ${label(caller)} still pools: ${label(caller)} reuses it and the request fails with a 502.`
            : `the client pool outlives the server: ${label(caller)} reuses a connection ${next.name} is closing, and the request fails with ECONNRESET (or a 502 from a proxy).`,
          fix: raiseServer(next, idle),
        });
      }
      break;
    }
  }
  return out;
}
