/**
 * Everything `keepwire recommend --for TARGET` prints is accepted by the tool
 * it is for: nginx -t, haproxy -c, the Kubernetes and Istio schemas of the
 * kubernetes-models packages, javac, go build, the JavaScript run against the
 * real pg, ioredis, @grpc/grpc-js and keepwire itself, the server-side lines
 * by postgres and redis-server, the sysctl lines by `sysctl -p` in a fresh
 * namespace. Envoy is not packaged in Debian (no binary for `envoy --mode
 * validate` here): its YAML is checked against the messages of Envoy's own
 * v3 API protos (test/fixtures/envoy/api-fields.json, extracted from
 * envoyproxy/data-plane-api by scripts/envoy-api-fields.mjs): every field
 * exists in its message, has the proto's type in the proto3 JSON mapping
 * Envoy reads YAML with, no oneof is set twice, required fields and required
 * oneofs are set, nothing deprecated is used.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DestinationRule } from '@kubernetes-models/istio/networking.istio.io/v1beta1';
import { Pod } from 'kubernetes-models/v1';
import { parse as parseYaml } from 'yaml';
import { redisPreset } from '../../src/advisor/presets.js';
import {
  envoyCluster,
  envoyListenerHcm,
  istioDestinationRule,
  k8sPod,
  type Snippet,
  TARGETS,
} from '../../src/advisor/snippets.js';
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

interface EnvoyField {
  type: string | { key: string; value: string };
  label: 'optional' | 'repeated' | 'map';
  oneof?: string;
  required?: boolean;
  deprecated?: boolean;
  jsonName?: string;
}
interface EnvoyApi {
  source: { repository: string; commit: string };
  messages: Record<string, { file: string; requiredOneofs?: string[]; fields: Record<string, EnvoyField> }>;
  enums: Record<string, { values: string[] }>;
}
const ENVOY_API = JSON.parse(
  readFileSync(
    fileURLToPath(new URL('../../../test/fixtures/envoy/api-fields.json', import.meta.url)),
    'utf8',
  ),
) as EnvoyApi;

const UINT32_MAX = 2 ** 32 - 1;

/**
 * Where `value` breaks message `type` of Envoy's API, in the proto3 JSON
 * mapping (https://protobuf.dev/programming-guides/json/) that Envoy reads
 * YAML and JSON with: field names as in the proto (or their JSON names),
 * Duration as "<seconds>s", wrapper types as their bare value, enums by name,
 * Any with "@type". `whole`: a complete message (its required fields and
 * oneofs must be set), not a fragment to merge into one.
 */
function checkEnvoy(value: unknown, type: string, path: string, whole: boolean): string[] {
  const errors: string[] = [];
  const integer = (v: unknown, min: number, max: number) =>
    typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
  const scalar = (v: unknown, t: string, at: string): void => {
    const bad = (want: string) => errors.push(`${at}: ${JSON.stringify(v)} is not ${want} (${t})`);
    switch (t) {
      case 'string':
      case 'google.protobuf.StringValue':
        if (typeof v !== 'string') bad('a string');
        return;
      case 'bool':
      case 'google.protobuf.BoolValue':
        if (typeof v !== 'boolean') bad('a boolean');
        return;
      case 'uint32':
      case 'fixed32':
      case 'google.protobuf.UInt32Value':
        if (!integer(v, 0, UINT32_MAX)) bad('an unsigned 32-bit integer');
        return;
      case 'int32':
      case 'sint32':
      case 'sfixed32':
      case 'google.protobuf.Int32Value':
        if (!integer(v, -(2 ** 31), 2 ** 31 - 1)) bad('a 32-bit integer');
        return;
      case 'uint64':
      case 'google.protobuf.UInt64Value':
        if (!integer(v, 0, Number.MAX_SAFE_INTEGER) && !(typeof v === 'string' && /^\d+$/.test(v)))
          bad('an unsigned 64-bit integer');
        return;
      case 'double':
      case 'float':
      case 'google.protobuf.DoubleValue':
        if (typeof v !== 'number') bad('a number');
        return;
      case 'google.protobuf.Duration':
        if (typeof v !== 'string' || !/^-?\d+(\.\d{1,9})?s$/.test(v)) bad('a Duration ("<seconds>s")');
        return;
    }
    const e = ENVOY_API.enums[t];
    if (e) {
      if (!(typeof v === 'string' && e.values.includes(v))) bad(`one of ${e.values.join(', ')}`);
      return;
    }
    if (t === 'google.protobuf.Any') {
      const any = v as Record<string, unknown>;
      const url = typeof any?.['@type'] === 'string' ? (any['@type'] as string) : '';
      const inner = url.replace(/^type\.googleapis\.com\//, '');
      if (!url.startsWith('type.googleapis.com/'))
        errors.push(`${at}: an Any needs "@type": type.googleapis.com/...`);
      else {
        const { '@type': _, ...rest } = any;
        message(rest, inner, at, true);
      }
      return;
    }
    message(v, t, at, true);
  };
  const message = (v: unknown, t: string, at: string, complete: boolean): void => {
    const m = ENVOY_API.messages[t];
    if (!m) {
      errors.push(
        `${at}: message ${t} is not in test/fixtures/envoy/api-fields.json (add it to scripts/envoy-api-fields.mjs and regenerate)`,
      );
      return;
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      errors.push(`${at}: ${JSON.stringify(v)} is not a ${t} object`);
      return;
    }
    const setOneofs = new Map<string, string>();
    for (const [key, fieldValue] of Object.entries(v)) {
      const entry = Object.entries(m.fields).find(([name, f]) => name === key || f.jsonName === key);
      const here = `${at}.${key}`;
      if (!entry) {
        errors.push(`${here}: ${t} (${m.file}) has no field ${key}`);
        continue;
      }
      const [name, f] = entry;
      if (f.deprecated) errors.push(`${here}: ${t}.${name} is deprecated`);
      if (f.oneof) {
        const other = setOneofs.get(f.oneof);
        if (other) errors.push(`${here}: ${name} and ${other} are both set in oneof ${f.oneof}`);
        setOneofs.set(f.oneof, name);
      }
      if (f.label === 'repeated') {
        if (!Array.isArray(fieldValue)) errors.push(`${here}: a repeated field takes a list`);
        else for (const [i, item] of fieldValue.entries()) scalar(item, f.type as string, `${here}[${i}]`);
      } else if (f.label === 'map') {
        const { key: keyType, value: valueType } = f.type as { key: string; value: string };
        if (fieldValue === null || typeof fieldValue !== 'object' || Array.isArray(fieldValue))
          errors.push(`${here}: a map takes an object`);
        else
          for (const [k, item] of Object.entries(fieldValue)) {
            if (keyType !== 'string') errors.push(`${here}: map keys of type ${keyType} not handled`);
            scalar(item, valueType, `${here}[${k}]`);
          }
      } else scalar(fieldValue, f.type as string, here);
    }
    if (!complete) return;
    for (const [name, f] of Object.entries(m.fields)) {
      if (f.required && !(name in v) && !(f.jsonName && f.jsonName in v))
        errors.push(`${at}: ${t}.${name} is required`);
    }
    for (const oneof of m.requiredOneofs ?? []) {
      if (!setOneofs.has(oneof)) errors.push(`${at}: ${t} needs one field of oneof ${oneof}`);
    }
  };
  message(value, type, path, whole);
  return errors;
}

test('the Envoy field map is extracted from a named commit of the Envoy API and knows the messages of the snippet', () => {
  assert.equal(ENVOY_API.source.repository, 'envoyproxy/data-plane-api');
  assert.match(ENVOY_API.source.commit, /^[0-9a-f]{40}$/);
  const f = (m: string, field: string) => ENVOY_API.messages[m]?.fields[field];
  assert.equal(f('envoy.config.core.v3.TcpKeepalive', 'keepalive_time')?.type, 'google.protobuf.UInt32Value');
  assert.equal(
    f('envoy.config.core.v3.HttpProtocolOptions', 'idle_timeout')?.type,
    'google.protobuf.Duration',
  );
  assert.equal(
    f('envoy.config.core.v3.Http2ProtocolOptions', 'connection_keepalive')?.type,
    'envoy.config.core.v3.KeepaliveSettings',
  );
  assert.equal(f('envoy.config.core.v3.KeepaliveSettings', 'timeout')?.required, true);
  // The check is not vacuous: a wrong name, a wrong type, a deprecated field and a missing required field are caught.
  const cluster = envoyCluster(recommend(350)) as Record<string, unknown>;
  const broken = structuredClone(cluster) as {
    upstream_connection_options: { tcp_keepalive: Record<string, unknown> };
    typed_extension_protocol_options: Record<
      string,
      { explicit_http_config: { http2_protocol_options: { connection_keepalive: Record<string, unknown> } } }
    >;
    [k: string]: unknown;
  };
  broken.upstream_connection_options.tcp_keepalive.keepalive_time = '233s';
  broken.upstream_connection_options.tcp_keepalive.keepalive_idle = 233;
  broken.common_http_protocol_options = { idle_timeout: '233s' };
  const h2 = Object.values(broken.typed_extension_protocol_options)[0]!.explicit_http_config
    .http2_protocol_options;
  delete h2.connection_keepalive.timeout;
  broken.type = 'DNS';
  const errors = checkEnvoy(
    { static_resources: { clusters: [broken] } },
    'envoy.config.bootstrap.v3.Bootstrap',
    'b',
    true,
  );
  assert.equal(errors.length, 5, errors.join('\n'));
  assert.deepEqual(
    checkEnvoy(
      { static_resources: { clusters: [cluster] } },
      'envoy.config.bootstrap.v3.Bootstrap',
      'b',
      true,
    ),
    [],
  );
});

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

  test(`the Envoy snippet of --for envoy matches Envoy's v3 API protos: every field, type, oneof and required field (LB idle ${lbIdle}s)`, async () => {
    const s = await printed(lbIdle, 'envoy');
    const doc = parseYaml(s.text) as { static_resources: { clusters: object[] } };
    assert.deepEqual(doc, { static_resources: { clusters: [envoyCluster(r)] } });
    // The whole document is a Bootstrap; the commented listener part is a fragment of an HttpConnectionManager.
    const errors = checkEnvoy(doc, 'envoy.config.bootstrap.v3.Bootstrap', 'bootstrap', true);
    const hcmText = s.text
      .slice(s.text.indexOf('\n', s.text.indexOf('(merge into')) + 1)
      .split('\n')
      .map((l) => l.replace(/^# /, ''))
      .join('\n');
    const hcm = parseYaml(hcmText) as object;
    assert.deepEqual(hcm, envoyListenerHcm(r));
    errors.push(
      ...checkEnvoy(
        hcm,
        'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
        'http_connection_manager',
        false,
      ),
    );
    assert.deepEqual(errors, []);
    const c = doc.static_resources.clusters[0] as {
      upstream_connection_options: { tcp_keepalive: Record<string, number> };
    };
    assert.deepEqual(c.upstream_connection_options.tcp_keepalive, {
      keepalive_time: r.keepalive.idle,
      keepalive_interval: r.keepalive.interval,
      keepalive_probes: r.keepalive.count,
    });
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

  test(`--for redis runs with the real ioredis and node-redis, and redis-server accepts its tcp-keepalive line (LB idle ${lbIdle}s)`, async (t) => {
    const s = await printed(lbIdle, 'redis');
    const out = await runJs(
      'redis',
      `${s.text}\nconsole.log(JSON.stringify([redis.options.keepAlive, nodeRedis.options.socket]));\nredis.disconnect();\n`,
    );
    const [ioredisKeepAlive, nodeRedisSocket] = JSON.parse(out.trim()) as [number, Record<string, unknown>];
    assert.equal(ioredisKeepAlive, r.keepalive.idle * 1000);
    const { keepAlive, keepAliveInitialDelay } = nodeRedisSocket;
    assert.deepEqual({ keepAlive, keepAliveInitialDelay }, redisPreset(r).socket);
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
