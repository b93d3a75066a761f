#!/usr/bin/env node
/**
 * Regenerates test/fixtures/envoy/api-fields.json: the fields of the Envoy v3
 * API messages that `keepwire recommend --for envoy` prints, extracted from
 * Envoy's own .proto files, so test/advisor/snippets-validate.test.ts can check
 * every field path, type, oneof and required rule of the snippet (no envoy
 * binary is installable here: Debian has no package).
 *
 *   node scripts/envoy-api-fields.mjs DATA_PLANE_API_GIT_DIR > test/fixtures/envoy/api-fields.json
 *
 * DATA_PLANE_API_GIT_DIR is a clone (bare or not) of envoyproxy/data-plane-api
 * (Envoy's api/ tree, mirrored); the protos are read at its HEAD, whose commit
 * the output records. A snippet that uses a message not listed in MESSAGES
 * fails the test with that message's name: add it here and regenerate.
 */
import { execFileSync } from 'node:child_process';

/** The messages the envoy snippets use (src/advisor/snippets.ts: envoyCluster, envoyListenerHcm). */
const MESSAGES = [
  'envoy.config.bootstrap.v3.Bootstrap',
  'envoy.config.bootstrap.v3.Bootstrap.StaticResources',
  'envoy.config.cluster.v3.Cluster',
  'envoy.config.cluster.v3.UpstreamConnectionOptions',
  'envoy.config.core.v3.TcpKeepalive',
  'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
  'envoy.extensions.upstreams.http.v3.HttpProtocolOptions.ExplicitHttpConfig',
  'envoy.config.core.v3.HttpProtocolOptions',
  'envoy.config.core.v3.Http2ProtocolOptions',
  'envoy.config.core.v3.KeepaliveSettings',
  'envoy.config.endpoint.v3.ClusterLoadAssignment',
  'envoy.config.endpoint.v3.LocalityLbEndpoints',
  'envoy.config.endpoint.v3.LbEndpoint',
  'envoy.config.endpoint.v3.Endpoint',
  'envoy.config.core.v3.Address',
  'envoy.config.core.v3.SocketAddress',
  'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
];

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: node scripts/envoy-api-fields.mjs DATA_PLANE_API_GIT_DIR\n');
  process.exit(2);
}
const git = (...args) => execFileSync('git', ['-C', dir, ...args], { maxBuffer: 64 << 20 }).toString();
const commit = git('rev-parse', 'HEAD').trim();
const commitDate = git('log', '-1', '--format=%cI', 'HEAD').trim();
const files = git('ls-tree', '-r', '--name-only', 'HEAD')
  .split('\n')
  .filter((f) => f.startsWith('envoy/') && f.endsWith('.proto'));

/** Comments out, then identifiers (dotted), numbers, strings and punctuation. */
function tokens(text) {
  const out = [];
  const re =
    /\/\/[^\n]*|\/\*[\s\S]*?\*\/|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[A-Za-z_.][\w.]*|-?\d[\w.]*|[{}[\]()<>=;,:-]|\s+/g;
  for (const m of text.matchAll(re)) {
    const t = m[0];
    if (/^\s/.test(t) || t.startsWith('//') || t.startsWith('/*')) continue;
    out.push(t);
  }
  return out;
}

/** Every message and enum, by full name. */
const messages = new Map();
const enums = new Map();

function parseFile(path, text) {
  const t = tokens(text);
  let i = 0;
  let pkg = '';
  const skipStatement = () => {
    let depth = 0;
    while (i < t.length) {
      const x = t[i++];
      if (x === '{') depth++;
      else if (x === '}') depth--;
      else if (x === ';' && depth === 0) return;
    }
  };
  const skipBlock = () => {
    while (t[i] !== '{') i++;
    let depth = 0;
    do {
      if (t[i] === '{') depth++;
      else if (t[i] === '}') depth--;
      i++;
    } while (depth > 0);
  };
  /** `[ ... ]` after a field: deprecated, json_name, validate's required. */
  const fieldOptions = () => {
    const opts = { deprecated: false, required: false, jsonName: undefined };
    if (t[i] !== '[') return opts;
    const start = i;
    let depth = 0;
    do {
      if (t[i] === '[' || t[i] === '{') depth++;
      else if (t[i] === ']' || t[i] === '}') depth--;
      i++;
    } while (depth > 0);
    const o = t.slice(start, i);
    for (let k = 0; k < o.length; k++) {
      if (o[k] === 'deprecated' && o[k + 1] === '=' && o[k + 2] === 'true') opts.deprecated = true;
      if (o[k] === 'json_name' && o[k + 1] === '=') opts.jsonName = JSON.parse(o[k + 2]);
      if (o[k] === 'required' && o[k + 1] === ':' && o[k + 2] === 'true') opts.required = true;
    }
    return opts;
  };
  const parseEnum = (scope) => {
    const name = t[i + 1];
    i += 3; // enum Name {
    const full = `${scope}.${name}`;
    const values = [];
    while (t[i] !== '}') {
      if (t[i] === 'option' || t[i] === 'reserved') skipStatement();
      else {
        values.push(t[i]);
        i += 3; // NAME = N
        fieldOptions();
        i++; // ;
      }
    }
    i++;
    enums.set(full, { file: path, values });
  };
  const parseMessage = (scope) => {
    const name = t[i + 1];
    i += 3; // message Name {
    const full = `${scope}.${name}`;
    const msg = { file: path, scope: full, fields: {}, requiredOneofs: [] };
    messages.set(full, msg);
    const field = (oneof) => {
      let label = 'optional';
      let type;
      if (t[i] === 'repeated' || t[i] === 'optional') label = t[i++];
      if (t[i] === 'map') {
        // map < K , V >
        type = { map: [t[i + 2], t[i + 4]] };
        i += 6;
      } else type = t[i++];
      const fieldName = t[i];
      i += 3; // name = N
      const opts = fieldOptions();
      i++; // ;
      msg.fields[fieldName] = {
        rawType: type,
        label: typeof type === 'object' ? 'map' : label,
        ...(oneof ? { oneof } : {}),
        ...(opts.required ? { required: true } : {}),
        ...(opts.deprecated ? { deprecated: true } : {}),
        ...(opts.jsonName ? { jsonName: opts.jsonName } : {}),
      };
    };
    while (t[i] !== '}') {
      const x = t[i];
      if (x === 'message') parseMessage(full);
      else if (x === 'enum') parseEnum(full);
      else if (x === 'option' || x === 'reserved' || x === 'extensions') skipStatement();
      else if (x === 'extend') skipBlock();
      else if (x === ';') i++;
      else if (x === 'oneof') {
        const oneof = t[i + 1];
        i += 3;
        while (t[i] !== '}') {
          if (t[i] === 'option') {
            if (t[i + 1] === '(' && t[i + 2] === 'validate.required' && t[i + 5] === 'true') {
              msg.requiredOneofs.push(oneof);
            }
            skipStatement();
          } else field(oneof);
        }
        i++;
      } else field(undefined);
    }
    i++;
  };
  while (i < t.length) {
    const x = t[i];
    if (x === 'package') {
      pkg = t[i + 1];
      skipStatement();
    } else if (x === 'message') parseMessage(pkg);
    else if (x === 'enum') parseEnum(pkg);
    else if (x === 'service' || x === 'extend') skipBlock();
    else skipStatement();
  }
}

for (const f of files) parseFile(f, git('show', `HEAD:${f}`));

/** Protobuf name resolution: innermost scope outward, the first that names a known type. */
function resolve(name, scope) {
  if (name.startsWith('.')) return name.slice(1);
  if (/^(double|float|u?int(32|64)|s(int|fixed)(32|64)|fixed(32|64)|bool|string|bytes)$/.test(name))
    return name;
  const parts = scope.split('.');
  for (let n = parts.length; n >= 0; n--) {
    const candidate = [...parts.slice(0, n), name].join('.');
    if (messages.has(candidate) || enums.has(candidate)) return candidate;
  }
  return name; // google.protobuf.*, xds.*, udpa.*: not in this repository; the test knows the well-known ones
}

const out = {
  source: {
    repository: 'envoyproxy/data-plane-api',
    commit,
    commitDate,
    regenerate:
      'node scripts/envoy-api-fields.mjs DATA_PLANE_API_GIT_DIR > test/fixtures/envoy/api-fields.json',
  },
  messages: {},
  enums: {},
};
for (const name of MESSAGES) {
  const msg = messages.get(name);
  if (!msg) throw new Error(`${name}: no such message in ${dir} at ${commit}`);
  const fields = {};
  for (const [fieldName, f] of Object.entries(msg.fields)) {
    const { rawType, ...rest } = f;
    const type =
      typeof rawType === 'object'
        ? { key: resolve(rawType.map[0], msg.scope), value: resolve(rawType.map[1], msg.scope) }
        : resolve(rawType, msg.scope);
    fields[fieldName] = { type, ...rest };
    for (const t of typeof type === 'object' ? [type.value] : [type]) {
      const e = enums.get(t);
      if (e) out.enums[t] = { file: e.file, values: e.values };
    }
  }
  out.messages[name] = {
    file: msg.file,
    ...(msg.requiredOneofs.length ? { requiredOneofs: msg.requiredOneofs } : {}),
    fields,
  };
}
out.enums = Object.fromEntries(Object.entries(out.enums).sort(([a], [b]) => a.localeCompare(b)));
process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
