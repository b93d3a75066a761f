/**
 * Integer socket options and ioctls on a file descriptor, with the
 * per-platform constants they need. Errors carry errno and its name.
 */
import { errnoName } from './errno.js';
import { KeepaliveUnsupportedError, SockoptError } from './errors.js';
import { libc } from './libc.js';

export interface SockoptConstants {
  SOL_SOCKET: number;
  SO_KEEPALIVE: number;
  IPPROTO_TCP: number;
  TCP_KEEPIDLE: number;
  TCP_KEEPINTVL: number;
  TCP_KEEPCNT: number;
  /** Absent where the platform has no TCP_USER_TIMEOUT. */
  TCP_USER_TIMEOUT?: number;
  /** Linux only: struct tcp_info. */
  TCP_INFO?: number;
  /** Linux only: bytes not yet acknowledged by the peer (TIOCOUTQ, which TCP answers as SIOCOUTQ). */
  SIOCOUTQ?: number;
}

const CONSTANTS: Record<string, SockoptConstants> = {
  // include/uapi/asm-generic/socket.h, include/uapi/linux/tcp.h, include/uapi/asm-generic/ioctls.h
  linux: {
    SOL_SOCKET: 1,
    SO_KEEPALIVE: 9,
    IPPROTO_TCP: 6,
    TCP_KEEPIDLE: 4,
    TCP_KEEPINTVL: 5,
    TCP_KEEPCNT: 6,
    TCP_USER_TIMEOUT: 18,
    TCP_INFO: 11,
    SIOCOUTQ: 0x5411,
  },
  // sys/socket.h and netinet/tcp.h; TCP_KEEPALIVE is macOS's name for the idle time.
  darwin: {
    SOL_SOCKET: 0xffff,
    SO_KEEPALIVE: 0x8,
    IPPROTO_TCP: 6,
    TCP_KEEPIDLE: 0x10,
    TCP_KEEPINTVL: 0x101,
    TCP_KEEPCNT: 0x102,
  },
};

/** This platform's socket option numbers; throws KeepaliveUnsupportedError elsewhere. */
export function sockoptConstants(): SockoptConstants {
  const c = CONSTANTS[process.platform];
  if (c === undefined) {
    throw new KeepaliveUnsupportedError(
      `keepwire: per-socket options need Linux or macOS; ${process.platform} is not supported`,
    );
  }
  return c;
}

const intBuf = new Int32Array(1);
const lenBuf = new Uint32Array(1);

function refused(call: string): never {
  const errno = libc().errno();
  const code = errnoName(errno);
  throw new SockoptError(`${call} failed: ${code}`, errno, code);
}

export function setIntOption(fd: number, level: number, name: number, value: number, label: string): void {
  intBuf[0] = value;
  if (libc().setsockopt(fd, level, name, intBuf, 4) !== 0) refused(`setsockopt(${label}=${value})`);
}

export function getIntOption(fd: number, level: number, name: number, label: string): number {
  intBuf[0] = 0;
  lenBuf[0] = 4;
  if (libc().getsockopt(fd, level, name, intBuf, lenBuf) !== 0) refused(`getsockopt(${label})`);
  return intBuf[0]!;
}

/** getsockopt into `out`; returns the length the kernel filled in. */
export function getBytesOption(
  fd: number,
  level: number,
  name: number,
  out: Uint8Array,
  label: string,
): number {
  lenBuf[0] = out.length;
  if (libc().getsockopt(fd, level, name, out, lenBuf) !== 0) refused(`getsockopt(${label})`);
  return lenBuf[0]!;
}

const ioctlBuf = new Int32Array(1);

/** An ioctl that answers one int (SIOCOUTQ, SIOCINQ). */
export function ioctlInt(fd: number, request: number, label: string): number {
  ioctlBuf[0] = 0;
  if (libc().ioctlInt(fd, request, ioctlBuf) !== 0) refused(`ioctl(${label})`);
  return ioctlBuf[0]!;
}
