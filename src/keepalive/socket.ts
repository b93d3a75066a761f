/**
 * Per-socket TCP keepalive: set it, and read back what the kernel holds.
 */
import { Socket } from 'node:net';
import {
  getIntOption,
  KeepaliveUnsupportedError,
  type SockoptConstants,
  setIntOption,
  socketFd,
  sockoptConstants,
} from './sockopt.js';
import { assertWithinKernelLimits, type KeepaliveSpec } from './spec.js';

export interface KeepaliveOptions {
  /** Default true. `false` turns SO_KEEPALIVE off (userTimeout still applies). */
  enable?: boolean;
  /** TCP_KEEPIDLE, seconds of idleness before the first probe. Absent: leave the socket's value. */
  idle?: number;
  /** TCP_KEEPINTVL, seconds between unanswered probes. */
  interval?: number;
  /** TCP_KEEPCNT, unanswered probes before the kernel gives up with ETIMEDOUT. */
  count?: number;
  /** TCP_USER_TIMEOUT in milliseconds: how long sent data may stay unacknowledged. 0 = kernel default. */
  userTimeout?: number;
}

/** What the kernel holds for a socket, as getsockopt reports it. */
export interface KeepaliveState {
  enabled: boolean;
  idle: number;
  interval: number;
  count: number;
  /** Milliseconds; 0 means the kernel's retransmission rules apply. */
  userTimeout: number;
}

/** How applyKeepalive reached the kernel. */
export type KeepaliveBackend = 'native' | 'ffi';

/**
 * Node 26 grew `setKeepAlive({ enable, initialDelay, interval, count })`; older
 * versions take only (enable, delay) and libuv then forces TCP_KEEPINTVL=1 and
 * TCP_KEEPCNT=10. The arity of the method tells which one is running.
 */
export const nativeKeepaliveSupported: boolean = Socket.prototype.setKeepAlive.length >= 4;

export function toKeepaliveOptions(spec: KeepaliveSpec): KeepaliveOptions {
  const opts: KeepaliveOptions = { enable: spec.enable };
  if (spec.idle !== undefined) opts.idle = spec.idle;
  if (spec.interval !== undefined) opts.interval = spec.interval;
  if (spec.count !== undefined) opts.count = spec.count;
  return opts;
}

/**
 * Applies keepalive settings to a TCP socket: accepted, connected, or still
 * connecting. Settings asked for before the connection exists are applied the
 * moment it connects (Node drops pre-connect interval/count, nodejs/node#31663),
 * ahead of any other 'connect' listener. If the kernel refuses a deferred
 * setting, the socket is destroyed with that error rather than left without it.
 *
 * Returns the backend that was (or will be) used.
 */
export function applyKeepalive(socket: Socket, opts: KeepaliveOptions): KeepaliveBackend {
  return applyKeepaliveVia(socket, opts, chooseBackend(opts));
}

/**
 * applyKeepalive with the backend chosen by the caller. For tests that must
 * cover both paths on one Node; 'native' throws where Node lacks it.
 */
export function applyKeepaliveVia(
  socket: Socket,
  opts: KeepaliveOptions,
  backend: KeepaliveBackend,
): KeepaliveBackend {
  validateKeepaliveOptions(opts);
  if (backend === 'native' && !nativeKeepaliveSupported) {
    throw new KeepaliveUnsupportedError(
      `keepwire: Node ${process.version} has no setKeepAlive interval/count options`,
    );
  }
  if (backend === 'native' && opts.enable !== false && !isComplete(opts)) {
    throw new RangeError('the native setKeepAlive path needs idle, interval and count all given');
  }
  if (needsConnect(socket)) {
    // Fail now, not at connect time, on a platform that cannot do this at all.
    sockoptConstants();
    socket.prependOnceListener('connect', () => {
      try {
        applyNow(socket, opts, backend);
      } catch (error) {
        socket.destroy(error as Error);
      }
    });
    return backend;
  }
  applyNow(socket, opts, backend);
  return backend;
}

function needsConnect(socket: Socket): boolean {
  if (socket.destroyed)
    throw new KeepaliveUnsupportedError('keepwire: cannot apply keepalive to a destroyed socket');
  const fd = (socket as unknown as { _handle?: { fd?: number } | null })._handle?.fd;
  return socket.connecting || typeof fd !== 'number' || fd < 0;
}

const OPTION_NAMES = new Set(['enable', 'idle', 'interval', 'count', 'userTimeout']);

/** Throws a RangeError/TypeError for options the kernel would refuse. */
export function validateKeepaliveOptions(opts: KeepaliveOptions): void {
  for (const key of Object.keys(opts)) {
    if (!OPTION_NAMES.has(key)) throw new TypeError(`unknown keepalive option "${key}"`);
  }
  assertWithinKernelLimits(opts);
  if (opts.userTimeout !== undefined && (!Number.isInteger(opts.userTimeout) || opts.userTimeout < 0)) {
    throw new RangeError(
      `userTimeout must be a non-negative integer of milliseconds, got ${opts.userTimeout}`,
    );
  }
  if (opts.userTimeout !== undefined && sockoptConstants().TCP_USER_TIMEOUT === undefined) {
    throw new KeepaliveUnsupportedError(`keepwire: TCP_USER_TIMEOUT is not available on ${process.platform}`);
  }
}

function chooseBackend(opts: KeepaliveOptions): KeepaliveBackend {
  const enable = opts.enable ?? true;
  // The native form forces libuv's defaults (1 s, 10 probes) into fields it is
  // not given, so it is only right when the caller gave all three.
  return nativeKeepaliveSupported && (!enable || isComplete(opts)) ? 'native' : 'ffi';
}

function isComplete(opts: KeepaliveOptions): boolean {
  return opts.idle !== undefined && opts.interval !== undefined && opts.count !== undefined;
}

function applyNow(socket: Socket, opts: KeepaliveOptions, backend: KeepaliveBackend): void {
  const enable = opts.enable ?? true;
  const c = sockoptConstants();
  const fd = socketFd(socket);
  let viaLibc = backend === 'ffi';
  if (!viaLibc) {
    if (enable) {
      socket.setKeepAlive({
        enable: true,
        initialDelay: opts.idle! * 1000,
        interval: opts.interval! * 1000,
        count: opts.count!,
      } as unknown as boolean);
    } else {
      socket.setKeepAlive(false);
    }
    // Node skips the call when its cached copy matches, and that copy goes stale
    // if the options were changed through libc in between: verify, and repair.
    const held = readKeepalive(socket);
    viaLibc =
      held.enabled !== enable ||
      (enable && (held.idle !== opts.idle || held.interval !== opts.interval || held.count !== opts.count));
  }
  if (viaLibc) {
    setIntOption(fd, c.SOL_SOCKET, c.SO_KEEPALIVE, enable ? 1 : 0, 'SO_KEEPALIVE');
    if (enable) {
      if (opts.idle !== undefined) setIntOption(fd, c.IPPROTO_TCP, c.TCP_KEEPIDLE, opts.idle, 'TCP_KEEPIDLE');
      if (opts.interval !== undefined)
        setIntOption(fd, c.IPPROTO_TCP, c.TCP_KEEPINTVL, opts.interval, 'TCP_KEEPINTVL');
      if (opts.count !== undefined) setIntOption(fd, c.IPPROTO_TCP, c.TCP_KEEPCNT, opts.count, 'TCP_KEEPCNT');
    }
  }
  if (opts.userTimeout !== undefined) {
    setIntOption(fd, c.IPPROTO_TCP, c.TCP_USER_TIMEOUT!, opts.userTimeout, 'TCP_USER_TIMEOUT');
  }
}

/** Reads the keepalive settings the kernel holds for a connected or accepted socket. */
export function readKeepalive(socket: Socket): KeepaliveState {
  const c: SockoptConstants = sockoptConstants();
  const fd = socketFd(socket);
  return {
    enabled: getIntOption(fd, c.SOL_SOCKET, c.SO_KEEPALIVE, 'SO_KEEPALIVE') !== 0,
    idle: getIntOption(fd, c.IPPROTO_TCP, c.TCP_KEEPIDLE, 'TCP_KEEPIDLE'),
    interval: getIntOption(fd, c.IPPROTO_TCP, c.TCP_KEEPINTVL, 'TCP_KEEPINTVL'),
    count: getIntOption(fd, c.IPPROTO_TCP, c.TCP_KEEPCNT, 'TCP_KEEPCNT'),
    userTimeout:
      c.TCP_USER_TIMEOUT === undefined
        ? 0
        : getIntOption(fd, c.IPPROTO_TCP, c.TCP_USER_TIMEOUT, 'TCP_USER_TIMEOUT'),
  };
}
