/**
 * `keepwire doctor --haproxy FILE`: HAProxy's keepalive and idle-timeout
 * settings read into the doctor's model of the timeout chain, judged by the
 * hazard rules of config/hazards.ts (RULES, keepaliveTiming), with findings
 * at file:line and fixes in HAProxy's own keywords.
 *
 * HAProxy's configuration: sections `global`, `defaults [NAME]`, `frontend`,
 * `backend`, `listen`; one keyword per line, `#` comments, `no option X`
 * negates. A proxy section takes every setting of the `defaults` section
 * before it (or the one named by `from NAME`, HAProxy 2.4+), its own lines
 * overriding them. Times are milliseconds unless a unit is given (us, ms, s,
 * m, h, d). TCP keepalive is `option clitcpka`/`srvtcpka` (or `tcpka` for
 * both), with `clitcpka-idle/-intvl/-cnt` and `srvtcpka-*` (HAProxy 2.2+)
 * setting TCP_KEEPIDLE/KEEPINTVL/KEEPCNT; unset fields are the kernel's.
 * While waiting for the next request on a kept-alive client connection
 * HAProxy applies `timeout http-keep-alive`, else `timeout http-request`,
 * else `timeout client` (configuration manual, 4.2 "timeout http-keep-alive").
 */
import { readFileSync } from 'node:fs';
import { type Box, keepaliveTiming, RULES } from '../config/hazards.js';
import { recommend } from '../keepalive/recommend.js';
import type { SystemKeepaliveDefaults } from '../keepalive/system.js';
import { FileAuditor, type FindingSeverity, fileEvidence, human, unreadable } from './findings.js';
import type { AuditOptions, ConfigAudit } from './nginx.js';
import { hazardBox, isL4, type Middlebox, tightest } from './profiles.js';

export interface HaproxyLine {
  file: string;
  line: number;
  col: number;
  words: string[];
  text: string;
}

export interface HaproxySection {
  kind: 'global' | 'defaults' | 'frontend' | 'backend' | 'listen' | 'other';
  name: string;
  at: HaproxyLine;
  lines: HaproxyLine[];
  /** `from NAME` or the last `defaults` before it. */
  defaults?: HaproxySection;
}

/**
 * HAProxy time: a number with an optional unit, milliseconds by default
 * (`timeout ...`); the TCP keepalive keywords default to seconds
 * (parse_time_err with TIME_UNIT_S in cfgparse-listen.c). Undefined when it
 * does not parse.
 */
export function haproxyTimeMs(text: string, defaultUnit: 'ms' | 's' = 'ms'): number | undefined {
  const m = /^([0-9]+)(us|ms|s|m|h|d)?$/.exec(text);
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2] ?? defaultUnit;
  const factor: Record<string, number> = {
    us: 0.001,
    ms: 1,
    s: 1000,
    m: 60_000,
    h: 3_600_000,
    d: 86_400_000,
  };
  return n * factor[unit]!;
}

export class HaproxyConfigError extends Error {
  override name = 'HaproxyConfigError';
  constructor(
    message: string,
    readonly at: { file: string; line: number; col: number },
    readonly hint: string,
  ) {
    super(`${at.file}:${at.line}:${at.col}: ${message}`);
  }
}

const SECTION = new Set([
  'global',
  'defaults',
  'frontend',
  'backend',
  'listen',
  'resolvers',
  'peers',
  'userlist',
  'mailers',
  'program',
  'http-errors',
  'ring',
  'cache',
]);

export function parseHaproxy(text: string, file: string): HaproxySection[] {
  const sections: HaproxySection[] = [];
  let current: HaproxySection | undefined;
  let lastDefaults: HaproxySection | undefined;
  const named = new Map<string, HaproxySection>();
  text.split('\n').forEach((raw, i) => {
    const body = raw.replace(/(^|\s)#.*$/, '').trimEnd();
    const words = body.trim().split(/\s+/).filter(Boolean);
    if (words.length === 0) return;
    const line: HaproxyLine = {
      file,
      line: i + 1,
      col: body.length - body.trimStart().length + 1,
      words,
      text: raw,
    };
    const key = words[0]!;
    if (SECTION.has(key)) {
      const kind = (
        ['global', 'defaults', 'frontend', 'backend', 'listen'].includes(key) ? key : 'other'
      ) as HaproxySection['kind'];
      const name = words[1] && words[1] !== 'from' ? words[1] : '';
      current = { kind, name, at: line, lines: [] };
      const from = words.indexOf('from');
      if (from !== -1) {
        const base = named.get(words[from + 1] ?? '');
        if (!base) {
          throw new HaproxyConfigError(
            `${key} "${name}" inherits from unknown defaults section "${words[from + 1] ?? ''}"`,
            line,
            'name a defaults section defined above it',
          );
        }
        current.defaults = base;
      } else if (kind === 'frontend' || kind === 'backend' || kind === 'listen') {
        if (lastDefaults) current.defaults = lastDefaults;
      }
      if (kind === 'defaults') {
        lastDefaults = current;
        if (name) named.set(name, current);
      }
      sections.push(current);
      return;
    }
    if (!current) {
      throw new HaproxyConfigError(
        `"${key}" outside any section`,
        line,
        'start a section first: global, defaults, frontend, backend or listen',
      );
    }
    current.lines.push(line);
    // Every time value is checked where it is written, used or not, as haproxy -c does.
    if (key === 'timeout' && words[2] !== undefined) timeout(words[1] ?? '')(line);
    if (/^(cli|srv)tcpka-(idle|intvl)$/.test(key)) tcpkaSeconds(key)(line);
  });
  return sections;
}

/** A setting's value as the proxy sees it: its own last line, else its defaults section's, with where it was set. */
interface Found<T> {
  value: T;
  at: HaproxyLine;
}

function own<T>(section: HaproxySection, read: (line: HaproxyLine) => T | undefined): Found<T> | undefined {
  let out: Found<T> | undefined;
  for (const line of section.lines) {
    const v = read(line);
    if (v !== undefined) out = { value: v, at: line };
  }
  return out;
}

function setting<T>(
  section: HaproxySection,
  read: (line: HaproxyLine) => T | undefined,
): Found<T> | undefined {
  return own(section, read) ?? (section.defaults ? own(section.defaults, read) : undefined);
}

const timeout = (name: string) => (l: HaproxyLine) => {
  if (l.words[0] !== 'timeout' || l.words[1] !== name || l.words[2] === undefined) return undefined;
  const ms = haproxyTimeMs(l.words[2]);
  if (ms === undefined) {
    throw new HaproxyConfigError(
      `timeout ${name} "${l.words[2]}" is not a time`,
      { file: l.file, line: l.line, col: l.text.indexOf(l.words[2]) + 1 },
      'a number with an optional unit: 30s, 5m, 5000 (milliseconds)',
    );
  }
  return ms;
};

/** `option NAME` → true, `no option NAME` → false. */
const option = (names: string[]) => (l: HaproxyLine) => {
  if (l.words[0] === 'option' && names.includes(l.words[1] ?? '')) return true;
  if (l.words[0] === 'no' && l.words[1] === 'option' && names.includes(l.words[2] ?? '')) return false;
  return undefined;
};

const keyword = (name: string) => (l: HaproxyLine) => (l.words[0] === name ? l.words[1] : undefined);

/** `clitcpka-idle 30` and the like: whole seconds, seconds by default. */
const tcpkaSeconds = (name: string) => (l: HaproxyLine) => {
  const v = keyword(name)(l);
  if (v === undefined) return undefined;
  const ms = haproxyTimeMs(v, 's');
  if (ms === undefined || ms % 1000 !== 0) {
    throw new HaproxyConfigError(
      `${name} "${v}" is not a whole number of seconds`,
      { file: l.file, line: l.line, col: l.text.indexOf(v) + 1 },
      'TCP keepalive takes whole seconds: 30 or 30s',
    );
  }
  return ms / 1000;
};

/** The side of a proxy a keepalive is for: `cli` toward clients, `srv` toward servers. */
type Side = 'cli' | 'srv';

interface Keepalive {
  on?: Found<boolean>;
  idle?: Found<number>;
  intvl?: Found<number>;
  cnt?: Found<number>;
}

function keepaliveOf(section: HaproxySection, side: Side): Keepalive {
  const seconds = tcpkaSeconds;
  const out: Keepalive = {};
  const on = setting(section, option([`${side}tcpka`, 'tcpka']));
  if (on) out.on = on;
  const idle = setting(section, seconds(`${side}tcpka-idle`));
  if (idle) out.idle = idle;
  const intvl = setting(section, seconds(`${side}tcpka-intvl`));
  if (intvl) out.intvl = intvl;
  const cnt = setting(section, (l) => {
    const v = keyword(`${side}tcpka-cnt`)(l);
    return v === undefined ? undefined : Number(v);
  });
  if (cnt) out.cnt = cnt;
  return out;
}

/** The keywords that set TCP keepalive on one side, as recommend() would have them. */
function keepaliveFix(side: Side, box: Box): string {
  const rec = recommend(Math.max(2, Math.floor(box.idleMs / 1000)));
  const [idle, intvl, cnt] = rec.soKeepalive.split(':');
  return [
    `option ${side}tcpka`,
    `${side}tcpka-idle ${idle}`,
    `${side}tcpka-intvl ${intvl}`,
    `${side}tcpka-cnt ${cnt}`,
  ].join('\n');
}

class Auditor extends FileAuditor {
  constructor(
    private readonly sections: HaproxySection[],
    private readonly opts: AuditOptions,
  ) {
    super('haproxy');
  }

  /** Every HAProxy finding quotes its line. */
  protected override add(
    severity: FindingSeverity,
    code: string,
    at: HaproxyLine,
    message: string,
    why: string,
    fix: string,
  ): void {
    super.add(severity, code, at, message, why, fix, at.text.trim());
  }

  private backendsOf(section: HaproxySection): HaproxySection[] {
    if (section.kind === 'listen') return [section];
    const names = new Set(
      section.lines
        .filter((l) => l.words[0] === 'default_backend' || l.words[0] === 'use_backend')
        .map((l) => l.words[1] ?? ''),
    );
    return this.sections.filter((s) => (s.kind === 'backend' || s.kind === 'listen') && names.has(s.name));
  }

  run(): void {
    for (const section of this.sections) {
      if (section.kind === 'frontend' || section.kind === 'listen') this.frontend(section);
      if (section.kind === 'backend' || section.kind === 'listen') this.backend(section);
    }
  }

  /** The client side: what waits on a client connection, its TCP keepalive and its HTTP keep-alive. */
  private frontend(section: HaproxySection): void {
    const mode = setting(section, keyword('mode'))?.value ?? 'tcp';
    const client = setting(section, timeout('client'));
    if (!client) {
      this.add(
        'warning',
        'haproxy-timeout-client-missing',
        section.at,
        `${section.kind} "${section.name}" has no timeout client: HAProxy keeps an idle client connection forever (haproxy -c warns)`,
        'a client that vanished behind a middlebox holds its connection and its slot until TCP keepalive, if any, notices.',
        'timeout client 1m',
      );
    }
    const backends = this.backendsOf(section);
    let longest: Found<number> | undefined;
    for (const b of backends) {
      const t = setting(b, timeout('server'));
      if (t && (!longest || t.value > longest.value)) longest = t;
    }
    const tunnel =
      setting(section, timeout('tunnel')) ?? backends.map((b) => setting(b, timeout('tunnel'))).find(Boolean);
    // What a client connection waits on: a response (timeout server), or a quiet tunnel.
    const waits = Math.max(
      longest?.value ?? 0,
      tunnel?.value ?? 0,
      mode === 'tcp' ? (client?.value ?? 0) : 0,
    );
    const waitName =
      tunnel && tunnel.value >= (longest?.value ?? 0)
        ? 'timeout tunnel'
        : mode === 'tcp' && (client?.value ?? 0) > (longest?.value ?? 0)
          ? 'timeout client'
          : 'timeout server';

    if (mode === 'http') {
      const keepalive =
        setting(section, timeout('http-keep-alive')) ?? setting(section, timeout('http-request')) ?? client;
      if (keepalive) this.serverKeepalive(keepalive.value / 1000);
      for (const m of this.opts.front) {
        const box = hazardBox(m);
        if (keepalive && RULES.keepaliveRace(keepalive.value, box)) {
          const want = recommend(Math.max(2, m.idleSeconds)).httpServerKeepaliveTimeout;
          this.add(
            'error',
            'haproxy-keep-alive-below-lb',
            keepalive.at,
            `${section.kind} "${section.name}" closes an idle client connection after ${human(keepalive.value / 1000)} (${keepalive.at.words.slice(0, 2).join(' ')}), not above ${m.name}'s idle timeout ${human(m.idleSeconds)}, and ${m.name} pools its connections to HAProxy`,
            `${m.name} reuses a pooled connection HAProxy is closing, and the request fails with a 502.`,
            // The timeout HAProxy applies between requests is the one to raise (http-keep-alive, else http-request, else client).
            `timeout ${keepalive.at.words[1]} ${want}s`,
          );
        }
        if (longest && RULES.responseOutlivesL7(longest.value, box)) {
          this.add(
            'warning',
            'haproxy-timeout-server-above-lb',
            longest.at,
            `timeout server ${human(longest.value / 1000)} lets a response take longer than ${m.name}'s idle timeout ${human(m.idleSeconds)}`,
            `a response slower than ${human(m.idleSeconds)} never reaches the client: ${box.failure} (TCP keepalive does not count as data for an L7 proxy).`,
            `timeout server ${Math.max(1, m.idleSeconds - 1)}s`,
          );
        }
        if (tunnel && RULES.responseOutlivesL7(tunnel.value, box)) {
          this.add(
            'warning',
            'haproxy-timeout-tunnel-above-lb',
            tunnel.at,
            `timeout tunnel ${human(tunnel.value / 1000)} lets a WebSocket or tunnel stay quiet longer than ${m.name}'s idle timeout ${human(m.idleSeconds)}`,
            `a tunnel quiet for ${human(m.idleSeconds)} is closed by ${m.name}: ${box.failure}; an application ping more often keeps it.`,
            `timeout tunnel ${Math.max(1, m.idleSeconds - 1)}s`,
          );
        }
      }
    }

    const lb = tightest(this.opts.front.filter(isL4));
    if (!lb) return;
    const box = hazardBox(lb);
    this.tcpKeepalive(section, 'cli', box, lb, waits, waitName);
  }

  private backend(section: HaproxySection): void {
    const server = setting(section, timeout('server'));
    if (!server && section.kind === 'backend') {
      this.add(
        'warning',
        'haproxy-timeout-server-missing',
        section.at,
        `backend "${section.name}" has no timeout server: HAProxy waits for a response forever (haproxy -c warns)`,
        'a server connection that a middlebox forgot is never given up unless TCP keepalive notices.',
        'timeout server 1m',
      );
    }
    const lb = tightest(this.opts.upstream.filter(isL4));
    if (!lb) return;
    const tunnel = setting(section, timeout('tunnel'));
    const waits = Math.max(server?.value ?? Number.POSITIVE_INFINITY, tunnel?.value ?? 0);
    this.tcpKeepalive(
      section,
      'srv',
      hazardBox(lb),
      lb,
      waits,
      tunnel && tunnel.value > (server?.value ?? 0) ? 'timeout tunnel' : 'timeout server',
    );
  }

  /** One side's TCP keepalive against the L4 box on that side: probes in time, or none while something waits that long. */
  private tcpKeepalive(
    section: HaproxySection,
    side: Side,
    box: Box,
    lb: Middlebox,
    waitMs: number,
    waitName: string,
  ): void {
    const ka = keepaliveOf(section, side);
    const toward = side === 'cli' ? 'client' : 'server';
    if (ka.on?.value) {
      const spec = {
        ...(ka.idle ? { idle: ka.idle.value } : {}),
        ...(ka.intvl ? { interval: ka.intvl.value } : {}),
        ...(ka.cnt ? { count: ka.cnt.value } : {}),
      };
      const t = keepaliveTiming(spec, box.idleMs, this.opts.system);
      const at = (t.late === 'interval' ? ka.intvl?.at : ka.idle?.at) ?? ka.on.at;
      if (t.relies.length > 0)
        this.dependents.push({ ...fileEvidence(at, at.text.trim()), relies: t.relies });
      if (!t.late) return;
      const inherited = t.relies.length > 0 ? ` (${t.relies.join(', ')} from this host's kernel)` : '';
      this.add(
        'error',
        `haproxy-${side}tcpka-too-late`,
        at,
        `${section.kind} "${section.name}": ${side}tcpka probes an idle ${toward} connection every max(${t.idle}, ${t.interval}) = ${human(t.period)}${inherited}, not below ${lb.name}'s idle timeout ${human(lb.idleSeconds)}`,
        `an idle ${toward} connection is forgotten by ${lb.name} before the next probe, and ${box.failure}.`,
        keepaliveFix(side, box),
      );
      return;
    }
    const severity =
      side === 'cli'
        ? RULES.listenerWithoutKeepalive(waitMs, box)
        : RULES.upstreamWaitsTooLong(waitMs, box)
          ? 'error'
          : undefined;
    if (!severity) return;
    this.add(
      severity,
      `haproxy-no-${side}tcpka`,
      ka.on?.at ?? section.at,
      `${section.kind} "${section.name}" has no TCP keepalive toward the ${toward} (option ${side}tcpka${ka.on ? ' is turned off' : ''}), facing ${lb.name} (idle timeout ${human(lb.idleSeconds)})`,
      severity === 'error'
        ? `${waitName} ${Number.isFinite(waitMs) ? human(waitMs / 1000) : 'unlimited'} lets a ${toward} connection stay quiet longer than ${lb.name}'s ${human(lb.idleSeconds)}: ${box.failure}.`
        : `nothing here waits ${human(lb.idleSeconds)} today (longest ${waitName} ${human(waitMs / 1000)}), but a dead ${toward} or a flow ${lb.name} forgot is only noticed at HAProxy's own timeouts.`,
      keepaliveFix(side, box),
    );
  }
}

/** Reads an HAProxy configuration and finds its keepalive hazards against the given middleboxes. */
export function auditHaproxy(
  file: string,
  opts: AuditOptions & { system: SystemKeepaliveDefaults },
): ConfigAudit {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    return unreadable(file, error, 'haproxy');
  }
  let sections: HaproxySection[];
  const sources = new Map([[file, text]]);
  try {
    sections = parseHaproxy(text, file);
    const auditor = new Auditor(sections, opts);
    auditor.run();
    return auditor.audit(sources);
  } catch (error) {
    if (!(error instanceof HaproxyConfigError)) throw error;
    return {
      findings: [
        {
          severity: 'error',
          code: 'config-invalid',
          layer: 'haproxy',
          message: error.message.slice(error.message.indexOf(': ') + 2),
          evidence: fileEvidence(error.at),
          why: 'haproxy -c refuses this, so the configuration cannot be (re)loaded, and nothing after it was checked.',
          fix: error.hint,
        },
      ],
      systemDependents: [],
      sources,
      timeouts: {},
    };
  }
}
