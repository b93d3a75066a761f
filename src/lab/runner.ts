/**
 * Runs lab variants, each in its own fresh topology (client, LVS-like LB,
 * backend), all at once: the namespaces are independent, so the whole set
 * takes about as long as its slowest variant. Every topology is removed at the
 * end, on error, and on Ctrl-C.
 */
import {
  SocketAgent as Agent,
  createLbTopology,
  type Expiry,
  type LbKind,
  type SocketAgent,
} from '../netns/index.js';
import { opensslAvailable } from './certificate.js';
import { grpcJsAvailable } from './grpc-service.js';
import { nginxAvailable } from './nginx.js';
import { LbObserver } from './observer.js';
import type { LabContext, Observation, Variant, VariantResult } from './scenario.js';
import type { TimelineEvent } from './timeline.js';

export interface LabSysctl {
  host: 'client' | 'lb' | 'backend';
  key: string;
  value: string;
}

export interface LabOptions {
  lbIdleS: number;
  expiry: Expiry;
  /** `--lb`, default l4. */
  lbKind?: LbKind;
  /** `--sysctl host.key=value`: set in every variant's namespace before it runs, and kept over the variant's own. */
  sysctls?: LabSysctl[];
  /** Called about once a second while variants run. */
  onProgress?: (status: { running: string[]; done: number; total: number; elapsedS: number }) => void;
}

export interface LabReport {
  lbIdleS: number;
  expiry: Expiry;
  lbKind: LbKind;
  results: VariantResult[];
  /** Variants not run, with why (a missing program). */
  skipped: { scenario: string; variant: string; reason: string }[];
  ok: boolean;
  durationS: number;
}

export async function runLab(variants: Variant[], opts: LabOptions): Promise<LabReport> {
  const started = Date.now();
  const skipped: LabReport['skipped'] = [];
  const lbKind = opts.lbKind ?? 'l4';
  const runnable = variants.filter((v) => {
    if (!(v.lbKinds ?? ['l4']).includes(lbKind)) {
      skipped.push({
        scenario: v.scenario,
        variant: v.name,
        reason: `runs under --lb ${(v.lbKinds ?? ['l4']).join('|')} only`,
      });
      return false;
    }
    if (v.needs?.includes('nginx') && !nginxAvailable()) {
      skipped.push({
        scenario: v.scenario,
        variant: v.name,
        reason: 'nginx is not installed (apt-get install nginx)',
      });
      return false;
    }
    if (v.needs?.includes('grpc-js') && !grpcJsAvailable()) {
      skipped.push({
        scenario: v.scenario,
        variant: v.name,
        reason:
          '@grpc/grpc-js is not installed (a development dependency: npm install @grpc/grpc-js next to keepwire)',
      });
      return false;
    }
    if (v.needs?.includes('openssl') && !opensslAvailable()) {
      skipped.push({
        scenario: v.scenario,
        variant: v.name,
        reason: 'the openssl CLI is not installed (apt-get install openssl)',
      });
      return false;
    }
    return true;
  });
  const running = new Set(runnable.map((v) => `${v.scenario}/${v.name}`));
  let done = 0;
  const ticker = setInterval(() => {
    opts.onProgress?.({
      running: [...running],
      done,
      total: runnable.length,
      elapsedS: (Date.now() - started) / 1000,
    });
  }, 1000);
  try {
    const results = await Promise.all(
      runnable.map(async (v) => {
        const result = await runVariant(v, opts);
        running.delete(`${v.scenario}/${v.name}`);
        done++;
        return result;
      }),
    );
    return {
      lbIdleS: opts.lbIdleS,
      expiry: opts.expiry,
      lbKind,
      results,
      skipped,
      ok: results.every((r) => r.ok),
      durationS: Math.round((Date.now() - started) / 100) / 10,
    };
  } finally {
    clearInterval(ticker);
  }
}

async function runVariant(v: Variant, opts: LabOptions): Promise<VariantResult> {
  const lbKind = opts.lbKind ?? 'l4';
  const expected = v.expected(opts.expiry, lbKind);
  const events: TimelineEvent[] = [];
  const cleanups: (() => void | Promise<void>)[] = [];
  const agents: SocketAgent[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let observer: LbObserver | undefined;
  const lb = await createLbTopology({ lbIdleSeconds: opts.lbIdleS, expiry: opts.expiry, kind: lbKind });
  const start = Date.now();
  const ctx: LabContext = {
    lb,
    lbIdleS: opts.lbIdleS,
    expiry: opts.expiry,
    lbKind,
    start,
    note: (host, kind, what, at) => events.push({ at: at ?? Date.now(), host, kind, what }),
    sysctl: async (host, key, value) => {
      // The user's --sysctl wins over a variant's own setting of the same key.
      if (opts.sysctls?.some((u) => u.host === host && u.key === key)) return false;
      await lb[host].sysctl(key, value);
      return true;
    },
    agent: async (host) => {
      const agent = await Agent.start(lb[host]);
      agents.push(agent);
      return agent;
    },
    sleep: (ms) =>
      new Promise((resolve) => {
        const timer = setTimeout(() => {
          timers.delete(timer);
          resolve();
        }, ms);
        timers.add(timer);
      }),
    defer: (fn) => cleanups.push(fn),
    clientSide: (host) => {
      if (observer) observer.clientSide = host;
    },
  };
  let observation: Observation;
  try {
    observer = await LbObserver.start(lb);
    ctx.note(
      'lb',
      'config',
      `${lbKind === 'l7' ? 'L7 LB (nginx) idle timeout' : 'LB idle timeout'} ${opts.lbIdleS}s, expiry ${opts.expiry}${observer.capture ? '' : ' (no tcpdump: packets not shown)'}`,
    );
    for (const u of opts.sysctls ?? []) {
      await lb[u.host].sysctl(u.key, u.value);
      ctx.note(u.host, 'config', `sysctl ${u.key}=${u.value} (--sysctl)`);
    }
    observation = await v.run(ctx);
    // Let the capture catch up with the last packets before reading it.
    await ctx.sleep(300);
  } catch (error) {
    observation = { outcome: 'error', detail: (error as Error).message };
  } finally {
    for (const timer of timers) clearTimeout(timer);
    observer?.stop();
    for (const agent of agents) agent.stop();
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch {
        // Cleanup goes on; the topology removal below takes what is left.
      }
    }
    await lb.destroy();
  }
  const timeline = [...events, ...(observer?.events ?? [])].filter((e) => e.at >= start - 50);
  return {
    scenario: v.scenario,
    variant: v.name,
    summary: v.summary,
    expected,
    observed: observation.outcome,
    detail: observation.detail,
    ...(observation.afterS === undefined ? {} : { afterS: Math.round(observation.afterS * 10) / 10 }),
    ok: observation.outcome === expected,
    timeline,
  };
}
