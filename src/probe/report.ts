/**
 * From per-connection evidence to what an SRE asks: how long may a connection
 * stay idle on this path, who ends it (a middlebox or the server), how, and
 * whether a given keepalive keeps it alive.
 */
import { probePeriod, type Recommendation, recommend } from '../keepalive/recommend.js';
import type { KeepaliveSpec } from '../keepalive/spec.js';
import { systemDefaults } from '../keepalive/system.js';
import { formatDuration } from '../units/time.js';
import type { ConnectionEvidence, Outcome, ProbeOptions, RawProbe } from './engine.js';
import { formatTarget, median } from './plan.js';

export type Expiry = 'rst' | 'drop' | 'fin' | 'rst-by-server' | 'none';

export interface Bracket {
  /** Longest idle that was seen to survive (or, for closes, the earliest close). */
  lowMs: number;
  /** Shortest idle that was seen to fail (or the latest close). */
  highMs: number;
  estimateMs: number;
  /** Half the bracket: T is estimateMs ± this. */
  precisionMs: number;
}

export interface MiddleboxFinding extends Bracket {
  /** `rst`: a reset when the idle connection is used; `drop`: silence until TCP_USER_TIMEOUT. */
  expiry: 'rst' | 'drop';
  /** True when the middlebox closed idle sessions itself, without waiting for their next packet. */
  closesUnused: boolean;
}

export interface ServerFinding {
  /** Milliseconds of idleness after which the server closed connections on its own. */
  idleCloseMs: number;
  expiry: 'fin' | 'rst-by-server';
  /** How many connections it closed that way. */
  connections: number;
}

export interface VerifyFinding {
  spec: string;
  /** null: nothing to verify against (no expiry up to --max). */
  survived: boolean | null;
  /** Seconds between keepalive probes on a healthy idle connection with this spec (system defaults filled in). */
  probePeriodSeconds: number | null;
  heldMs: number | null;
  detail: string;
}

/** `--payload http`: what the server answered to the probe's `HEAD /` requests. */
export interface HttpSummary {
  /** Distinct answers, most frequent first. */
  answers: { statusLine: string; status: number; keepAlive: boolean; connections: number }[];
  /** Uses acknowledged by TCP that had no (complete) answer when the report was made. */
  unanswered: number;
  /**
   * Connections idled from the answer to a first request (the server kept the first connection
   * open after answering), so a server's keep-alive timeout is what they measure; false when it
   * answered with Connection: close, and connections idled fresh.
   */
  idleAfterRequest: boolean;
}

export interface ProbeReport {
  target: { host: string; port: number; address: string };
  settings: {
    minMs: number;
    maxMs: number;
    precisionMs: number;
    connections: number;
    payload: string;
    watchServerMs: number | null;
  };
  rttMs: number;
  /** How long a use may stay unacknowledged before it counts as dropped (also TCP_USER_TIMEOUT). */
  ackWaitMs: number;
  verdict: 'measured' | 'none' | 'below-min' | 'interrupted' | 'inconclusive';
  /** The path's idle timeout: whichever of middlebox and server ends an idle connection first. */
  idleTimeout: Bracket | null;
  expiry: Expiry;
  enforcedBy: 'middlebox' | 'server' | null;
  middlebox: MiddleboxFinding | null;
  server: ServerFinding | null;
  /** Longest idle the watch connections (keepalive on) survived without a server close. */
  serverWatchedMs: number;
  recommendation: (Recommendation & { basis: 'middlebox' | 'server' }) | null;
  verify: VerifyFinding[];
  /** null unless `--payload http`. */
  http: HttpSummary | null;
  notes: string[];
  elapsedMs: number;
  rounds: number;
  connectionsOpened: number;
  interrupted: boolean;
  evidence: ConnectionEvidence[];
}

const isClose = (o: Outcome) => o === 'fin' || o === 'rst-by-server';

function majority<T extends string>(values: T[]): T {
  const counts = new Map<T, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1])[0]![0];
}

function closeBracket(ages: number[]): Bracket {
  const lowMs = Math.min(...ages);
  const highMs = Math.max(...ages);
  return {
    lowMs,
    highMs,
    estimateMs: Math.round(median(ages)),
    precisionMs: Math.round((highMs - lowMs) / 2),
  };
}

const tolerance = (ms: number) => Math.max(1000, ms * 0.1);

export function buildReport(opts: ProbeOptions, raw: RawProbe, payloadText: string): ProbeReport {
  const ev = raw.evidence;
  const notes: string[] = [];
  const used = ev.filter((e) => e.role === 'grid' && e.usedAtMs !== undefined && e.idleMs !== undefined);
  const alive = used.filter((e) => e.outcome === 'alive').map((e) => e.idleMs!);
  const failed = used.filter((e) => e.outcome === 'rst' || e.outcome === 'drop');
  const gridCloses = ev.filter((e) => e.role === 'grid' && isClose(e.outcome) && e.usedAtMs === undefined);
  const watchCloses = ev.filter((e) => e.role === 'watch' && isClose(e.outcome));
  const watchAlive = ev.filter((e) => e.role === 'watch' && e.outcome === 'alive').map((e) => e.idleMs ?? 0);
  const serverWatchedMs = Math.max(0, ...watchAlive);

  let middlebox: MiddleboxFinding | null = null;
  let server: ServerFinding | null = null;
  let belowMin = false;

  const low = alive.length ? Math.max(...alive) : undefined;
  const failAges = failed.map((e) => e.idleMs!);
  const high = failAges.length ? Math.min(...failAges) : undefined;
  if (high !== undefined) {
    const expiry = majority(failed.map((e) => e.outcome as 'rst' | 'drop'));
    if (low === undefined || low < opts.minMs) {
      belowMin = true;
      middlebox = {
        lowMs: 0,
        highMs: high,
        estimateMs: high,
        precisionMs: high,
        expiry,
        closesUnused: false,
      };
    } else {
      if (low > high)
        notes.push(
          `inconsistent evidence: a connection survived ${low} ms idle while another failed at ${high} ms; the path may be lossy or balance over several middleboxes`,
        );
      const [lo, hi] = low > high ? [high, low] : [low, high];
      middlebox = {
        lowMs: lo,
        highMs: hi,
        estimateMs: Math.round((lo + hi) / 2),
        precisionMs: Math.round((hi - lo) / 2),
        expiry,
        closesUnused: false,
      };
    }
  }

  if (gridCloses.length > 0) {
    const ages = gridCloses.map((e) => e.idleMs!);
    const s = median(ages);
    const kind = majority(gridCloses.map((e) => e.outcome as 'fin' | 'rst-by-server'));
    const watchersAtSameTime = watchCloses.filter((w) => Math.abs(w.idleMs! - s) <= tolerance(s));
    if (watchersAtSameTime.length > 0 || watchAlive.length === 0) {
      // TCP keepalive did not keep the watch connections open either: an application timer, i.e. the server.
      const all = [...ages, ...watchersAtSameTime.map((w) => w.idleMs!)];
      server = { idleCloseMs: Math.round(median(all)), expiry: kind, connections: all.length };
      if (watchAlive.length === 0 && watchersAtSameTime.length === 0)
        notes.push('no watch connection lived long enough to confirm that the closer is the server');
    } else if (middlebox === null || middlebox.highMs > s) {
      // The watch connections outlived the closes thanks to keepalive: something on the path
      // counts TCP keepalive as activity, so it is a middlebox that closes idle sessions itself.
      middlebox = { ...closeBracket(ages), expiry: 'rst', closesUnused: true };
      if (kind === 'fin')
        notes.push(
          'the middlebox closed idle sessions with a FIN: it terminates TCP (a proxy) yet counts keepalive as activity',
        );
    }
  }
  if (server === null && watchCloses.length > 0) {
    const ages = watchCloses.map((e) => e.idleMs!);
    server = {
      idleCloseMs: Math.round(median(ages)),
      expiry: majority(watchCloses.map((e) => e.outcome as 'fin' | 'rst-by-server')),
      connections: ages.length,
    };
    if (middlebox && middlebox.estimateMs > 0 && middlebox.estimateMs < 2000)
      notes.push(
        'the middlebox expires sessions within 2 s, close to the watch connections\' 1 s keepalive: the "server" close may be the middlebox answering a keepalive probe',
      );
  }

  let idleTimeout: Bracket | null = null;
  let expiry: Expiry = 'none';
  let enforcedBy: ProbeReport['enforcedBy'] = null;
  const serverFirst = server !== null && (middlebox === null || server.idleCloseMs < middlebox.estimateMs);
  if (serverFirst && server) {
    const ages = [...gridCloses, ...watchCloses]
      .map((e) => e.idleMs!)
      .filter((a) => Math.abs(a - server.idleCloseMs) <= tolerance(server.idleCloseMs));
    idleTimeout = ages.length ? closeBracket(ages) : closeBracket([server.idleCloseMs]);
    expiry = server.expiry;
    enforcedBy = 'server';
  } else if (middlebox) {
    const { lowMs, highMs, estimateMs, precisionMs } = middlebox;
    idleTimeout = { lowMs, highMs, estimateMs, precisionMs };
    expiry = middlebox.expiry;
    enforcedBy = 'middlebox';
  }

  let verdict: ProbeReport['verdict'];
  if (raw.interrupted) verdict = 'interrupted';
  else if (belowMin && enforcedBy === 'middlebox') verdict = 'below-min';
  else if (idleTimeout) verdict = 'measured';
  else if (alive.length > 0 && Math.max(...alive) >= opts.maxMs - 50) verdict = 'none';
  else verdict = 'inconclusive';
  if (verdict === 'inconclusive')
    notes.push(
      'no connection could be used at the planned idle times: see the evidence for connection errors',
    );

  let recommendation: ProbeReport['recommendation'] = null;
  const basisMs = middlebox ? middlebox.lowMs : server?.idleCloseMs;
  if (basisMs !== undefined && !belowMin) {
    const seconds = Math.floor(basisMs / 1000);
    if (seconds >= 2) recommendation = { ...recommend(seconds), basis: middlebox ? 'middlebox' : 'server' };
    else
      notes.push(
        `an idle timeout of ${basisMs} ms leaves no room for TCP keepalive (whole seconds, at least 1 s)`,
      );
  }

  const http =
    opts.payload.kind === 'http' ? { ...httpSummary(ev), idleAfterRequest: raw.idleAfterRequest } : null;
  if (http) {
    const odd = http.answers.filter((a) => a.status < 200 || a.status >= 400);
    for (const a of odd)
      notes.push(
        a.status === 0
          ? `the service did not answer HEAD / with HTTP (it sent ${a.statusLine}): the measurement stands, delivery is judged by TCP acknowledgement; --payload none or HEX may suit this service better`
          : `the server answered the probe's HEAD / with ${a.statusLine} on ${a.connections} connection${a.connections === 1 ? '' : 's'}: the measurement stands (delivery is judged by TCP acknowledgement), but the request did not reach a working HTTP handler`,
      );
  }

  const limitMs = idleTimeout?.highMs;
  const verify = opts.verify.map((v) => verifyFinding(v, ev, limitMs, idleTimeout?.lowMs ?? 0));

  return {
    target: { host: opts.host, port: opts.port, address: raw.address },
    settings: {
      minMs: opts.minMs,
      maxMs: opts.maxMs,
      precisionMs: opts.precisionMs,
      connections: opts.connections,
      payload: payloadText,
      watchServerMs: opts.watchServerMs ?? null,
    },
    rttMs: raw.rttMs,
    ackWaitMs: raw.ackWaitMs,
    verdict,
    idleTimeout,
    expiry,
    enforcedBy,
    middlebox,
    server,
    serverWatchedMs,
    recommendation,
    verify,
    http,
    notes,
    elapsedMs: raw.elapsedMs,
    rounds: raw.rounds,
    connectionsOpened: raw.connectionsOpened,
    interrupted: raw.interrupted,
    evidence: ev,
  };
}

function httpSummary(ev: ConnectionEvidence[]): Omit<HttpSummary, 'idleAfterRequest'> {
  const answers = new Map<string, HttpSummary['answers'][number]>();
  let unanswered = 0;
  for (const e of ev) {
    if (e.http) {
      const key = `${e.http.statusLine}|${e.http.keepAlive}`;
      const a = answers.get(key);
      if (a) a.connections++;
      else answers.set(key, { ...e.http, connections: 1 });
    } else if (e.usedAtMs !== undefined && e.outcome === 'alive') unanswered++;
  }
  return { answers: [...answers.values()].sort((a, b) => b.connections - a.connections), unanswered };
}

function specPeriod(spec: KeepaliveSpec): number | null {
  if (!spec.enable) return null;
  let sys: { idle: number; interval: number } = { idle: 7200, interval: 75 };
  try {
    sys = systemDefaults();
  } catch {
    // Not Linux /proc: the kernel's compiled-in defaults above.
  }
  return probePeriod({ idle: spec.idle ?? sys.idle, interval: spec.interval ?? sys.interval });
}

function verifyFinding(
  v: { text: string; spec: KeepaliveSpec },
  ev: ConnectionEvidence[],
  limitMs: number | undefined,
  /** The longest idle seen to survive: a probe later than this may come too late. */
  safeMs: number,
): VerifyFinding {
  const conns = ev.filter((e) => e.role === 'verify' && e.spec === v.text);
  const period = specPeriod(v.spec);
  const base = { spec: v.text, probePeriodSeconds: period };
  if (conns.some((c) => c.outcome === 'cancelled') || limitMs === undefined) {
    return { ...base, survived: null, heldMs: null, detail: conns[0]?.detail || 'not verified' };
  }
  const failedConn = conns.find((c) => c.outcome !== 'alive');
  if (!failedConn) {
    const held = Math.min(...conns.map((c) => c.idleMs ?? 0));
    return {
      ...base,
      survived: true,
      heldMs: held,
      detail: `${conns.length}/${conns.length} connections carried data after ${fmt(held)} idle, longer than the ${fmt(limitMs)} at which unprotected ones died`,
    };
  }
  const at = failedConn.idleMs ?? 0;
  let why: string;
  if (isClose(failedConn.outcome))
    why = "the server closed it on its own: TCP keepalive does not reset an application's idle timer";
  else if (period === null) why = 'keepalive is off';
  else if (v.spec.idle !== undefined && v.spec.idle * 1000 > safeMs)
    why = `its first probe comes only after ${v.spec.idle}s idle, later than the ${fmt(safeMs)} the path was seen to allow`;
  else if (period * 1000 > safeMs)
    why = `its probes come every max(idle, interval) = ${period}s, not before the path forgets the session`;
  else why = 'its probes did not keep the session (lost probes, or count too low)';
  return {
    ...base,
    survived: false,
    heldMs: at,
    detail: `${failedConn.outcome} after ${fmt(at)} idle (${failedConn.detail}); ${why}`,
  };
}

export function fmt(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 600_000) return `${(ms / 1000).toFixed(1)}s`;
  return formatDuration(Math.round(ms / 1000) * 1000);
}

const EXPIRY_TEXT: Record<Expiry, string> = {
  rst: 'rst — the forgotten session is answered with a TCP reset when it is next used',
  drop: 'drop — the forgotten session is silently blackholed: a use goes unacknowledged until a timeout',
  fin: "fin — the server closes idle connections itself (a FIN, without any use): the server's own idle timeout",
  'rst-by-server':
    "rst-by-server — the server resets idle connections itself (without any use): the server's own idle timeout",
  none: 'none — no expiry seen',
};

export function renderReport(r: ProbeReport): string {
  const lines: string[] = [];
  lines.push(
    `keepwire probe ${formatTarget(r.target.host, r.target.port)}${r.target.address !== r.target.host ? ` (${r.target.address})` : ''} — rtt ${r.rttMs} ms, ${fmt(r.elapsedMs)}, ${r.connectionsOpened} connections in ${r.rounds} round${r.rounds === 1 ? '' : 's'}, payload ${r.settings.payload}`,
  );
  lines.push('');
  const t = r.idleTimeout;
  if (r.verdict === 'interrupted') lines.push('Interrupted before the measurement finished.');
  if (t && r.verdict === 'below-min') {
    lines.push(
      `Idle timeout: below --min ${fmt(r.settings.minMs)} (a connection idle ${fmt(t.highMs)} already failed)`,
    );
  } else if (t) {
    const bracket =
      r.enforcedBy === 'server'
        ? `closes seen after ${fmt(t.lowMs)}–${fmt(t.highMs)} idle`
        : `a connection idle ${fmt(t.lowMs)} still carried data, one idle ${fmt(t.highMs)} did not`;
    lines.push(`Idle timeout: ${fmt(t.estimateMs)} ± ${fmt(Math.max(t.precisionMs, 1))}  (${bracket})`);
    lines.push(`Expiry:       ${EXPIRY_TEXT[r.expiry]}`);
    lines.push(
      `Enforced by:  ${r.enforcedBy === 'server' ? 'the server (or a proxy that terminates TCP in front of it)' : 'a middlebox on the path (load balancer, NAT, firewall)'}`,
    );
  } else if (r.verdict === 'none') {
    lines.push(`Idle timeout: none up to --max ${fmt(r.settings.maxMs)} (expiry: none)`);
  } else if (r.verdict === 'inconclusive') {
    lines.push('Idle timeout: not measured (see notes)');
  }
  if (r.middlebox && r.enforcedBy === 'server') {
    lines.push(
      `Middlebox:    also expires sessions after ${fmt(r.middlebox.estimateMs)} (${r.middlebox.expiry})`,
    );
  }
  if (r.server && r.enforcedBy === 'middlebox') {
    lines.push(
      `Server:       closes idle connections itself after ${fmt(r.server.idleCloseMs)} (${r.server.expiry}), seen behind the middlebox on connections kept alive by TCP keepalive`,
    );
  } else if (!r.server && r.verdict !== 'interrupted') {
    lines.push(
      `Server:       no idle close of its own within ${fmt(r.serverWatchedMs)} (watched with TCP keepalive 1s:1s:5${r.settings.watchServerMs === null ? '; --watch-server TIME looks longer' : ''})`,
    );
  }
  if (r.middlebox?.closesUnused)
    lines.push(
      '              the middlebox closes idle sessions by itself, without waiting for their next packet',
    );
  if (r.http) {
    const answered = r.http.answers.map(
      (a) =>
        `${a.statusLine}${a.status === 0 ? '' : a.keepAlive ? ', keep-alive' : ', then closed'} (${a.connections} connection${a.connections === 1 ? '' : 's'})`,
    );
    if (r.http.unanswered > 0)
      answered.push(`no answer (${r.http.unanswered} connection${r.http.unanswered === 1 ? '' : 's'})`);
    if (answered.length > 0) lines.push(`HTTP:         HEAD / answered ${answered.join('; ')}`);
    lines.push(
      r.http.idleAfterRequest
        ? 'HTTP:         idle measured after a first request (the keep-alive timeout a server arms after a response)'
        : 'HTTP:         idle measured on fresh connections (the first answer closed the connection)',
    );
  }
  for (const v of r.verify) {
    const verdict = v.survived === null ? 'not verified' : v.survived ? 'SURVIVES' : 'DOES NOT SURVIVE';
    lines.push(`Verify so_keepalive=${v.spec}: ${verdict} — ${v.detail}`);
  }
  const rec = r.recommendation;
  if (rec) {
    lines.push('');
    if (rec.basis === 'middlebox') {
      const k = rec.keepalive;
      lines.push(
        `Recommended for an LB idle timeout of ${rec.lbIdleTimeout}s (whole seconds within the ${fmt(r.middlebox?.lowMs ?? 0)} seen to survive; keepwire recommend --lb-idle ${rec.lbIdleTimeout}s):`,
      );
      lines.push(
        `  TCP keepalive on both legs: idle ${k.idle}s, interval ${k.interval}s, count ${k.count} — nginx so_keepalive=${rec.soKeepalive}`,
      );
      lines.push(
        `  check it here: keepwire probe ${formatTarget(r.target.host, r.target.port)} --verify-keepalive ${rec.soKeepalive}`,
      );
      lines.push(
        `  HTTP servers behind it: keep-alive timeout > ${rec.lbIdleTimeout}s (${rec.httpServerKeepaliveTimeout}s); client pools: idle timeout < ${rec.lbIdleTimeout}s (${rec.clientPoolIdleTimeout}s)`,
      );
    } else {
      lines.push(
        `The server closes idle connections after ${rec.lbIdleTimeout}s; TCP keepalive cannot prevent that.`,
      );
      lines.push(
        `  Client pools: close idle connections first, idle timeout < ${rec.lbIdleTimeout}s (e.g. ${rec.clientPoolIdleTimeout}s), or send application-level pings.`,
      );
    }
  }
  for (const n of r.notes) lines.push(`note: ${n}`);
  return `${lines.join('\n')}\n`;
}
