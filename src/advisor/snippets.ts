/**
 * Ready-to-paste settings for the tools people run behind a load balancer,
 * each in that tool's own syntax, from one recommendation (`recommend()`):
 * what `keepwire recommend --for TARGET` prints. Every snippet is checked by
 * its tool where it is installable (test/advisor/snippets-validate.test.ts):
 * nginx -t, haproxy -c, the Kubernetes schemas, Envoy's v3 API protos (no
 * envoy binary here), javac, go build, the real pg/ioredis/node-redis/grpc-js/
 * node code run, sysctl -p in a fresh namespace.
 */
import type { Recommendation } from '../keepalive/recommend.js';
import { KEEPALIVE_SYSCTLS } from '../keepalive/system.js';

export const TARGETS = [
  'nginx',
  'haproxy',
  'envoy',
  'istio',
  'k8s',
  'node',
  'go',
  'java',
  'pg',
  'redis',
  'grpc',
  'sysctl',
] as const;
export type Target = (typeof TARGETS)[number];

export function isTarget(name: string): name is Target {
  return (TARGETS as readonly string[]).includes(name);
}

export interface Snippet {
  target: Target;
  /** The LB idle timeout the snippet is for, seconds. */
  lbIdleTimeout: number;
  /** The file or place it goes, in words. */
  where: string;
  /** Syntax of `text`: nginx, haproxy, yaml, javascript, go, java, conf, sysctl. */
  language: string;
  /** Ready to paste; comments in the tool's own syntax. */
  text: string;
  /** Where the settings are documented. */
  references: string[];
}

/**
 * The Kubernetes page listing the safe (namespaced, allowed by default)
 * sysctls; net.ipv4.tcp_keepalive_time, _intvl and _probes are on it since
 * Kubernetes 1.29.
 */
export const K8S_SYSCTL_DOC = 'https://kubernetes.io/docs/tasks/administer-cluster/sysctl-cluster/';

/** YAML for plain data (objects, arrays, strings, numbers, booleans): what the snippets need. */
export function toYaml(value: unknown, indent = 0): string {
  const pad = ' '.repeat(indent);
  if (Array.isArray(value)) {
    return value
      .map((item) => {
        const inner = toYaml(item, indent + 2).replace(/^\s+/, '');
        return `${pad}- ${inner}`;
      })
      .join('\n');
  }
  if (value !== null && typeof value === 'object') {
    return Object.entries(value)
      .map(([k, v]) => {
        const key = /^[A-Za-z_][\w.-]*$/.test(k) ? k : JSON.stringify(k);
        if (v !== null && typeof v === 'object' && Object.keys(v).length > 0) {
          return `${pad}${key}:\n${toYaml(v, indent + 2)}`;
        }
        return `${pad}${key}: ${scalar(v)}`;
      })
      .join('\n');
  }
  return `${pad}${scalar(value)}`;
}

function scalar(v: unknown): string {
  if (typeof v === 'string') {
    // Quote anything YAML could read as another type or as syntax.
    return /^[A-Za-z][\w./-]*$/.test(v) && !/^(true|false|yes|no|on|off|null|y|n)$/i.test(v)
      ? v
      : JSON.stringify(v);
  }
  if (Array.isArray(v)) return '[]';
  if (v !== null && typeof v === 'object') return '{}';
  return String(v);
}

/** The objects behind the YAML snippets, for tests that check them against schemas. */
export function k8sPod(r: Recommendation): object {
  const k = r.keepalive;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'app' },
    spec: {
      securityContext: {
        // Per network namespace: a pod starts from the kernel defaults (7200/75/9), not the node's.
        sysctls: [
          { name: KEEPALIVE_SYSCTLS.idle, value: String(k.idle) },
          { name: KEEPALIVE_SYSCTLS.interval, value: String(k.interval) },
          { name: KEEPALIVE_SYSCTLS.count, value: String(k.count) },
        ],
      },
      containers: [{ name: 'app', image: 'registry.example/app:1.0' }],
    },
  };
}

export function istioDestinationRule(r: Recommendation): object {
  const k = r.keepalive;
  return {
    // v1beta1: served by every Istio release (v1 only from 1.22).
    apiVersion: 'networking.istio.io/v1beta1',
    kind: 'DestinationRule',
    metadata: { name: 'backend-keepalive' },
    spec: {
      host: 'backend.default.svc.cluster.local',
      trafficPolicy: {
        connectionPool: {
          tcp: { tcpKeepalive: { time: `${k.idle}s`, interval: `${k.interval}s`, probes: k.count } },
          http: { idleTimeout: `${r.clientPoolIdleTimeout}s` },
        },
      },
    },
  };
}

export function envoyCluster(r: Recommendation): object {
  const k = r.keepalive;
  const p = r.appPing;
  return {
    name: 'backend',
    type: 'STRICT_DNS',
    connect_timeout: '5s',
    upstream_connection_options: {
      tcp_keepalive: { keepalive_time: k.idle, keepalive_interval: k.interval, keepalive_probes: k.count },
    },
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        common_http_protocol_options: { idle_timeout: `${r.clientPoolIdleTimeout}s` },
        explicit_http_config: {
          http2_protocol_options: {
            connection_keepalive: { interval: `${p.period}s`, timeout: `${p.timeout}s` },
          },
        },
      },
    },
    load_assignment: {
      cluster_name: 'backend',
      endpoints: [
        {
          lb_endpoints: [
            { endpoint: { address: { socket_address: { address: 'backend', port_value: 8080 } } } },
          ],
        },
      ],
    },
  };
}

/** Envoy's HttpConnectionManager fields for a listener behind the LB (the LB pools connections to it). */
export function envoyListenerHcm(r: Recommendation): object {
  return { common_http_protocol_options: { idle_timeout: `${r.httpServerKeepaliveTimeout}s` } };
}

function lines(...parts: string[]): string {
  return `${parts.join('\n')}\n`;
}

/** The snippet for one target. */
export function snippet(target: Target, r: Recommendation): Snippet {
  const lb = r.lbIdleTimeout;
  const k = r.keepalive;
  const p = r.appPing;
  const base = { target, lbIdleTimeout: lb };
  switch (target) {
    case 'nginx':
      return {
        ...base,
        where: 'nginx.conf, inside http { }',
        language: 'nginx',
        references: [
          'https://nginx.org/en/docs/http/ngx_http_core_module.html#listen',
          'https://nginx.org/en/docs/http/ngx_http_upstream_module.html#keepalive_timeout',
        ],
        text: lines(
          `# keepwire recommend --for nginx: an LB idle timeout of ${lb}s`,
          `# Behind the LB: idle client connections outlive the LB's (${lb}s), so the LB closes first.`,
          `keepalive_timeout ${r.httpServerKeepaliveTimeout}s;`,
          '',
          'upstream backend {',
          '    server 127.0.0.1:8080;',
          '    keepalive 32;',
          `    # In front of an LB: idle upstream connections close before it forgets them.`,
          `    keepalive_timeout ${r.clientPoolIdleTimeout}s;`,
          '}',
          '',
          'server {',
          `    # TCP keepalive on accepted connections: a probe every ${k.idle}s keeps the LB's session.`,
          `    listen 80 so_keepalive=${r.soKeepalive};`,
          '    location / {',
          '        proxy_pass http://backend;',
          '        proxy_http_version 1.1;',
          '        proxy_set_header Connection "";',
          `        # Upstream sockets take the host's tcp_keepalive_* sysctls (keepwire recommend --for sysctl).`,
          '        proxy_socket_keepalive on;',
          '    }',
          '}',
        ),
      };
    case 'haproxy':
      return {
        ...base,
        where: 'haproxy.cfg (HAProxy 2.2+ for the *tcpka-idle/-intvl/-cnt keywords)',
        language: 'haproxy',
        references: ['https://docs.haproxy.org/2.6/configuration.html#4.2-option%20clitcpka'],
        text: lines(
          `# keepwire recommend --for haproxy: an LB idle timeout of ${lb}s`,
          'defaults',
          '    mode http',
          '    timeout connect 5s',
          `    # Behind the LB: keep idle client connections longer than the LB (${lb}s), so it closes first.`,
          `    timeout client ${r.httpServerKeepaliveTimeout}s`,
          `    timeout http-keep-alive ${r.httpServerKeepaliveTimeout}s`,
          `    timeout server ${r.httpServerKeepaliveTimeout}s`,
          '    # TCP keepalive both ways: probes every max(idle, interval) stay under the LB idle.',
          '    option clitcpka',
          `    clitcpka-idle ${k.idle}s`,
          `    clitcpka-intvl ${k.interval}s`,
          `    clitcpka-cnt ${k.count}`,
          '    option srvtcpka',
          `    srvtcpka-idle ${k.idle}s`,
          `    srvtcpka-intvl ${k.interval}s`,
          `    srvtcpka-cnt ${k.count}`,
        ),
      };
    case 'envoy':
      return {
        ...base,
        where:
          'the Envoy bootstrap (v3 API): static_resources.clusters, and the HttpConnectionManager of a listener behind the LB',
        language: 'yaml',
        references: [
          'https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/core/v3/address.proto#config-core-v3-tcpkeepalive',
          'https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/core/v3/protocol.proto#config-core-v3-httpprotocoloptions',
          'https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/core/v3/protocol.proto#config-core-v3-keepalivesettings',
        ],
        text: lines(
          `# keepwire recommend --for envoy: an LB idle timeout of ${lb}s`,
          '# A cluster whose connections cross the LB: TCP keepalive, pool idle below the LB, HTTP/2 PINGs.',
          'static_resources:',
          '  clusters:',
          toYaml([envoyCluster(r)], 4),
          `# A listener behind the LB: in its HttpConnectionManager (typed_config), idle connections outlive the LB's.`,
          '# (merge into your envoy.filters.network.http_connection_manager typed_config)',
          toYaml(envoyListenerHcm(r)).replace(/^/gm, '# '),
        ),
      };
    case 'istio':
      return {
        ...base,
        where: 'a DestinationRule for the service whose connections cross the LB (kubectl apply -f)',
        language: 'yaml',
        references: [
          'https://istio.io/latest/docs/reference/config/networking/destination-rule/#ConnectionPoolSettings-TCPSettings-TcpKeepalive',
        ],
        text: lines(
          `# keepwire recommend --for istio: an LB idle timeout of ${lb}s`,
          toYaml(istioDestinationRule(r)),
        ),
      };
    case 'k8s':
      return {
        ...base,
        where: `the pod spec (Deployment spec.template.spec): net.ipv4.tcp_keepalive_* are namespaced safe sysctls since Kubernetes 1.29 (${K8S_SYSCTL_DOC})`,
        language: 'yaml',
        references: [K8S_SYSCTL_DOC],
        text: lines(
          `# keepwire recommend --for k8s: an LB idle timeout of ${lb}s`,
          `# Safe sysctls since Kubernetes 1.29: ${K8S_SYSCTL_DOC}`,
          toYaml(k8sPod(r)),
        ),
      };
    case 'node':
      return {
        ...base,
        where: 'the Node.js server behind the LB (http, https or http2)',
        language: 'javascript',
        references: ['https://nodejs.org/api/http.html#serverkeepalivetimeout'],
        text: lines(
          `// keepwire recommend --for node: an LB idle timeout of ${lb}s`,
          "import http from 'node:http';",
          "import { configureServer } from 'keepwire';",
          '',
          "const server = http.createServer((req, res) => res.end('ok'));",
          `// keepAliveTimeout ${r.httpServerKeepaliveTimeout * 1000} ms (> the LB's ${lb}s), headersTimeout above it, TCP keepalive ${r.soKeepalive} on accepted sockets.`,
          `configureServer(server, { lbIdle: ${lb} });`,
          '// Without keepwire:',
          `// server.keepAliveTimeout = ${r.httpServerKeepaliveTimeout * 1000};`,
          `// server.headersTimeout = ${r.httpServerKeepaliveTimeout * 1000 + 1000};`,
        ),
      };
    case 'go':
      return {
        ...base,
        where: 'Go code: the http.Client (through the LB) and the http.Server (behind it); Linux',
        language: 'go',
        references: ['https://pkg.go.dev/net#Dialer', 'https://pkg.go.dev/net/http#Transport'],
        text: lines(
          `// keepwire recommend --for go: an LB idle timeout of ${lb}s`,
          'package keepalive',
          '',
          'import (',
          '\t"net"',
          '\t"net/http"',
          '\t"syscall"',
          '\t"time"',
          ')',
          '',
          '// Dialer sets idle, interval and count (Go before 1.23 can set only idle = interval through',
          `// Dialer.KeepAlive; Go 1.23+ may use KeepAliveConfig{Enable: true, Idle: ${k.idle} * time.Second, Interval: ${k.interval} * time.Second, Count: ${k.count}}).`,
          'var Dialer = &net.Dialer{',
          '\tTimeout:   5 * time.Second,',
          '\tKeepAlive: -1, // the Control function below sets keepalive itself',
          '\tControl: func(network, address string, c syscall.RawConn) error {',
          '\t\tvar serr error',
          '\t\terr := c.Control(func(fd uintptr) {',
          `\t\t\tvalues := []int{1, ${k.idle}, ${k.interval}, ${k.count}}`,
          '\t\t\tlevels := []int{syscall.SOL_SOCKET, syscall.IPPROTO_TCP, syscall.IPPROTO_TCP, syscall.IPPROTO_TCP}',
          '\t\t\tnames := []int{syscall.SO_KEEPALIVE, syscall.TCP_KEEPIDLE, syscall.TCP_KEEPINTVL, syscall.TCP_KEEPCNT}',
          '\t\t\tfor i := range names {',
          '\t\t\t\tif serr == nil {',
          '\t\t\t\t\tserr = syscall.SetsockoptInt(int(fd), levels[i], names[i], values[i])',
          '\t\t\t\t}',
          '\t\t\t}',
          '\t\t})',
          '\t\tif err != nil {',
          '\t\t\treturn err',
          '\t\t}',
          '\t\treturn serr',
          '\t},',
          '}',
          '',
          `// Client: idle pooled connections close before the LB (${lb}s) forgets them.`,
          'var Client = &http.Client{Transport: &http.Transport{',
          '\tDialContext:     Dialer.DialContext,',
          `\tIdleConnTimeout: ${r.clientPoolIdleTimeout} * time.Second,`,
          '}}',
          '',
          `// Server behind the LB: idle connections outlive the LB's ${lb}s.`,
          `var Server = &http.Server{Addr: ":8080", IdleTimeout: ${r.httpServerKeepaliveTimeout} * time.Second}`,
        ),
      };
    case 'java':
      return {
        ...base,
        where: 'Java code (JDK 11+ on Linux: jdk.net.ExtendedSocketOptions.TCP_KEEPIDLE/INTERVAL/COUNT)',
        language: 'java',
        references: [
          'https://docs.oracle.com/en/java/javase/17/docs/api/jdk.net/jdk/net/ExtendedSocketOptions.html',
          'https://netty.io/4.1/api/io/netty/channel/epoll/EpollChannelOption.html',
        ],
        text: lines(
          `// keepwire recommend --for java: an LB idle timeout of ${lb}s`,
          'import java.io.IOException;',
          'import java.net.Socket;',
          'import java.net.StandardSocketOptions;',
          'import jdk.net.ExtendedSocketOptions;',
          '',
          'final class KeepaliveSockets {',
          '    private KeepaliveSockets() {}',
          '',
          `    /** TCP keepalive that keeps a connection through an LB idle timeout of ${lb} s. */`,
          '    static Socket configure(Socket socket) throws IOException {',
          '        socket.setOption(StandardSocketOptions.SO_KEEPALIVE, true);',
          `        socket.setOption(ExtendedSocketOptions.TCP_KEEPIDLE, ${k.idle});`,
          `        socket.setOption(ExtendedSocketOptions.TCP_KEEPINTERVAL, ${k.interval});`,
          `        socket.setOption(ExtendedSocketOptions.TCP_KEEPCOUNT, ${k.count});`,
          '        return socket;',
          '    }',
          '',
          '    // Netty (epoll transport):',
          '    //   bootstrap.option(ChannelOption.SO_KEEPALIVE, true)',
          `    //            .option(EpollChannelOption.TCP_KEEPIDLE, ${k.idle})`,
          `    //            .option(EpollChannelOption.TCP_KEEPINTVL, ${k.interval})`,
          `    //            .option(EpollChannelOption.TCP_KEEPCNT, ${k.count});`,
          `    // Connection pools (HikariCP keepaliveTime, OkHttp ConnectionPool): idle below ${r.clientPoolIdleTimeout} s.`,
          '}',
        ),
      };
    case 'pg':
      return {
        ...base,
        where: 'node-postgres (pg) Pool options; postgresql.conf for the server side',
        language: 'javascript',
        references: [
          'https://node-postgres.com/apis/pool',
          'https://www.postgresql.org/docs/current/runtime-config-connection.html#GUC-TCP-KEEPALIVES-IDLE',
        ],
        text: lines(
          `// keepwire recommend --for pg: an LB idle timeout of ${lb}s`,
          "import pg from 'pg';",
          '',
          'export const pool = new pg.Pool({',
          '  connectionString: process.env.DATABASE_URL,',
          '  keepAlive: true,',
          `  keepAliveInitialDelayMillis: ${k.idle * 1000},`,
          `  idleTimeoutMillis: ${r.clientPoolIdleTimeout * 1000}, // pooled clients close before the LB forgets them`,
          '});',
          `// Or: new pg.Pool({ ...pgPreset({ lbIdle: ${lb} }) }) with pgPreset from 'keepwire'.`,
          '// Server side, postgresql.conf (the server probes its clients too):',
          `// tcp_keepalives_idle = ${k.idle}`,
          `// tcp_keepalives_interval = ${k.interval}`,
          `// tcp_keepalives_count = ${k.count}`,
        ),
      };
    case 'redis':
      return {
        ...base,
        where: 'ioredis or node-redis (npm redis v5+) options; redis.conf for the server side',
        language: 'javascript',
        references: [
          'https://redis.io/docs/latest/operate/oss_and_stack/management/config-file/',
          'https://github.com/redis/ioredis#connect-to-redis',
          'https://github.com/redis/node-redis/blob/master/docs/client-configuration.md',
        ],
        text: lines(
          `// keepwire recommend --for redis: an LB idle timeout of ${lb}s`,
          "import { Redis } from 'ioredis';",
          "import { createClient } from 'redis';",
          '',
          `// TCP keepalive after ${k.idle}s idle (ioredis' default is 30 s): one long-lived connection, no pool idle.`,
          `export const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { keepAlive: ${k.idle * 1000}, lazyConnect: true });`,
          `// Or node-redis (npm redis v5+; its default delay is 30 s; v4 took the delay as socket.keepAlive: ${k.idle * 1000}):`,
          `export const nodeRedis = createClient({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', socket: { keepAlive: true, keepAliveInitialDelay: ${k.idle * 1000} } });`,
          `// Server side, redis.conf (its default 300 s is above many LBs' idle):`,
          `// tcp-keepalive ${k.idle}`,
        ),
      };
    case 'grpc':
      return {
        ...base,
        where:
          '@grpc/grpc-js channel and server options (the same keys work in grpc core: C++, Python, Ruby)',
        language: 'javascript',
        references: [
          'https://grpc.io/docs/guides/keepalive/',
          'https://github.com/grpc/grpc-node/tree/master/packages/grpc-js#supported-channel-options',
        ],
        text: lines(
          `// keepwire recommend --for grpc: an LB idle timeout of ${lb}s`,
          "import * as grpc from '@grpc/grpc-js';",
          '',
          `// Client: HTTP/2 PINGs every ${p.period}s, also on an idle channel (the one the LB forgets).`,
          'export const channelOptions = {',
          `  'grpc.keepalive_time_ms': ${p.period * 1000},`,
          `  'grpc.keepalive_timeout_ms': ${p.timeout * 1000},`,
          "  'grpc.keepalive_permit_without_calls': 1,",
          '};',
          `// Server: accept a PING every ${p.serverMinInterval}s without calls (grpc core servers answer more frequent ones with GOAWAY too_many_pings), and ping idle clients too.`,
          'export const server = new grpc.Server({',
          `  'grpc.http2.min_ping_interval_without_data_ms': ${p.serverMinInterval * 1000},`,
          "  'grpc.keepalive_permit_without_calls': 1,",
          `  'grpc.keepalive_time_ms': ${p.period * 1000},`,
          `  'grpc.keepalive_timeout_ms': ${p.timeout * 1000},`,
          '});',
          "// new MyServiceClient('backend:50051', grpc.credentials.createInsecure(), channelOptions)",
        ),
      };
    case 'sysctl':
      return {
        ...base,
        where: '/etc/sysctl.d/90-keepalive.conf (sysctl --system), in each network namespace that needs it',
        language: 'sysctl',
        references: ['https://docs.kernel.org/networking/ip-sysctl.html'],
        text: lines(
          `# keepwire recommend --for sysctl: an LB idle timeout of ${lb}s`,
          '# For programs that only set SO_KEEPALIVE; per network namespace (containers start from the defaults).',
          `${KEEPALIVE_SYSCTLS.idle} = ${k.idle}`,
          `${KEEPALIVE_SYSCTLS.interval} = ${k.interval}`,
          `${KEEPALIVE_SYSCTLS.count} = ${k.count}`,
        ),
      };
  }
}
