/**
 * libc setsockopt/getsockopt on a Node socket's file descriptor, through koffi.
 *
 * Node has no API to read socket options back, and before Node 26 none to set
 * TCP_KEEPINTVL, TCP_KEEPCNT or TCP_USER_TIMEOUT, so keepwire talks to libc
 * directly. Loading is lazy: importing keepwire must not fail on a platform
 * where only the pure functions (parser, recommend) are used.
 */
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { constants as osConstants } from 'node:os';

export interface SockoptConstants {
  SOL_SOCKET: number;
  SO_KEEPALIVE: number;
  IPPROTO_TCP: number;
  TCP_KEEPIDLE: number;
  TCP_KEEPINTVL: number;
  TCP_KEEPCNT: number;
  /** Absent where the platform has no TCP_USER_TIMEOUT. */
  TCP_USER_TIMEOUT?: number;
}

const PLATFORMS: Record<string, { libc: string; constants: SockoptConstants }> = {
  // include/uapi/asm-generic/socket.h and include/uapi/linux/tcp.h
  linux: {
    libc: 'libc.so.6',
    constants: {
      SOL_SOCKET: 1,
      SO_KEEPALIVE: 9,
      IPPROTO_TCP: 6,
      TCP_KEEPIDLE: 4,
      TCP_KEEPINTVL: 5,
      TCP_KEEPCNT: 6,
      TCP_USER_TIMEOUT: 18,
    },
  },
  // sys/socket.h and netinet/tcp.h; TCP_KEEPALIVE is macOS's name for the idle time.
  darwin: {
    libc: 'libSystem.B.dylib',
    constants: {
      SOL_SOCKET: 0xffff,
      SO_KEEPALIVE: 0x8,
      IPPROTO_TCP: 6,
      TCP_KEEPIDLE: 0x10,
      TCP_KEEPINTVL: 0x101,
      TCP_KEEPCNT: 0x102,
    },
  },
};

/** Raised when the platform or the socket cannot carry the requested option. */
export class KeepaliveUnsupportedError extends Error {
  override name = 'KeepaliveUnsupportedError';
}

/** Raised when the kernel refuses a socket option; carries errno. */
export class SockoptError extends Error {
  override name = 'SockoptError';
  constructor(
    message: string,
    readonly errno: number,
    readonly code: string,
  ) {
    super(message);
  }
}

interface Libc {
  constants: SockoptConstants;
  setsockopt(fd: number, level: number, name: number, value: Int32Array, len: number): number;
  getsockopt(fd: number, level: number, name: number, value: Int32Array, len: Uint32Array): number;
  errno(): number;
}

let libc: Libc | undefined;

function loadLibc(): Libc {
  if (libc) return libc;
  const platform = PLATFORMS[process.platform];
  if (!platform) {
    throw new KeepaliveUnsupportedError(
      `keepwire: per-socket keepalive needs Linux or macOS libc socket options; ${process.platform} is not supported`,
    );
  }
  let koffi: typeof import('koffi');
  try {
    koffi = createRequire(import.meta.url)('koffi');
  } catch (cause) {
    throw new KeepaliveUnsupportedError(
      `keepwire: the koffi package (libc calls) could not be loaded on ${process.platform}-${process.arch}: ${(cause as Error).message}`,
    );
  }
  const lib = koffi.load(platform.libc);
  const setsockopt = lib.func('int setsockopt(int, int, int, const void *, uint32_t)');
  const getsockopt = lib.func('int getsockopt(int, int, int, _Out_ void *, _Inout_ uint32_t *)');
  libc = {
    constants: platform.constants,
    setsockopt: (fd, level, name, value, len) => setsockopt(fd, level, name, value, len),
    getsockopt: (fd, level, name, value, len) => getsockopt(fd, level, name, value, len),
    errno: () => koffi.errno(),
  };
  return libc;
}

export function sockoptConstants(): SockoptConstants {
  return loadLibc().constants;
}

function errnoName(errno: number): string {
  for (const [name, value] of Object.entries(osConstants.errno)) if (value === errno) return name;
  return `errno ${errno}`;
}

/** The kernel file descriptor behind a connected or accepted Node TCP socket. */
export function socketFd(socket: Socket): number {
  const handle = (socket as unknown as { _handle?: { fd?: number } | null })._handle;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new KeepaliveUnsupportedError(
      socket.destroyed
        ? 'keepwire: the socket is destroyed; it has no file descriptor'
        : 'keepwire: the socket has no file descriptor yet (not connected) or is not a TCP socket',
    );
  }
  return fd;
}

const intBuf = new Int32Array(1);
const lenBuf = new Uint32Array(1);

export function setIntOption(fd: number, level: number, name: number, value: number, label: string): void {
  const c = loadLibc();
  intBuf[0] = value;
  if (c.setsockopt(fd, level, name, intBuf, 4) !== 0) {
    const errno = c.errno();
    const code = errnoName(errno);
    throw new SockoptError(`setsockopt(${label}=${value}) failed: ${code}`, errno, code);
  }
}

export function getIntOption(fd: number, level: number, name: number, label: string): number {
  const c = loadLibc();
  intBuf[0] = 0;
  lenBuf[0] = 4;
  if (c.getsockopt(fd, level, name, intBuf, lenBuf) !== 0) {
    const errno = c.errno();
    const code = errnoName(errno);
    throw new SockoptError(`getsockopt(${label}) failed: ${code}`, errno, code);
  }
  return intBuf[0]!;
}
