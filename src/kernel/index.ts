/**
 * keepwire's one door to the kernel (libc through koffi, socket options,
 * ioctls, tcp_info, pidfd) and to Node's private APIs (node-internals.ts).
 * Nothing else in src/ loads koffi or reads a socket's `_handle`.
 */
export { errnoName } from './errno.js';
export {
  KeepaliveUnsupportedError,
  NoFileDescriptorError,
  SockoptError,
  SyscallError,
} from './errors.js';
export { awaitsConnect, fdOf } from './fd.js';
export { type ListenSpec, type OpenedListener, openListeningSocket } from './listen.js';
export { type InternalStatus, type LiveSample, nodeInternals, tcpSocketOf } from './node-internals.js';
export { closeFd, pidfdGetfd, pidfdOpen } from './pidfd.js';
export {
  getBytesOption,
  getIntOption,
  ioctlInt,
  type SockoptConstants,
  setIntOption,
  sockoptConstants,
} from './sockopt.js';
export { readTcpInfo, type TcpInfo } from './tcp-info.js';
