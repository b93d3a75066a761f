/**
 * The errors every kernel call of keepwire throws. The names are public
 * (re-exported by the library): callers tell "cannot on this platform or
 * socket" from "the kernel said no" by class, and read errno and its name.
 */

/** Raised when the platform or the socket cannot carry the requested option. */
export class KeepaliveUnsupportedError extends Error {
  override name = 'KeepaliveUnsupportedError';
}

/**
 * The socket has no kernel file descriptor to set or read options on: it is
 * destroyed, not connected yet where waiting is not possible, or not backed
 * by a kernel socket at all (a TLSSocket over a JavaScript Duplex, a socket
 * whose handle exposes no fd). Never a silent no-op.
 */
export class NoFileDescriptorError extends KeepaliveUnsupportedError {
  override name = 'NoFileDescriptorError';
}

/** A system call failed; carries errno and its name (`EINVAL`, `EPERM`, ...). */
export class SyscallError extends Error {
  override name = 'SyscallError';
  constructor(
    message: string,
    readonly errno: number,
    readonly code: string,
  ) {
    super(message);
  }
}

/** Raised when the kernel refuses a socket option (or an ioctl on a socket); carries errno. */
export class SockoptError extends SyscallError {
  override name = 'SockoptError';
}
