/**
 * Test models built from config text through the real lexer, parser and
 * directive table, so no test hand-copies a default: a fixture's base record
 * is what `keepwire check` makes of a small configuration, and a test
 * overrides only the fields it is about.
 */
import { parseConfigText } from '../src/config/index.js';
import type {
  Config,
  HttpLocation,
  HttpServer,
  HttpUpstreamGroup,
  StreamServer,
  UpstreamServer,
} from '../src/config/model.js';

/** The model of `text`; a fixture text that does not validate is a bug in the test. */
export function modelFromText(text: string): Config {
  const r = parseConfigText(text, 'test.conf');
  if (!r.config) {
    const why = r.diagnostics.map((d) => `${d.line}:${d.col} ${d.message}`).join('; ');
    throw new Error(`fixture configuration does not validate: ${why}`);
  }
  return r.config;
}

/** The test process's main settings: a generous connection cap, a short drain. */
const MAIN = 'worker_shutdown_timeout 5s;\nevents { worker_connections 1024; }\n';

const STREAM = `${MAIN}stream {
    upstream g { server 127.0.0.1:1; }
    server { listen 127.0.0.1:1; proxy_pass g; }
}
`;

/**
 * The HTTP proxy tests' usual location: a pooled group spoken to in HTTP/1.1,
 * with timeouts short enough for a test run.
 */
const HTTP = `${MAIN}http {
    upstream app { server 127.0.0.1:1; keepalive 16; }
    server {
        listen 127.0.0.1:1;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_connect_timeout 5s;
            proxy_read_timeout 30s;
            proxy_send_timeout 30s;
        }
    }
}
`;

type Without<T, K extends keyof T> = Omit<T, K>;

/** A stream server's settings as the table resolves them with nothing set. */
export function streamServerSettings(): Without<StreamServer, 'listens' | 'proxyPass' | 'source'> {
  const { listens: _l, proxyPass: _p, source: _s, ...settings } = modelFromText(STREAM).stream!.servers[0]!;
  return settings;
}

/** An upstream `server ADDRESS;` line's parameters with nothing set. */
export function upstreamServerSettings(): Without<UpstreamServer, 'address' | 'source'> {
  const {
    address: _a,
    source: _s,
    ...settings
  } = modelFromText(STREAM).stream!.upstreams.get('g')!.servers[0]!;
  return settings;
}

/** The main-level settings of the test configuration. */
export function mainSettings(): Without<Config, 'file' | 'stream' | 'http'> {
  const { file: _f, stream: _s, http: _h, ...settings } = modelFromText(STREAM);
  return settings;
}

/** An http server's own settings with nothing set. */
export function httpServerSettings(): Without<HttpServer, 'listens' | 'locations' | 'source'> {
  const { listens: _l, locations: _x, source: _s, ...settings } = modelFromText(HTTP).http!.servers[0]!;
  return settings;
}

/** The client-leg fields a location takes from its server when it sets none of its own. */
export const CLIENT_FIELDS = [
  'keepaliveTimeoutMs',
  'keepaliveHeaderTimeoutMs',
  'keepaliveRequests',
  'keepaliveTimeMs',
  'clientBodyTimeoutMs',
  'sendTimeoutMs',
  'clientMaxBodySize',
  'clientBodyBufferSize',
] as const;

/** The usual location's proxy settings (the client-leg fields are its server's: see CLIENT_FIELDS). */
export function locationSettings(): Without<
  HttpLocation,
  'prefix' | 'proxyPass' | 'source' | (typeof CLIENT_FIELDS)[number]
> {
  const l = modelFromText(HTTP).http!.servers[0]!.locations[0]!;
  const {
    prefix: _p,
    proxyPass: _x,
    source: _s,
    keepaliveTimeoutMs: _1,
    keepaliveHeaderTimeoutMs: _2,
    keepaliveRequests: _3,
    keepaliveTimeMs: _4,
    clientBodyTimeoutMs: _5,
    sendTimeoutMs: _6,
    clientMaxBodySize: _7,
    clientBodyBufferSize: _8,
    ...settings
  } = l;
  return settings;
}

/** The usual pooled group's settings. */
export function httpGroupSettings(): Without<HttpUpstreamGroup, 'name' | 'servers' | 'balancing' | 'source'> {
  const {
    name: _n,
    servers: _s,
    balancing: _b,
    source: _x,
    ...settings
  } = modelFromText(HTTP).http!.upstreams.get('app')!;
  return settings;
}
