/**
 * Per-socket TCP keepalive: set it, and read back what the kernel holds.
 *
 * Settings are turned into a plan once (validated, backend chosen), then
 * applied to any number of sockets: `applyKeepalive` plans per call (the
 * library's edge, where callers' values are checked), the proxy compiles a
 * plan per configured directive (applier.ts) and applies it per socket.
 */
import { Socket } from 'node:net';
import { NoFileDescriptorError } from '../kernel/errors.js';
import { awaitsConnect, fdOf } from '../kernel/fd.js';
import { tcpSocketOf } from '../kernel/node-internals.js';
import { sockoptConstants } from '../kernel/sockopt.js';
import {
  type KeepaliveState,
  KeepaliveUnsupportedError,
  readKeepaliveFd,
  writeKeepaliveFd,
  writeUserTimeoutFd,
} from './sockopt.js';
import { assertWithinKernelLimits, type KeepaliveSpec } from './spec.js';

export type { KeepaliveState } from './sockopt.js';

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

/** How applyKeepalive reached the kernel. */
export type KeepaliveBackend = 'native' | 'ffi';

/**
 * Node 26 grew `setKeepAlive({ enable, initialDelay, interval, count })`; older
 * versions take only (enable, delay) and libuv then forces TCP_KEEPINTVL=1 and
 * TCP_KEEPCNT=10. The arity of the method tells which one is running
 * (test/keepalive/native-detection.test.ts checks this against what the
 * kernel holds after a call with the options form).
 */
export const nativeKeepaliveSupported: boolean = Socket.prototype.setKeepAlive.length >= 4;

export function toKeepaliveOptions(spec: KeepaliveSpec): KeepaliveOptions {
  const opts: KeepaliveOptions = { enable: spec.enable };
  if (spec.idle !== undefined) opts.idle = spec.idle;
  if (spec.interval !== undefined) opts.interval = spec.interval;
  if (spec.count !== undefined) opts.count = spec.count;
  return opts;
}

/** Validated settings and the backend that will set them: made once, applied to many sockets. */
export interface KeepalivePlan {
  readonly enable: boolean;
  readonly idle: number | undefined;
  readonly interval: number | undefined;
  readonly count: number | undefined;
  readonly userTimeout: number | undefined;
  readonly backend: KeepaliveBackend;
}

/** Validates `opts` and fixes the backend; throws RangeError/TypeError/KeepaliveUnsupportedError. */
export function planKeepalive(opts: KeepaliveOptions, backend?: KeepaliveBackend): KeepalivePlan {
  validateKeepaliveOptions(opts);
  const chosen = backend ?? chooseBackend(opts);
  if (chosen === 'native' && !nativeKeepaliveSupported) {
    throw new KeepaliveUnsupportedError(
      `keepwire: Node ${process.version} has no setKeepAlive interval/count options`,
    );
  }
  if (chosen === 'native' && opts.enable !== false && !isComplete(opts)) {
    throw new RangeError('the native setKeepAlive path needs idle, interval and count all given');
  }
  return {
    enable: opts.enable ?? true,
    idle: opts.idle,
    interval: opts.interval,
    count: opts.count,
    userTimeout: opts.userTimeout,
    backend: chosen,
  };
}

/**
 * Applies keepalive settings to a TCP socket (or the TCP socket under a TLS
 * one): accepted, connected, or still connecting. Settings asked for before
 * the connection exists are applied the moment it connects (Node drops
 * pre-connect interval/count, nodejs/node#31663), ahead of any other
 * 'connect' listener. If the kernel refuses a deferred setting, the socket is
 * destroyed with that error rather than left without it. A socket that has
 * no descriptor and never will (destroyed, or a TLSSocket over a JavaScript
 * stream) throws NoFileDescriptorError.
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
  const plan = planKeepalive(opts, backend);
  // A caller's socket may have had options changed through libc since Node
  // last set them: verify what the native call left (see applyPlanNow).
  applyPlan(socket, plan, true, (error) => socket.destroy(error));
  return backend;
}

/**
 * Applies a plan now, or at 'connect' for a socket still connecting (then a
 * refusal goes to `onDeferredError`). Throws NoFileDescriptorError for a
 * socket without a descriptor, SockoptError when the kernel refuses.
 */
export function applyPlan(
  socket: Socket,
  plan: KeepalivePlan,
  verifyNative: boolean,
  onDeferredError: (error: Error) => void,
): void {
  const tcp = tcpSocketOf(socket);
  if (tcp.destroyed)
    throw new NoFileDescriptorError('keepwire: cannot apply keepalive to a destroyed socket');
  if (awaitsConnect(tcp)) {
    // Fail now, not at connect time, on a platform that cannot do this at all.
    sockoptConstants();
    tcp.prependOnceListener('connect', () => {
      try {
        applyPlanNow(tcp, plan, verifyNative);
      } catch (error) {
        onDeferredError(error as Error);
      }
    });
    return;
  }
  applyPlanNow(tcp, plan, verifyNative);
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

/** `tcp` is the socket that owns the descriptor (tcpSocketOf). */
function applyPlanNow(tcp: Socket, plan: KeepalivePlan, verifyNative: boolean): void {
  const fd = fdOf(tcp);
  if (plan.backend === 'ffi') {
    writeKeepaliveFd(fd, plan);
    return;
  }
  if (plan.enable) {
    tcp.setKeepAlive({
      enable: true,
      initialDelay: plan.idle! * 1000,
      interval: plan.interval! * 1000,
      count: plan.count!,
    } as unknown as boolean);
  } else {
    tcp.setKeepAlive(false);
  }
  if (verifyNative) {
    // Node skips the call when its cached copy matches, and that copy goes
    // stale if the options were changed through libc in between; it also
    // ignores the handle's error code. Verify, and repair through libc.
    const held = readKeepaliveFd(fd);
    if (
      held.enabled !== plan.enable ||
      (plan.enable &&
        (held.idle !== plan.idle || held.interval !== plan.interval || held.count !== plan.count))
    )
      writeKeepaliveFd(fd, { ...plan, userTimeout: undefined });
  }
  writeUserTimeoutFd(fd, plan.userTimeout);
}

/** Reads the keepalive settings the kernel holds for a connected or accepted socket (TLS: its TCP socket). */
export function readKeepalive(socket: Socket): KeepaliveState {
  return readKeepaliveFd(fdOf(socket));
}
