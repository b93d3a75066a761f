/**
 * The keepalive options of one file descriptor, read or written through the
 * kernel module (src/kernel/): the one implementation behind
 * `readKeepalive`, the libc path of `applyKeepalive`, and `doctor --pid`
 * (which reads another process's sockets through pidfd_getfd copies).
 */
import { getIntOption, setIntOption, sockoptConstants } from '../kernel/sockopt.js';

export { KeepaliveUnsupportedError, NoFileDescriptorError, SockoptError } from '../kernel/errors.js';

/** What the kernel holds for a socket, as getsockopt reports it. */
export interface KeepaliveState {
  enabled: boolean;
  idle: number;
  interval: number;
  count: number;
  /** Milliseconds; 0 means the kernel's retransmission rules apply. */
  userTimeout: number;
}

/** Values to write; absent fields are left as the socket holds them. */
export interface KeepaliveWrite {
  enable: boolean;
  idle?: number | undefined;
  interval?: number | undefined;
  count?: number | undefined;
  userTimeout?: number | undefined;
}

export function readKeepaliveFd(fd: number): KeepaliveState {
  const c = sockoptConstants();
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

/** setsockopt for each given field; throws SockoptError naming the first the kernel refused. */
export function writeKeepaliveFd(fd: number, w: KeepaliveWrite): void {
  const c = sockoptConstants();
  setIntOption(fd, c.SOL_SOCKET, c.SO_KEEPALIVE, w.enable ? 1 : 0, 'SO_KEEPALIVE');
  if (w.enable) {
    if (w.idle !== undefined) setIntOption(fd, c.IPPROTO_TCP, c.TCP_KEEPIDLE, w.idle, 'TCP_KEEPIDLE');
    if (w.interval !== undefined)
      setIntOption(fd, c.IPPROTO_TCP, c.TCP_KEEPINTVL, w.interval, 'TCP_KEEPINTVL');
    if (w.count !== undefined) setIntOption(fd, c.IPPROTO_TCP, c.TCP_KEEPCNT, w.count, 'TCP_KEEPCNT');
  }
  writeUserTimeoutFd(fd, w.userTimeout);
}

export function writeUserTimeoutFd(fd: number, ms: number | undefined): void {
  if (ms === undefined) return;
  const c = sockoptConstants();
  setIntOption(fd, c.IPPROTO_TCP, c.TCP_USER_TIMEOUT!, ms, 'TCP_USER_TIMEOUT');
}
