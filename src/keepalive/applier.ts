/**
 * `so_keepalive` and `proxy_socket_keepalive` compiled once per configuration
 * generation: validated and planned when the generation is built, then
 * applied to every socket it accepts or opens with no checks on the way.
 *
 * One failure policy on every path: keepalive is a safety net, not the data
 * path, so a socket the kernel refuses a setting for is still served, and the
 * refusal is logged as one line naming the directive (never swallowed).
 */
import type { Socket } from 'node:net';
import { fdOf } from '../kernel/fd.js';
import { libc } from '../kernel/libc.js';
import {
  applyPlan,
  type KeepaliveBackend,
  type KeepalivePlan,
  planKeepalive,
  toKeepaliveOptions,
} from './socket.js';
import { writeKeepaliveFd } from './sockopt.js';
import { formatSoKeepalive, type KeepaliveSpec } from './spec.js';

export type KeepaliveDirective = 'so_keepalive' | 'proxy_socket_keepalive' | 'grpc_socket_keepalive';

/** The one log line of a setting that did not reach a socket. */
export interface KeepaliveFailure {
  directive: KeepaliveDirective;
  /** The configured value, nginx syntax (`30s:10s:3`, `on`, `off`). */
  value: string;
  /** The socket's peer, `address:port` (`-` before connect). */
  peer: string;
  error: string;
}

export type KeepaliveFailureLog = (failure: KeepaliveFailure) => void;

/** Where failures go when the runtime gave no logger: a process warning, never silence. */
export const warnKeepaliveFailure: KeepaliveFailureLog = (f) =>
  process.emitWarning(`${f.directive} ${f.value} not applied to ${f.peer}: ${f.error}`, 'KeepaliveWarning');

/** Whether `applyFd` can reach the kernel here (libc through koffi loads): memoised. */
let libcLoads: boolean | undefined;

/**
 * Whether connections taken as bare TCP handles (no net.Socket) can carry
 * keepalive settings: `applyFd` needs libc's setsockopt, Node's
 * `setKeepAlive` needs a Socket. Where it cannot, a listen with
 * so_keepalive keeps the socket path.
 */
export function keepaliveOnFds(): boolean {
  if (libcLoads === undefined) {
    try {
      libc();
      libcLoads = true;
    } catch {
      libcLoads = false;
    }
  }
  return libcLoads;
}

export class KeepaliveApplier {
  /** The configured value in nginx syntax; `off` when the directive is absent. */
  readonly value: string;
  /** Undefined for off: a fresh socket already has keepalive off (the kernel's default), as nginx leaves it. */
  private readonly plan: KeepalivePlan | undefined;
  private readonly onDeferredError: (error: Error, socket: Socket) => void;

  constructor(
    readonly directive: KeepaliveDirective,
    spec: KeepaliveSpec | undefined,
    private readonly onFailure: KeepaliveFailureLog,
  ) {
    this.value = spec === undefined ? 'off' : formatSoKeepalive(spec);
    // Throws here, at build, for values the kernel would refuse.
    this.plan = spec?.enable ? planKeepalive(toKeepaliveOptions(spec)) : undefined;
    this.onDeferredError = (error, socket) => this.failed(socket, error);
  }

  get enabled(): boolean {
    return this.plan !== undefined;
  }

  /** How `apply` reaches the kernel: Node's setKeepAlive options or libc; undefined for off. */
  get backend(): KeepaliveBackend | undefined {
    return this.plan?.backend;
  }

  /** Sets it on a socket just accepted or opened (still connecting is fine). Never throws. */
  apply(socket: Socket): void {
    const plan = this.plan;
    if (plan === undefined) return;
    try {
      // A fresh socket: Node's cached keepalive state is its default, so the
      // native call is made, with values the kernel accepts (planned above).
      applyPlan(socket, plan, false, (error) => this.onDeferredError(error, socket));
    } catch (error) {
      this.failed(socket, error as Error);
    }
  }

  /**
   * `apply` for a bare TCP handle's descriptor (a stream session on handles,
   * proxy/stream-handles.ts; a plain HTTP connection, proxy/http/server.ts):
   * the same values, through setsockopt (see `keepaliveOnFds`). `peer`
   * names the connection in a failure. Never throws.
   */
  applyFd(fd: number, peer: string): void {
    const plan = this.plan;
    if (plan === undefined) return;
    try {
      writeKeepaliveFd(fd, plan);
    } catch (error) {
      this.onFailure({ directive: this.directive, value: this.value, peer, error: (error as Error).message });
    }
  }

  /**
   * Makes a reused socket carry this setting instead of the one it was opened
   * with (turning keepalive off for `off`), through libc so that no cached
   * copy in Node can skip it. Never throws.
   */
  reapply(socket: Socket): void {
    try {
      writeKeepaliveFd(fdOf(socket), this.plan ?? { enable: false });
    } catch (error) {
      this.failed(socket, error as Error);
    }
  }

  private failed(socket: Socket, error: Error): void {
    const address = socket.remoteAddress;
    const peer =
      address === undefined
        ? '-'
        : address.includes(':')
          ? `[${address}]:${socket.remotePort}`
          : `${address}:${socket.remotePort}`;
    this.onFailure({ directive: this.directive, value: this.value, peer, error: error.message });
  }
}

/** Compiles one directive's value; throws (at build time) for values the kernel would refuse. */
export function compileKeepalive(
  directive: KeepaliveDirective,
  spec: KeepaliveSpec | undefined,
  onFailure: KeepaliveFailureLog = warnKeepaliveFailure,
): KeepaliveApplier {
  return new KeepaliveApplier(directive, spec, onFailure);
}
