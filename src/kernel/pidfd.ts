/**
 * Another process's descriptors, duplicated into this one (pidfd_open +
 * pidfd_getfd, Linux 5.6+): the copy shares the socket, so getsockopt on it
 * reads the values the kernel uses for that process.
 */
import { errnoName } from './errno.js';
import { KeepaliveUnsupportedError, SyscallError } from './errors.js';
import { libc } from './libc.js';

/** x86_64/aarch64 numbers; glibc wraps them only from 2.36, the raw syscall always works. */
const SYS_PIDFD_OPEN = 434;
const SYS_PIDFD_GETFD = 438;

function linuxOnly(what: string): void {
  if (process.platform !== 'linux')
    throw new KeepaliveUnsupportedError(`${what} needs Linux, not ${process.platform}`);
}

function failed(call: string): never {
  const errno = libc().errno();
  const code = errnoName(errno);
  throw new SyscallError(`${call} failed: ${code}`, errno, code);
}

/** A pidfd for `pid`; throws SyscallError (ESRCH, EPERM, ENOSYS). */
export function pidfdOpen(pid: number): number {
  linuxOnly('pidfd_open');
  const fd = libc().syscallInts(SYS_PIDFD_OPEN, pid, 0);
  if (fd < 0) failed(`pidfd_open(${pid})`);
  return fd;
}

/** A copy of descriptor `fd` of the process behind `pidfd`; throws SyscallError (EBADF, EPERM). */
export function pidfdGetfd(pidfd: number, fd: number): number {
  linuxOnly('pidfd_getfd');
  const dup = libc().syscallInts(SYS_PIDFD_GETFD, pidfd, fd, 0);
  if (dup < 0) failed(`pidfd_getfd(fd ${fd})`);
  return dup;
}

export function closeFd(fd: number): void {
  libc().close(fd);
}
