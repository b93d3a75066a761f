/**
 * TLS on the client leg (`listen ... ssl`), on Node's `tls` (OpenSSL).
 *
 * The listener accepts plain TCP sockets (one Listener type for every
 * address, so a reload hands a bound TLS address over like any other) and
 * keepalive goes on that TCP socket before TLS wraps it. Each accepted
 * socket is then handed to a `tls.Server` that never listens (its
 * 'connection' event), which gives OpenSSL's handshake, SNI, ALPN, session
 * tickets and the session cache events without a second code path.
 *
 * Before TLS starts, the first byte tells a TLS ClientHello (a handshake
 * record, 0x16, or an SSLv2-style hello with the high bit set) from a plain
 * HTTP request, as nginx's ngx_http_ssl_handshake peeks it: a plain request
 * on an HTTP TLS port is read and answered `400 The plain HTTP request was
 * sent to HTTPS port` in clear text, then closed (nginx's 497 → 400), never
 * left to hang in a handshake.
 *
 * ssl_handshake_timeout bounds the time from accept to the end of the
 * handshake (the first byte included), so a client stalling anywhere before
 * it is secure is closed, as nginx's handshake timer does.
 *
 * Session resumption is decided before SNI chooses a server: OpenSSL runs
 * Node's SNICallback from its certificate callback, after it has looked the
 * session up with the listening address's (default server's) ticket keys,
 * cache and session ID context. So a session resumes under any name of the
 * address, including a name other than the one it was made for, with that
 * session's certificate and the Host header choosing the server block: what
 * nginx up to 1.29.1 does (its servername callback also ran after the
 * lookup). nginx 1.29.2 moved SNI to the ClientHello callback and binds
 * sessions to the chosen server's certificates; Node offers no such hook.
 *
 * Session tickets: the keys come from `makeTicketKeys`, called once per
 * configuration generation by whoever builds it; a process running workers
 * calls it once and hands the same 48 bytes to each worker, so a ticket
 * issued by one worker resumes on another. A reload builds a new generation
 * with new keys: that is the rotation (tickets from before it get a full
 * handshake), as nginx without `ssl_session_ticket_key` files.
 */
import { constants as cryptoConstants, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { createSecureContext, type SecureContext, type TLSSocket, Server as TlsServer } from 'node:tls';
import type { ServerTls, TlsProtocol } from '../config/model.js';
import { tcpSocketOf } from '../kernel/node-internals.js';
import { GenerationBuildError } from './build-error.js';

/** Node's `ticketKeys` length: 16 bytes key name, 16 HMAC secret, 16 AES key. */
export const TICKET_KEYS_BYTES = 48;

/**
 * The session ticket keys of one configuration generation. Call it once
 * where the generation is built (the master, with workers) and give the
 * result to every process serving that generation.
 */
export function makeTicketKeys(): Buffer {
  return randomBytes(TICKET_KEYS_BYTES);
}

/** The application protocols offered by ALPN, in preference order (HTTP/2 adds `h2` in front). */
export const HTTP1_ALPN: readonly string[] = ['http/1.1'];

/** `ssl_protocols` as OpenSSL's range (config/directives.ts keeps the list contiguous). */
export function protocolRange(list: readonly TlsProtocol[]): {
  minVersion: TlsProtocol;
  maxVersion: TlsProtocol;
} {
  return { minVersion: list[0]!, maxVersion: list[list.length - 1]! };
}

/** A certificate or key that cannot be read or used: the generation is not built (a reload keeps the old one). */
export class TlsConfigError extends GenerationBuildError {
  override name = 'TlsConfigError';
}

/** Reads a file named by a directive, with the directive's place in the error. */
function readNamed(file: string, what: string, at: { file: string; line: number; col: number }): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new TlsConfigError(`${at.file}:${at.line}:${at.col}: cannot read ${what} "${file}": ${code}`);
  }
}

/**
 * The OpenSSL context of one server's TLS settings: every certificate pair
 * (RSA and ECDSA side by side; OpenSSL picks what the client supports),
 * protocols, ciphers and order. Files are read now: a reload reads renewed ones.
 */
export function serverContextOptions(server: ServerTls) {
  const cert: Buffer[] = [];
  const key: Buffer[] = [];
  for (const pair of server.sslCertificates) {
    cert.push(readNamed(pair.certificate, 'certificate', pair.certificateSource));
    key.push(readNamed(pair.key, 'certificate key', pair.keySource));
  }
  return {
    cert,
    key,
    ...protocolRange(server.sslProtocols),
    ciphers: server.sslCiphers,
    honorCipherOrder: server.sslPreferServerCiphers,
  };
}

export function serverContext(server: ServerTls): SecureContext {
  const options = serverContextOptions(server);
  try {
    return createSecureContext(options);
  } catch (error) {
    const at = server.sslCertificates[0]?.certificateSource;
    const where = at ? `${at.file}:${at.line}:${at.col}: ` : '';
    throw new TlsConfigError(`${where}TLS settings refused by OpenSSL: ${(error as Error).message}`);
  }
}

/**
 * An in-process session cache (`ssl_session_cache builtin|shared`): at most
 * `size` sessions, the oldest evicted first, each valid for the session
 * timeout. OpenSSL asks through the tls.Server's newSession/resumeSession.
 */
class SessionCache {
  private readonly sessions = new Map<string, { data: Buffer; expires: number }>();

  constructor(
    private readonly size: number,
    private readonly timeoutMs: number,
  ) {}

  store(id: Buffer, data: Buffer): void {
    const key = id.toString('hex');
    this.sessions.delete(key);
    this.sessions.set(key, { data, expires: Date.now() + this.timeoutMs });
    if (this.sessions.size > this.size) this.sessions.delete(this.sessions.keys().next().value!);
  }

  find(id: Buffer): Buffer | null {
    const key = id.toString('hex');
    const entry = this.sessions.get(key);
    if (entry === undefined) return null;
    if (entry.expires <= Date.now()) {
      this.sessions.delete(key);
      return null;
    }
    return entry.data;
  }
}

/** Why a connection ended before it was secure. */
export interface HandshakeFailure {
  /** `handshake_timeout`, `client_closed` or `tls_error`. */
  kind: 'handshake_timeout' | 'client_closed' | 'tls_error';
  detail: string;
}

export interface TlsHandlers {
  /** The handshake completed: the connection is this TLS socket's now (see `alpnProtocol`). */
  secure(socket: TLSSocket): void;
  /** The first bytes are not TLS (HTTP frontends answer them in clear text); without it such a client is closed. */
  plain?(socket: Socket): void;
  /** The connection ended before it was secure; the raw socket is gone. */
  failed(socket: Socket, failure: HandshakeFailure): void;
}

export interface TerminatorOptions {
  /** The server whose settings apply when the client names no other (ServerTable's default). */
  defaultServer: ServerTls;
  /** SNI: the server of a name, undefined for the default (the tls.Server's own context). */
  serverFor(name: string): ServerTls | undefined;
  ticketKeys: Buffer;
  alpn?: readonly string[];
}

interface Pending {
  timer: NodeJS.Timeout;
  onClose: () => void;
  tls: TLSSocket | undefined;
  done: boolean;
}

/** The first byte of a TLS connection: a handshake record, or an SSLv2-format ClientHello. */
function looksLikeTls(byte: number): boolean {
  return byte === 0x16 || (byte & 0x80) !== 0;
}

/**
 * Terminates TLS on the sockets of one listening address: SNI picks a
 * server's context, the address's default server gives the rest (handshake
 * timeout, session settings), as nginx takes them from the default server.
 */
export class TlsTerminator {
  private readonly server: TlsServer;
  private readonly contexts = new Map<ServerTls, SecureContext>();
  private readonly pending = new Map<Socket, Pending>();
  private readonly handshakeTimeoutMs: number;

  constructor(
    private readonly options: TerminatorOptions,
    private readonly handlers: TlsHandlers,
  ) {
    const def = options.defaultServer;
    this.handshakeTimeoutMs = def.sslHandshakeTimeoutMs;
    const at = def.sslCertificates[0]?.certificateSource;
    this.server = TlsTerminator.makeServer(at ? `${at.file}:${at.line}:${at.col}: ` : '', {
      ...serverContextOptions(def),
      ...(options.alpn ? { ALPNProtocols: [...options.alpn] } : {}),
      // Our own timer covers the whole wait (first byte included); Node's stays as a backstop.
      handshakeTimeout: Math.max(1, this.handshakeTimeoutMs) + 1000,
      sessionTimeout: Math.max(1, Math.ceil(def.sslSessionTimeoutMs / 1000)),
      // OpenSSL issues tickets unless told not to (SSL_OP_NO_TICKET).
      ...(def.sslSessionTickets
        ? { ticketKeys: options.ticketKeys }
        : { secureOptions: cryptoConstants.SSL_OP_NO_TICKET }),
      SNICallback: (name, cb) => {
        const server = options.serverFor(name);
        // A server without a certificate of its own keeps the default
        // server's (nginx's ngx_http_ssl_servername switches SSL_CTX only when
        // the matched server has one; `check` warns about it).
        if (server === undefined || server === def || server.sslCertificates.length === 0) {
          cb(null, undefined);
          return;
        }
        let ctx = this.contexts.get(server);
        if (ctx === undefined) {
          try {
            ctx = serverContext(server);
          } catch (error) {
            cb(error as Error, undefined);
            return;
          }
          this.contexts.set(server, ctx);
        }
        cb(null, ctx);
      },
    });
    const cache = def.sslSessionCache;
    if (cache.kind === 'cache') {
      const sessions = new SessionCache(cache.size, def.sslSessionTimeoutMs);
      this.server.on('newSession', (id: Buffer, data: Buffer, cb: () => void) => {
        sessions.store(id, data);
        cb();
      });
      this.server.on('resumeSession', (id: Buffer, cb: (err: Error | null, data: Buffer | null) => void) =>
        cb(null, sessions.find(id)),
      );
    }
    this.server.on('secureConnection', (socket: TLSSocket) => this.secured(socket));
    this.server.on('tlsClientError', (error: Error, socket: TLSSocket) => {
      const raw = tcpSocketOf(socket);
      this.end(raw, { kind: 'tls_error', detail: error.message });
      socket.destroy();
    });
  }

  private static makeServer(where: string, options: ConstructorParameters<typeof TlsServer>[0]): TlsServer {
    try {
      return new TlsServer(options);
    } catch (error) {
      throw new TlsConfigError(`${where}TLS settings refused by OpenSSL: ${(error as Error).message}`);
    }
  }

  /** Pre-builds the SNI contexts, so a bad file fails the generation's build rather than a handshake. */
  prepare(servers: Iterable<ServerTls>): void {
    for (const s of servers)
      if (s !== this.options.defaultServer && !this.contexts.has(s) && s.sslCertificates.length > 0)
        this.contexts.set(s, serverContext(s));
  }

  /** Handshakes in progress (they hold a worker_connections slot). */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** Takes a socket just accepted (paused): waits for its first byte, then TLS or plain. */
  accept(socket: Socket): void {
    const p: Pending = {
      timer: setTimeout(() => this.timedOut(socket), this.handshakeTimeoutMs),
      onClose: () =>
        this.end(socket, { kind: 'client_closed', detail: 'client closed during the TLS handshake' }),
      tls: undefined,
      done: false,
    };
    this.pending.set(socket, p);
    socket.on('error', noop);
    socket.once('close', p.onClose);
    socket.once('data', (chunk: Buffer) => {
      socket.pause();
      if (p.done) return;
      // Put the byte back: TLSSocket takes what the socket already buffered
      // as the first bytes of the handshake; a plain reader reads it again.
      socket.unshift(chunk);
      if (looksLikeTls(chunk[0]!)) {
        this.server.emit('connection', socket);
        return;
      }
      if (this.handlers.plain === undefined) {
        this.end(socket, { kind: 'tls_error', detail: 'the first bytes are not a TLS handshake' });
        socket.destroy();
        return;
      }
      this.release(socket, p);
      this.handlers.plain(socket);
    });
    socket.resume();
  }

  private secured(tls: TLSSocket): void {
    const raw = tcpSocketOf(tls);
    const p = this.pending.get(raw);
    if (p === undefined || p.done) {
      tls.destroy();
      return;
    }
    this.release(raw, p);
    this.handlers.secure(tls);
  }

  private timedOut(socket: Socket): void {
    this.end(socket, {
      kind: 'handshake_timeout',
      detail: `no TLS handshake within ssl_handshake_timeout (${this.handshakeTimeoutMs} ms)`,
    });
    socket.destroy();
  }

  /** The connection leaves the handshake phase (secure or plain): this terminator lets it go. */
  private release(socket: Socket, p: Pending): void {
    p.done = true;
    clearTimeout(p.timer);
    this.pending.delete(socket);
    socket.removeListener('close', p.onClose);
  }

  private end(socket: Socket, failure: HandshakeFailure): void {
    const p = this.pending.get(socket);
    if (p === undefined || p.done) return;
    p.done = true;
    clearTimeout(p.timer);
    this.pending.delete(socket);
    this.handlers.failed(socket, failure);
  }

  /** Cuts every handshake in progress (shutdown). */
  stop(): void {
    for (const socket of [...this.pending.keys()]) socket.destroy();
  }
}

function noop(): void {}
