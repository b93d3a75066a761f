/**
 * TLS toward upstreams (`proxy_pass https://`, stream `proxy_ssl on`), on
 * Node's tls: one client per distinct set of proxy_ssl_* settings and
 * proxy_pass host, built when the generation is (files read then, so a
 * reload reads renewed ones), shared by the connections it opens.
 *
 * As nginx: verification is off unless `proxy_ssl_verify on`; then the chain
 * must verify against `proxy_ssl_trusted_certificate` (Node's bundled CAs
 * without it) within `proxy_ssl_verify_depth`, and the certificate must name
 * `proxy_ssl_name` (default: the proxy_pass host). SNI is sent only with
 * `proxy_ssl_server_name on`. With `proxy_ssl_session_reuse on` a new
 * connection to a server offers the session of the last one to it.
 *
 * keepalive goes on the TCP socket under the TLS one (kernel/fd finds it),
 * so proxy_socket_keepalive is applied and read back as on plain sockets.
 */
import { readFileSync } from 'node:fs';
import {
  checkServerIdentity,
  connect,
  type DetailedPeerCertificate,
  type PeerCertificate,
  type TLSSocket,
} from 'node:tls';
import type { SourceRef, UpstreamTls } from '../config/model.js';
import { GenerationBuildError } from './build-error.js';
import { protocolRange } from './tls.js';

export interface TlsPeer {
  host: string;
  port: number;
}

function readFile(file: string, what: string, at: SourceRef): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new GenerationBuildError(`${at.file}:${at.line}:${at.col}: cannot read ${what} "${file}": ${code}`);
  }
}

/** Levels above the peer's certificate in the chain it was verified through (OpenSSL's depth). */
function chainDepth(cert: DetailedPeerCertificate): number {
  let depth = 0;
  let at = cert;
  while (at.issuerCertificate !== undefined && at.issuerCertificate !== at && depth < 100) {
    if (at.issuerCertificate.fingerprint256 === at.fingerprint256) break;
    at = at.issuerCertificate;
    depth++;
  }
  return depth;
}

export class UpstreamTlsClient {
  /** The name verified and sent as SNI. */
  readonly name: string;
  private readonly base: Record<string, unknown>;
  /** The last session of each server, `host:port` (proxy_ssl_session_reuse). */
  private readonly sessions = new Map<string, Buffer>();

  constructor(
    readonly settings: UpstreamTls,
    /** The proxy_pass host (an upstream name or an address): the default proxy_ssl_name. */
    passHost: string,
    source: SourceRef,
  ) {
    this.name = settings.proxySslName ?? passHost;
    const base: Record<string, unknown> = {
      ...protocolRange(settings.proxySslProtocols),
      ciphers: settings.proxySslCiphers,
      rejectUnauthorized: settings.proxySslVerify,
      ALPNProtocols: ['http/1.1'],
    };
    if (settings.proxySslServerName) base.servername = this.name;
    if (settings.proxySslTrustedCertificate !== undefined)
      base.ca = readFile(settings.proxySslTrustedCertificate, 'proxy_ssl_trusted_certificate', source);
    if (settings.proxySslCertificate !== undefined) {
      base.cert = readFile(settings.proxySslCertificate, 'proxy_ssl_certificate', source);
      if (settings.proxySslCertificateKey === undefined)
        throw new GenerationBuildError(
          `${source.file}:${source.line}:${source.col}: proxy_ssl_certificate needs proxy_ssl_certificate_key`,
        );
      base.key = readFile(settings.proxySslCertificateKey, 'proxy_ssl_certificate_key', source);
    }
    const name = this.name;
    const depth = settings.proxySslVerifyDepth;
    base.checkServerIdentity = (_host: string, cert: PeerCertificate): Error | undefined => {
      if (!settings.proxySslVerify) return undefined;
      const wrong = checkServerIdentity(name, cert);
      if (wrong) return wrong;
      const levels = chainDepth(cert as DetailedPeerCertificate);
      return levels > depth
        ? new Error(`certificate chain of ${levels} levels is deeper than proxy_ssl_verify_depth ${depth}`)
        : undefined;
    };
    this.base = base;
  }

  /** Opens a TLS connection to `peer` (TCP connect and handshake; 'secureConnect' when done). */
  connect(peer: TlsPeer, extra: Record<string, unknown> = {}): TLSSocket {
    const key = `${peer.host}:${peer.port}`;
    const session = this.settings.proxySslSessionReuse ? this.sessions.get(key) : undefined;
    const socket = connect({
      ...this.base,
      ...extra,
      host: peer.host,
      port: peer.port,
      ...(session ? { session } : {}),
    });
    if (this.settings.proxySslSessionReuse)
      socket.on('session', (s: Buffer) => {
        this.sessions.set(key, s);
      });
    return socket;
  }
}

/** The error of a TLS connection that failed after TCP connected and before the handshake completed. */
export class UpstreamHandshakeError extends Error {
  override name = 'UpstreamHandshakeError';
  readonly code: string;
  constructor(cause: Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    super(`TLS handshake failed: ${code ? `${code}: ` : ''}${cause.message}`);
    this.code = `TLS handshake failed: ${code ?? cause.message}`;
  }
}
