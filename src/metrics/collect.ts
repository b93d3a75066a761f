/**
 * This process's answer to `gather('metrics')`: the counters of stats.ts
 * and the gauges read now from the live proxies (live.ts), as metric
 * families (exposition.ts). Labels are bounded by the configuration:
 * listening address, upstream group, upstream server, status class, reason.
 */
import type { Family, HistogramSample, Sample } from './exposition.js';
import { liveHttp, liveStreams } from './live.js';
import { allListenerStats, allUpstreamStats, type ByLabel, type Histogram } from './stats.js';

function byLabel(into: Sample[], base: Record<string, string>, label: string, counts: ByLabel): void {
  for (const [value, n] of Object.entries(counts))
    into.push({ labels: { ...base, [label]: value }, value: n });
}

function hist(labels: Record<string, string>, h: Histogram): HistogramSample {
  return { labels, bounds: h.bounds, counts: [...h.counts], sum: h.sum, count: h.count };
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

export function collectMetrics(): Family[] {
  const counter = (name: string, help: string): Family & { samples: Sample[] } => ({
    name,
    help,
    type: 'counter',
    samples: [],
  });
  const accepted = counter('keepwire_connections_accepted', 'Client connections accepted (nginx accepts).');
  const handled = counter(
    'keepwire_connections_handled',
    'Client connections accepted and served, not refused over worker_connections (nginx handled).',
  );
  const requests = counter('keepwire_http_requests', 'HTTP requests read (nginx requests).');
  const responses = counter('keepwire_http_responses', 'HTTP requests ended, by status class sent.');
  const ended = counter(
    'keepwire_http_requests_ended',
    'HTTP requests ended, by the access log reason (ok, client_closed, upstream_timeout, ...).',
  );
  const clientIdle = counter(
    'keepwire_client_idle_timeout_closes',
    'Keep-alive client connections closed by keepalive_timeout.',
  );
  const sessions = counter(
    'keepwire_stream_sessions_ended',
    'Stream (L4) sessions ended, by the session log reason (idle_timeout, client_reset, ...).',
  );
  const tunnelIdle = counter(
    'keepwire_tunnel_idle_timeout_closes',
    'Upgrade (WebSocket) tunnels closed by proxy_read_timeout with no byte either way.',
  );
  const heartbeats = counter(
    'keepwire_websocket_heartbeats',
    'Unsolicited WebSocket Pong frames sent by websocket_heartbeat.',
  );
  const duration: HistogramSample[] = [];
  const clientReuse: HistogramSample[] = [];
  const listenerInfo: Sample[] = [];
  for (const s of allListenerStats()) {
    const l = { listener: s.listen };
    const lk = { listener: s.listen, kind: s.kind };
    accepted.samples.push({ labels: lk, value: s.accepted });
    handled.samples.push({ labels: lk, value: s.handled });
    listenerInfo.push({ labels: { ...lk, so_keepalive: s.soKeepalive }, value: 1 });
    if (s.kind === 'stream') {
      byLabel(sessions.samples, l, 'reason', s.sessionReasons);
      continue;
    }
    requests.samples.push({ labels: l, value: s.requests });
    byLabel(responses.samples, l, 'code', s.byClass);
    byLabel(ended.samples, l, 'reason', s.requestReasons);
    clientIdle.samples.push({ labels: l, value: s.clientIdleTimeouts });
    tunnelIdle.samples.push({ labels: l, value: s.tunnelIdleTimeouts });
    heartbeats.samples.push({ labels: l, value: s.websocketHeartbeats });
    duration.push(hist(l, s.duration));
    clientReuse.push(hist(l, s.idleBeforeReuse));
  }

  const newConns = counter(
    'keepwire_upstream_connections_new',
    'HTTP requests sent to an upstream on a new connection.',
  );
  const reuses = counter(
    'keepwire_upstream_connection_reuses',
    'HTTP requests sent to an upstream on a cached keep-alive connection.',
  );
  const retries = counter(
    'keepwire_upstream_retries',
    'Requests repeated: kind stale_connection (a reused connection failed before any response byte) or next_upstream.',
  );
  const failures = counter(
    'keepwire_upstream_failures',
    'Failed upstream attempts, by reason (connect_failed, connect_timeout, upstream_timeout, upstream_reset, upstream_invalid, no_live_upstreams).',
  );
  const upstreamIdle = counter(
    'keepwire_upstream_idle_timeout_closes',
    'Cached upstream connections closed by the group keepalive_timeout (or the upstream Keep-Alive hint).',
  );
  const upstreamReuse: HistogramSample[] = [];
  const upstreamInfo: Sample[] = [];
  for (const s of allUpstreamStats()) {
    const u = { upstream: s.upstream };
    newConns.samples.push({ labels: u, value: s.connectionsNew });
    reuses.samples.push({ labels: u, value: s.connectionsReused });
    byLabel(retries.samples, u, 'kind', s.retries);
    byLabel(failures.samples, u, 'reason', s.failures);
    upstreamIdle.samples.push({ labels: u, value: s.idleTimeouts });
    upstreamReuse.push(hist(u, s.idleBeforeReuse));
    for (const k of s.socketKeepalive)
      upstreamInfo.push({
        labels: {
          ...u,
          proxy_socket_keepalive: k,
          keepalive: String(s.pool?.keepalive ?? 0),
          keepalive_timeout: formatMs(s.pool?.keepaliveTimeoutMs ?? 0),
        },
        value: 1,
      });
  }

  // Gauges from the live proxies.
  const states: Sample[] = [];
  const idleConns: Sample[] = [];
  const up: Sample[] = [];
  const fails: Sample[] = [];
  const active: Sample[] = [];
  const now = Date.now();
  const servers = new Set<string>();
  const server = (group: string, upstream: import('../upstream/index.js').Upstream) => {
    for (const h of upstream.hosts) {
      const labels = { upstream: group, server: h.address.text };
      const key = `${group} ${h.address.text}`;
      if (servers.has(key)) continue;
      servers.add(key);
      up.push({ labels, value: !h.server.down && h.health.available(now) ? 1 : 0 });
      fails.push({ labels, value: h.health.failures });
      active.push({ labels, value: h.activeConns });
    }
  };
  const connCounts = new Map<string, { reading: number; writing: number; waiting: number }>();
  for (const g of liveHttp) {
    for (const f of g.frontends) {
      let c = connCounts.get(f.listenText);
      if (c === undefined) {
        c = { reading: 0, writing: 0, waiting: 0 };
        connCounts.set(f.listenText, c);
      }
      for (const conn of f.connections) c[conn.state]++;
    }
    for (const group of g.groups) {
      idleConns.push({ labels: { upstream: group.stats.upstream }, value: group.pool.size });
      server(group.stats.upstream, group.upstream);
    }
  }
  for (const [listener, c] of connCounts)
    for (const state of ['reading', 'writing', 'waiting'] as const)
      states.push({ labels: { listener, state }, value: c[state] });
  const streamActive = new Map<string, number>();
  for (const p of liveStreams) {
    for (const s of p.sessions) {
      const key = s.listenText;
      streamActive.set(key, (streamActive.get(key) ?? 0) + 1);
    }
    server(p.upstream.name, p.upstream);
  }
  for (const [listener, n] of streamActive) states.push({ labels: { listener, state: 'stream' }, value: n });

  return [
    accepted,
    handled,
    {
      name: 'keepwire_connections',
      help: 'Client connections open now, by state: reading (a request head), writing (a request in progress or a tunnel), waiting (idle keep-alive), stream (an L4 session).',
      type: 'gauge',
      samples: states,
    },
    requests,
    responses,
    ended,
    {
      name: 'keepwire_http_request_duration_seconds',
      help: 'Time from a request head to the end of its response.',
      type: 'histogram',
      samples: duration,
    },
    {
      name: 'keepwire_client_idle_before_reuse_seconds',
      help: 'How long a keep-alive client connection sat idle before its next request.',
      type: 'histogram',
      samples: clientReuse,
    },
    clientIdle,
    sessions,
    tunnelIdle,
    heartbeats,
    newConns,
    reuses,
    {
      name: 'keepwire_upstream_idle_before_reuse_seconds',
      help: 'How long a cached upstream connection sat idle before it was reused.',
      type: 'histogram',
      samples: upstreamReuse,
    },
    retries,
    failures,
    upstreamIdle,
    {
      name: 'keepwire_upstream_idle_connections',
      help: 'Idle connections in the upstream group keep-alive cache.',
      type: 'gauge',
      samples: idleConns,
    },
    {
      name: 'keepwire_upstream_server_up',
      help: '1 when the upstream server takes requests (not down, not ejected by max_fails), else 0.',
      type: 'gauge',
      merge: 'max',
      samples: up,
    },
    {
      name: 'keepwire_upstream_server_fails',
      help: 'Failures counted against the upstream server in the current fail_timeout window.',
      type: 'gauge',
      samples: fails,
    },
    {
      name: 'keepwire_upstream_server_active_connections',
      help: 'Connections open to the upstream server now (least_conn, max_conns).',
      type: 'gauge',
      samples: active,
    },
    {
      name: 'keepwire_listener_keepalive',
      help: 'so_keepalive of each listening address, as configured (value 1).',
      type: 'info',
      samples: listenerInfo,
    },
    {
      name: 'keepwire_upstream_keepalive',
      help: 'proxy_socket_keepalive and keep-alive cache settings of each upstream group, as configured (value 1).',
      type: 'info',
      samples: upstreamInfo,
    },
  ];
}
