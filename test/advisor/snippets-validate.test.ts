/**
 * Everything `keepwire recommend --for TARGET` prints is accepted by the tool
 * it is for: nginx -t, haproxy -c, the Kubernetes and Istio schemas of the
 * kubernetes-models packages, javac, go build, the JavaScript run against the
 * real pg, ioredis, @grpc/grpc-js and keepwire itself, the server-side lines
 * by postgres and redis-server, the sysctl lines by `sysctl -p` in a fresh
 * namespace. Envoy is not packaged in Debian and no schema of its API is
 * installable here: its YAML is parsed and every key checked against the
 * fields of Envoy's v3 API documentation (a list in this file), which is the
 * limit of that check.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DestinationRule } from '@kubernetes-models/istio/networking.istio.io/v1beta1';
import { Pod } from 'kubernetes-models/v1';
import { parse as parseYaml } from 'yaml';
import { istioDestinationRule, k8sPod, type Snippet, TARGETS } from '../../src/advisor/snippets.js';
import { run } from '../../src/cli/program.js';
import { recommend } from '../../src/keepalive/recommend.js';
import { hasCommand, Topology } from '../../src/netns/index.js';
import { requireNetns } from '../require-netns.js';

const exec = promisify(execFile);
/** Inside the package, so `import ... from 'keepwire'` resolves to this build (self-reference). */
const PKG_TMP = fileURLToPath(new URL('../../../dist/.snippet-tmp/', import.meta.url));
const LB_IDLES = [3, 350];

async function printed(lbIdle: number, target: string): Promise<Snippet> {
  let out = '';
  let err = '';
  const code = await run(['recommend', '--lb-idle', `${lbIdle}s`, '--for', target, '--json'], {
    out: (t) => {
      out += t;
    },
    err: (t) => {
      err += t;
    },
  });
  assert.equal(code, 0, err);
  const s = JSON.parse(out) as Snippet;
  // The human output is the same text.
  let human = '';
  await run(['recommend', '--lb-idle', `${lbIdle}s`, '--for', target], {
    out: (t) => {
      human += t;
    },
    err: () => undefined,
  });
  assert.equal(human, s.text);
  return s;
}

async function sh(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  try {
    const r = await exec(cmd, args, { timeout: 110_000, maxBuffer: 8 << 20, ...opts });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string; message: string };
    return {
      code: typeof e.code === 'number' ? e.code : -1,
      out: `${e.stdout ?? ''}${e.stderr ?? e.message}`,
    };
  }
}

/** A tool this test needs: skip without it, fail under CI=true (scripts/system-deps.sh installs it). */
function need(t: { skip: (m: string) => void }, cmd: string): boolean {
  if (hasCommand(cmd)) return true;
  if (process.env.CI === 'true') throw new Error(`CI=true: ${cmd} missing (scripts/system-deps.sh)`);
  t.skip(`${cmd} missing`);
  return false;
}

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'kw-advisor-snip-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  rmSync(PKG_TMP, { recursive: true, force: true });
});

/** Every key path of a parsed document, e.g. spec.trafficPolicy.connectionPool.tcp (array items as []). */
function keyPaths(value: unknown, prefix = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((v) => keyPaths(v, `${prefix}[]`));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => {
    const path = prefix ? `${prefix}.${k}` : k;
    return [path, ...keyPaths(v, path)];
  });
}

/** Lines of a JavaScript snippet's server-side comment block, e.g. `// tcp-keepalive 2`. */
function commentedSetting(text: string, pattern: RegExp): string[] {
  return text
    .split('\n')
    .filter((l) => pattern.test(l.replace(/^\/\/ /, '')))
    .map((l) => l.replace(/^\/\/ /, ''));
}

async function runJs(name: string, code: string): Promise<string> {
  mkdirSync(PKG_TMP, { recursive: true });
  const file = join(PKG_TMP, `${name}-${process.pid}.mjs`);
  writeFileSync(file, code);
  const r = await sh(process.execPath, [file]);
  assert.equal(r.code, 0, `${name}: ${r.out}`);
  return r.out;
}

test('every target prints a snippet for every LB idle', async () => {
  for (const lbIdle of LB_IDLES) {
    for (const target of TARGETS) {
      const s = await printed(lbIdle, target);
      assert.equal(s.target, target);
      assert.equal(s.lbIdleTimeout, lbIdle);
      assert.ok(s.text.includes(String(recommend(lbIdle).keepalive.idle)) || target === 'node', target);
    }
  }
});

// One top-level test per tool and LB idle: each has the runner's whole timeout (go build's first
// compile of net/http takes most of a minute on a loaded machine).
for (const lbIdle of LB_IDLES) {
  const r = recommend(lbIdle);

  test(`nginx -t accepts --for nginx (LB idle ${lbIdle}s)`, async (t) => {
    if (!need(t, 'nginx')) return;
    const s = await printed(lbIdle, 'nginx');
    const d = tmp();
    const conf = join(d, 'nginx.conf');
    writeFileSync(
      conf,
      `pid ${d}/nginx.pid;\nerror_log ${d}/error.log;\nevents {}\nhttp {\naccess_log off;\n` +
        ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
          .map((p) => `${p}_temp_path ${d}/${p};`)
          .join('\n') +
        `\n${s.text}}\n`,
    );
    const res = await sh('nginx', ['-t', '-q', '-p', d, '-c', conf, '-e', `${d}/error.log`]);
    assert.equal(res.code, 0, res.out);
  });

  test(`haproxy -c accepts --for haproxy alone and with a frontend (LB idle ${lbIdle}s)`, async (t) => {
    if (!need(t, 'haproxy')) return;
    const s = await printed(lbIdle, 'haproxy');
    const d = tmp();
    for (const [name, text] of [
      ['alone.cfg', s.text],
      [
        'full.cfg',
        `${s.text}\nfrontend fe\n    bind 127.0.0.1:8080\n    default_backend be\nbackend be\n    server s1 127.0.0.1:8080\n`,
      ],
    ] as const) {
      writeFileSync(join(d, name), text);
      const res = await sh('haproxy', ['-c', '-f', join(d, name)]);
      // A defaults section alone is valid; haproxy -c then exits 2 only because nothing listens.
      if (name === 'alone.cfg') assert.match(res.out, /Configuration file has no error/, res.out);
      else assert.equal(res.code, 0, res.out);
      assert.doesNotMatch(res.out, /tcpka|timeout/i, `no warning about the snippet's keywords: ${res.out}`);
    }
  });

  test(`the Pod of --for k8s passes the Kubernetes schema with the keepalive sysctls (LB idle ${lbIdle}s)`, async () => {
    const s = await printed(lbIdle, 'k8s');
    const doc = parseYaml(s.text) as object;
    assert.deepEqual(doc, k8sPod(r));
    new Pod(doc as ConstructorParameters<typeof Pod>[0]).validate();
    assert.ok(s.text.includes('https://kubernetes.io/docs/tasks/administer-cluster/sysctl-cluster/'));
    const sysctls = (doc as { spec: { securityContext: { sysctls: { name: string; value: string }[] } } })
      .spec.securityContext.sysctls;
    assert.deepEqual(
      sysctls.map((x) => [x.name, Number(x.value)]),
      [
        ['net.ipv4.tcp_keepalive_time', r.keepalive.idle],
        ['net.ipv4.tcp_keepalive_intvl', r.keepalive.interval],
        ['net.ipv4.tcp_keepalive_probes', r.keepalive.count],
      ],
    );
  });

  test(`the DestinationRule of --for istio passes Istio's schema and uses only its documented fields (LB idle ${lbIdle}s)`, async () => {
    const s = await printed(lbIdle, 'istio');
    const doc = parseYaml(s.text) as object;
    assert.deepEqual(doc, istioDestinationRule(r));
    new DestinationRule(doc as ConstructorParameters<typeof DestinationRule>[0]).validate();
    // The schema allows unknown keys; istio.io's DestinationRule reference lists these.
    const documented = new Set([
      'apiVersion',
      'kind',
      'metadata',
      'metadata.name',
      'spec',
      'spec.host',
      'spec.trafficPolicy',
      'spec.trafficPolicy.connectionPool',
      'spec.trafficPolicy.connectionPool.tcp',
      'spec.trafficPolicy.connectionPool.tcp.tcpKeepalive',
      'spec.trafficPolicy.connectionPool.tcp.tcpKeepalive.time',
      'spec.trafficPolicy.connectionPool.tcp.tcpKeepalive.interval',
      'spec.trafficPolicy.connectionPool.tcp.tcpKeepalive.probes',
      'spec.trafficPolicy.connectionPool.http',
      'spec.trafficPolicy.connectionPool.http.idleTimeout',
    ]);
    for (const path of keyPaths(doc)) assert.ok(documented.has(path), `undocumented field ${path}`);
  });

  test(`the Envoy cluster of --for envoy parses and uses only fields of Envoy's v3 API (LB idle ${lbIdle}s; no envoy binary or schema here)`, async () => {
    const s = await printed(lbIdle, 'envoy');
    const doc = parseYaml(s.text) as { static_resources: { clusters: object[] } };
    // Field names from envoyproxy.io api-v3: config.cluster.v3.Cluster, config.core.v3.TcpKeepalive,
    // extensions.upstreams.http.v3.HttpProtocolOptions, config.core.v3.HttpProtocolOptions,
    // config.core.v3.Http2ProtocolOptions, config.core.v3.KeepaliveSettings, config.endpoint.v3.
    const documented = new Set(
      [
        'static_resources',
        'static_resources.clusters',
        'static_resources.clusters[].name',
        'static_resources.clusters[].type',
        'static_resources.clusters[].connect_timeout',
        'static_resources.clusters[].upstream_connection_options',
        'static_resources.clusters[].upstream_connection_options.tcp_keepalive',
        'static_resources.clusters[].upstream_connection_options.tcp_keepalive.keepalive_time',
        'static_resources.clusters[].upstream_connection_options.tcp_keepalive.keepalive_interval',
        'static_resources.clusters[].upstream_connection_options.tcp_keepalive.keepalive_probes',
        'static_resources.clusters[].typed_extension_protocol_options',
        'static_resources.clusters[].typed_extension_protocol_options.envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        'static_resources.clusters[].load_assignment',
        'static_resources.clusters[].load_assignment.cluster_name',
        'static_resources.clusters[].load_assignment.endpoints',
        'static_resources.clusters[].load_assignment.endpoints[].lb_endpoints',
        'static_resources.clusters[].load_assignment.endpoints[].lb_endpoints[].endpoint',
        'static_resources.clusters[].load_assignment.endpoints[].lb_endpoints[].endpoint.address',
        'static_resources.clusters[].load_assignment.endpoints[].lb_endpoints[].endpoint.address.socket_address',
        'static_resources.clusters[].load_assignment.endpoints[].lb_endpoints[].endpoint.address.socket_address.address',
        'static_resources.clusters[].load_assignment.endpoints[].lb_endpoints[].endpoint.address.socket_address.port_value',
      ].concat(
        [
          '@type',
          'common_http_protocol_options',
          'common_http_protocol_options.idle_timeout',
          'explicit_http_config',
          'explicit_http_config.http2_protocol_options',
          'explicit_http_config.http2_protocol_options.connection_keepalive',
          'explicit_http_config.http2_protocol_options.connection_keepalive.interval',
          'explicit_http_config.http2_protocol_options.connection_keepalive.timeout',
        ].map(
          (p) =>
            `static_resources.clusters[].typed_extension_protocol_options.envoy.extensions.upstreams.http.v3.HttpProtocolOptions.${p}`,
        ),
      ),
    );
    for (const path of keyPaths(doc)) assert.ok(documented.has(path), `undocumented field ${path}`);
    const c = doc.static_resources.clusters[0] as {
      upstream_connection_options: { tcp_keepalive: Record<string, number> };
    };
    // TcpKeepalive takes whole seconds as uint32, not durations.
    assert.deepEqual(c.upstream_connection_options.tcp_keepalive, {
      keepalive_time: r.keepalive.idle,
      keepalive_interval: r.keepalive.interval,
      keepalive_probes: r.keepalive.count,
    });
    // Durations are strings of seconds with the "s" suffix (proto3 JSON mapping of Duration).
    const durations = [...s.text.matchAll(/^[\s#]*(?:idle_timeout|interval|timeout): "?([^"\n]+)"?$/gm)];
    assert.equal(durations.length, 4);
    for (const m of durations) assert.match(m[1]!, /^\d+s$/, m[0]);
  });

  test(`javac compiles --for java and the class sets the options on a real socket (LB idle ${lbIdle}s)`, async (t) => {
    if (!need(t, 'javac') || !need(t, 'java')) return;
    const s = await printed(lbIdle, 'java');
    const d = tmp();
    writeFileSync(join(d, 'KeepaliveSockets.java'), s.text);
    writeFileSync(
      join(d, 'Check.java'),
      `import java.net.Socket;\nimport jdk.net.ExtendedSocketOptions;\npublic class Check { public static void main(String[] a) throws Exception {\n` +
        `Socket s = KeepaliveSockets.configure(new Socket());\n` +
        `System.out.println(s.getOption(ExtendedSocketOptions.TCP_KEEPIDLE) + " " + s.getOption(ExtendedSocketOptions.TCP_KEEPINTERVAL) + " " + s.getOption(ExtendedSocketOptions.TCP_KEEPCOUNT)); } }\n`,
    );
    const c = await sh('javac', ['-d', d, join(d, 'KeepaliveSockets.java'), join(d, 'Check.java')]);
    assert.equal(c.code, 0, c.out);
    const res = await sh('java', ['-cp', d, 'Check']);
    assert.equal(res.code, 0, res.out);
    assert.equal(res.out.trim(), `${r.keepalive.idle} ${r.keepalive.interval} ${r.keepalive.count}`);
  });

  test(`go build compiles --for go (LB idle ${lbIdle}s)`, async (t) => {
    if (!need(t, 'go')) return;
    const s = await printed(lbIdle, 'go');
    const d = tmp();
    writeFileSync(join(d, 'keepalive.go'), s.text);
    const cache = join(process.env.HOME ?? tmpdir(), '.cache', 'keepwire', 'go-build');
    const res = await sh('go', ['build', '-o', join(d, 'out.a'), 'keepalive.go'], {
      cwd: d,
      env: { ...process.env, GOCACHE: cache, GO111MODULE: 'off', GOPATH: join(d, 'gopath'), GOFLAGS: '' },
    });
    assert.equal(res.code, 0, res.out);
    const vet = await sh('go', ['vet', 'keepalive.go'], {
      cwd: d,
      env: { ...process.env, GOCACHE: cache, GO111MODULE: 'off', GOPATH: join(d, 'gopath'), GOFLAGS: '' },
    });
    assert.equal(vet.code, 0, vet.out);
  });

  test(`--for node runs against keepwire and sets the server's timeouts (LB idle ${lbIdle}s)`, async () => {
    const s = await printed(lbIdle, 'node');
    const out = await runJs(
      'node',
      `${s.text}\nconsole.log(JSON.stringify([server.keepAliveTimeout, server.headersTimeout]));\n`,
    );
    const [kat, ht] = JSON.parse(out.trim()) as [number, number];
    assert.equal(kat, r.httpServerKeepaliveTimeout * 1000);
    assert.ok(ht > kat);
    assert.ok(s.text.includes(`server.keepAliveTimeout = ${kat};`));
  });

  test(`--for pg runs with the real pg, and postgres knows its server-side settings (LB idle ${lbIdle}s)`, async () => {
    const s = await printed(lbIdle, 'pg');
    const out = await runJs(
      'pg',
      `${s.text}\nconsole.log(JSON.stringify([pool.options.keepAlive, pool.options.keepAliveInitialDelayMillis, pool.options.idleTimeoutMillis]));\nawait pool.end();\n`,
    );
    assert.deepEqual(JSON.parse(out.trim()), [true, r.keepalive.idle * 1000, r.clientPoolIdleTimeout * 1000]);
    const settings = commentedSetting(s.text, /^tcp_keepalives_\w+ = \d+$/);
    assert.equal(settings.length, 3);
    const pgBin = (await sh('sh', ['-c', 'ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1'])).out.trim();
    if (!pgBin) {
      if (process.env.CI === 'true') throw new Error('CI=true: postgresql missing');
      return;
    }
    // --describe-config: every parameter with its type, min and max (runs as root, no cluster needed).
    const described = await sh(`${pgBin}/postgres`, ['--describe-config']);
    assert.equal(described.code, 0, described.out);
    for (const line of settings) {
      const [name, value] = line.split(' = ') as [string, string];
      const row = described.out.split('\n').find((l) => l.startsWith(`${name}\t`));
      assert.ok(row, `postgres has no parameter ${name}`);
      const cols = row.split('\t');
      const [min, max] = [Number(cols[5]), Number(cols[6])];
      assert.ok(Number(value) >= min && Number(value) <= max, `${line} within ${min}..${max}`);
    }
  });

  test(`--for redis runs with the real ioredis, and redis-server accepts its tcp-keepalive line (LB idle ${lbIdle}s)`, async (t) => {
    const s = await printed(lbIdle, 'redis');
    const out = await runJs(
      'redis',
      `${s.text}\nconsole.log(JSON.stringify(redis.options.keepAlive));\nredis.disconnect();\n`,
    );
    assert.equal(JSON.parse(out.trim()), r.keepalive.idle * 1000);
    if (!need(t, 'redis-server')) return;
    const settings = commentedSetting(s.text, /^tcp-keepalive \d+$/);
    assert.equal(settings.length, 1);
    const d = tmp();
    const sock = join(d, 'redis.sock');
    writeFileSync(
      join(d, 'redis.conf'),
      `port 0\nunixsocket ${sock}\nsave ""\nappendonly no\ndir ${d}\n${settings[0]}\n`,
    );
    const server = execFile('redis-server', [join(d, 'redis.conf')]);
    try {
      let got = '';
      const deadline = Date.now() + 20_000;
      while (!/tcp-keepalive/.test(got)) {
        assert.ok(server.exitCode === null, 'redis-server refused the configuration');
        assert.ok(Date.now() < deadline, 'redis-server did not come up');
        got = (await sh('redis-cli', ['-s', sock, 'config', 'get', 'tcp-keepalive'])).out;
        if (!/tcp-keepalive/.test(got)) await new Promise((res) => setTimeout(res, 100));
      }
      assert.equal(got.trim().split('\n')[1], String(r.keepalive.idle));
    } finally {
      server.kill('SIGTERM');
    }
  });

  test(`--for grpc runs with the real @grpc/grpc-js: the server and a channel take the options (LB idle ${lbIdle}s)`, async () => {
    const s = await printed(lbIdle, 'grpc');
    await runJs(
      'grpc',
      `${s.text}\nconst Ctor = grpc.makeGenericClientConstructor({}, 'X');\nconst c = new Ctor('127.0.0.1:1', grpc.credentials.createInsecure(), channelOptions);\n` +
        `if (c.getChannel().getTarget() === undefined) throw new Error('no channel');\nc.close();\nserver.forceShutdown();\n`,
    );
  });

  test(`sysctl -p applies --for sysctl in a fresh network namespace (LB idle ${lbIdle}s)`, async (t) => {
    if (!requireNetns(t)) return;
    const s = await printed(lbIdle, 'sysctl');
    const d = tmp();
    writeFileSync(join(d, '90-keepalive.conf'), s.text);
    const topo = new Topology();
    try {
      const host = await topo.addHost('advisor');
      await host.exec('sysctl', ['-q', '-p', join(d, '90-keepalive.conf')]);
      assert.equal(Number(await host.readSysctl('net.ipv4.tcp_keepalive_time')), r.keepalive.idle);
      assert.equal(Number(await host.readSysctl('net.ipv4.tcp_keepalive_intvl')), r.keepalive.interval);
      assert.equal(Number(await host.readSysctl('net.ipv4.tcp_keepalive_probes')), r.keepalive.count);
    } finally {
      await topo.destroy();
    }
  });
}
