/**
 * The `status` page's data (also `?format=json`, schema in docs/status.md):
 * listeners and their so_keepalive, upstream groups with each server's
 * health and the cache size, recent notable events, and the most idle live
 * connections, client and upstream, each with what the kernel holds for it:
 * TCP_KEEPIDLE/INTVL/CNT in force and TCP_INFO (unanswered probes, time
 * since data and ACK received, RTT), read through src/kernel/ and
 * `readKeepaliveFd` (one door to the kernel, one tcp_info decoder).
 *
 * A process answers `gather('status')` with its own snapshot; the page
 * merges them (connection tables concatenated, re-sorted, cut to N).
 */
import type { Socket } from 'node:net';
import { readKeepaliveFd } from '../keepalive/sockopt.js';
import { fdOf } from '../kernel/fd.js';
import { readTcpInfo } from '../kernel/tcp-info.js';
import type { Upstream } from '../upstream/index.js';
import { liveHttp, liveStreams } from './live.js';
import { allListenerStats, type NotableEvent, recentEvents } from './stats.js';

export interface KernelState {
  /** TCP keepalive in force (getsockopt SO_KEEPALIVE, TCP_KEEPIDLE/INTVL/CNT; seconds). */
  keepalive: { enabled: boolean; idle: number; interval: number; count: number };
  /** Keepalive (or zero-window) probes sent and not answered (tcpi_probes). */
  probesUnanswered: number;
  lastDataReceivedMs: number;
  lastDataSentMs: number;
  lastAckReceivedMs: number;
  rttUs: number;
  /** TCP state number (1 ESTABLISHED, 8 CLOSE_WAIT, ...). */
  tcpState: number;
}

export interface StatusConnection {
  side: 'client' | 'upstream';
  /** waiting / reading / writing (HTTP client), tunnel, pooled (idle in the keep-alive cache), stream. */
  state: string;
  /** Listening address (client side) or upstream group (upstream side). */
  where: string;
  local: string;
  remote: string;
  pid: number;
  ageMs: number;
  /** Time with no byte either way: from the kernel when it answered, else keepwire's own clock. */
  idleMs: number;
  bytesReceived: number;
  bytesSent: number;
  /** lb_idle_timeout in force for this connection, null when not configured. */
  lbIdleTimeoutMs: number | null;
  kernel: KernelState | { error: string };
}

export interface StatusListener {
  listen: string;
  kind: 'http' | 'stream';
  soKeepalive: string;
  accepted: number;
}

export interface StatusServer {
  server: string;
  up: boolean;
  down: boolean;
  backup: boolean;
  fails: number;
  active: number;
}

export interface StatusUpstream {
  name: string;
  /** Idle connections in the keep-alive cache (null for a stream group: no cache). */
  idleConnections: number | null;
  /** keepalive N of the group (cache size), 0 without a cache. */
  keepalive: number;
  servers: StatusServer[];
}

export interface StatusSnapshot {
  pid: number;
  at: number;
  listeners: StatusListener[];
  upstreams: StatusUpstream[];
  events: (NotableEvent & { pid: number })[];
  /** Live connections in this process (the table lists the most idle of them). */
  connectionsTotal: number;
  connections: StatusConnection[];
}

function endpoint(address: string | undefined, port: number | undefined): string {
  if (address === undefined) return '-';
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

function kernelState(socket: Socket): KernelState | { error: string } {
  try {
    const fd = fdOf(socket);
    const k = readKeepaliveFd(fd);
    const t = readTcpInfo(fd);
    return {
      keepalive: { enabled: k.enabled, idle: k.idle, interval: k.interval, count: k.count },
      probesUnanswered: t.probes,
      lastDataReceivedMs: t.lastDataRecvMs,
      lastDataSentMs: t.lastDataSentMs,
      lastAckReceivedMs: t.lastAckRecvMs,
      rttUs: t.rttUs,
      tcpState: t.state,
    };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

interface Candidate {
  /** Undefined for a client connection: read from `conn` only for the rows shown (a parked one gets its socket made again). */
  socket: Socket | undefined;
  conn?: { readonly socket: Socket };
  side: 'client' | 'upstream';
  state: string;
  where: string;
  since: number;
  idleMs: number;
  lbIdleTimeoutMs: number | undefined;
}

/** The default of status_connections. */
export const DEFAULT_STATUS_CONNECTIONS = 200;

function servers(upstream: Upstream, now: number): StatusServer[] {
  return upstream.hosts.map((h) => ({
    server: h.address.text,
    up: !h.server.down && h.health.available(now),
    down: h.server.down,
    backup: h.server.backup,
    fails: h.health.failures,
    active: h.activeConns,
  }));
}

/** This process's snapshot, with the `limit` most idle connections read from the kernel. */
export function collectStatus(limit?: number): StatusSnapshot {
  const now = Date.now();
  let max = limit ?? 0;
  if (limit === undefined) {
    for (const g of liveHttp) for (const l of g.statusLocations) max = Math.max(max, l.statusConnections);
    if (max === 0) max = DEFAULT_STATUS_CONNECTIONS;
  }
  const candidates: Candidate[] = [];
  const upstreams = new Map<string, StatusUpstream>();
  for (const g of liveHttp) {
    for (const f of g.frontends) {
      const lb = f.lbIdleTimeoutMs;
      for (const c of f.connections) {
        if (c.tunnelled) continue;
        const state = c.state;
        candidates.push({
          socket: undefined,
          conn: c,
          side: 'client',
          state,
          where: f.listenText,
          since: c.acceptedAt,
          idleMs: state === 'waiting' ? now - c.idleSince : 0,
          lbIdleTimeoutMs: lb,
        });
      }
      for (const t of f.tunnels) {
        const idle = t.idleForMs;
        candidates.push({
          socket: t.client,
          side: 'client',
          state: 'tunnel',
          where: f.listenText,
          since: t.startedAt,
          idleMs: idle,
          lbIdleTimeoutMs: lb,
        });
        candidates.push({
          socket: t.upstream,
          side: 'upstream',
          state: 'tunnel',
          where: t.upstreamText,
          since: t.startedAt,
          idleMs: idle,
          lbIdleTimeoutMs: g.lbIdleTimeoutMs,
        });
      }
    }
    for (const group of g.groups) {
      const name = group.stats.upstream;
      if (!upstreams.has(name))
        upstreams.set(name, {
          name,
          idleConnections: group.pool.size,
          keepalive: group.pool.settings.keepalive,
          servers: servers(group.upstream, now),
        });
      for (const conn of group.pool.idleConnections())
        candidates.push({
          socket: conn.socket,
          side: 'upstream',
          state: 'pooled',
          where: name,
          since: conn.createdAt,
          idleMs: now - conn.idleSince,
          lbIdleTimeoutMs: g.lbIdleTimeoutMs,
        });
    }
  }
  for (const p of liveStreams) {
    if (!upstreams.has(p.upstream.name))
      upstreams.set(p.upstream.name, {
        name: p.upstream.name,
        idleConnections: null,
        keepalive: 0,
        servers: servers(p.upstream, now),
      });
    for (const s of p.sessions) {
      const idle = s.idleForMs;
      const lb = p.model.lbIdleTimeoutMs;
      candidates.push({
        socket: s.client,
        side: 'client',
        state: 'stream',
        where: s.listenText,
        since: s.startedAt,
        idleMs: idle,
        lbIdleTimeoutMs: lb,
      });
      if (s.upstreamSocket !== undefined)
        candidates.push({
          socket: s.upstreamSocket,
          side: 'upstream',
          state: 'stream',
          where: p.upstream.name,
          since: s.startedAt,
          idleMs: idle,
          lbIdleTimeoutMs: lb,
        });
    }
  }
  candidates.sort((a, b) => b.idleMs - a.idleMs);
  const connections: StatusConnection[] = [];
  for (const c of candidates.slice(0, max)) {
    const s = c.socket ?? c.conn!.socket;
    if (s.destroyed) continue;
    const kernel = kernelState(s);
    const idleMs = 'error' in kernel ? c.idleMs : Math.min(kernel.lastDataReceivedMs, kernel.lastDataSentMs);
    connections.push({
      side: c.side,
      state: c.state,
      where: c.where,
      local: endpoint(s.localAddress, s.localPort),
      remote: endpoint(s.remoteAddress, s.remotePort),
      pid: process.pid,
      ageMs: now - c.since,
      idleMs,
      bytesReceived: s.bytesRead,
      bytesSent: s.bytesWritten,
      lbIdleTimeoutMs: c.lbIdleTimeoutMs ?? null,
      kernel,
    });
  }
  connections.sort((a, b) => b.idleMs - a.idleMs);
  return {
    pid: process.pid,
    at: now,
    listeners: [...allListenerStats()].map((s) => ({
      listen: s.listen,
      kind: s.kind,
      soKeepalive: s.soKeepalive,
      accepted: s.accepted,
    })),
    upstreams: [...upstreams.values()],
    events: recentEvents().map((e) => ({ ...e, pid: process.pid })),
    connectionsTotal: candidates.length,
    connections,
  };
}

/** The page's view of N processes: listeners and upstreams merged, connections the N most idle of all. */
export function mergeStatus(answers: readonly StatusSnapshot[], limit: number): StatusSnapshot {
  const listeners = new Map<string, StatusListener>();
  const upstreams = new Map<string, StatusUpstream>();
  const events: StatusSnapshot['events'] = [];
  const connections: StatusConnection[] = [];
  let total = 0;
  for (const a of answers) {
    for (const l of a.listeners) {
      const key = `${l.kind} ${l.listen}`;
      const have = listeners.get(key);
      if (have === undefined) listeners.set(key, { ...l });
      else have.accepted += l.accepted;
    }
    for (const u of a.upstreams) {
      const have = upstreams.get(u.name);
      if (have === undefined) {
        upstreams.set(u.name, { ...u, servers: u.servers.map((s) => ({ ...s })) });
        continue;
      }
      if (have.idleConnections !== null && u.idleConnections !== null)
        have.idleConnections += u.idleConnections;
      for (const s of u.servers) {
        const hs = have.servers.find((x) => x.server === s.server);
        if (hs === undefined) have.servers.push({ ...s });
        else {
          hs.up ||= s.up;
          hs.fails += s.fails;
          hs.active += s.active;
        }
      }
    }
    events.push(...a.events);
    connections.push(...a.connections);
    total += a.connectionsTotal;
  }
  events.sort((a, b) => a.at - b.at);
  connections.sort((a, b) => b.idleMs - a.idleMs);
  return {
    pid: process.pid,
    at: Date.now(),
    listeners: [...listeners.values()],
    upstreams: [...upstreams.values()],
    events: events.slice(-100),
    connectionsTotal: total,
    connections: connections.slice(0, limit),
  };
}
