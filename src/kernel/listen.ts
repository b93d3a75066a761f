/**
 * Listening TCP sockets made with libc (socket, setsockopt, bind, listen),
 * for the master process of `serve` with workers (src/serve/master.ts).
 *
 * Why not Node's `net.Server.listen`: a listening net.Server also accepts,
 * and the master must never serve traffic (nginx's master only binds); and
 * Node 20 ignores `reusePort`, so `listen ... reuseport` (one socket per
 * worker in one SO_REUSEPORT group, the kernel spreading connections by
 * hashing the 4-tuple) needs the option set before bind, which only libc
 * can do there. The descriptors made here are handed to worker processes,
 * which call `server.listen({ fd })` on them: accepting happens only there.
 *
 * Linux only (the constants are Linux's); the descriptors are CLOEXEC and
 * non-blocking, so only the processes they are handed to explicitly get them.
 */
import { errnoName } from './errno.js';
import { KeepaliveUnsupportedError, SyscallError } from './errors.js';
import { libc } from './libc.js';

// include/linux/socket.h, include/linux/net.h, include/uapi/asm-generic/{socket,fcntl}.h
const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SO_REUSEPORT = 15;

export interface ListenSpec {
  /** A numeric IPv4 or IPv6 address (resolve names first). */
  host: string;
  port: number;
  backlog: number;
  /** SO_REUSEPORT before bind: several sockets of this process (or others with it) on one address. */
  reuseport: boolean;
}

export interface OpenedListener {
  fd: number;
  /** The bound port (the kernel's choice for port 0). */
  port: number;
}

function failed(call: string, fd?: number): never {
  const errno = libc().errno();
  if (fd !== undefined) libc().close(fd);
  const code = errnoName(errno);
  throw new SyscallError(`${call} failed: ${code}`, errno, code);
}

/** struct sockaddr_in / sockaddr_in6 for a numeric address. */
function sockaddr(host: string, port: number): { family: number; addr: Uint8Array } {
  const six = host.includes(':');
  const family = six ? AF_INET6 : AF_INET;
  const addr = new Uint8Array(six ? 28 : 16);
  const view = new DataView(addr.buffer);
  view.setUint16(0, family, true); // sa_family_t is host order (little-endian on every Linux keepwire targets)
  view.setUint16(2, port, false); // in_port_t is network order
  const raw = new Uint8Array(six ? 16 : 4);
  if (libc().inetPton(family, host, raw) !== 1)
    throw new SyscallError(`inet_pton(${host}) failed: not a numeric address`, 22, 'EINVAL');
  addr.set(raw, six ? 8 : 4);
  return { family, addr };
}

/** A listening socket on `spec`; throws SyscallError (EADDRINUSE, EACCES, EADDRNOTAVAIL, ...). */
export function openListeningSocket(spec: ListenSpec): OpenedListener {
  if (process.platform !== 'linux')
    throw new KeepaliveUnsupportedError(
      `listening sockets made by keepwire need Linux, not ${process.platform}`,
    );
  const c = libc();
  const { family, addr } = sockaddr(spec.host, spec.port);
  const fd = c.socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) failed('socket()');
  const one = new Int32Array([1]);
  // SO_REUSEADDR as libuv and nginx set it on every listening socket (rebinding over TIME_WAIT).
  if (c.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4) !== 0) failed('setsockopt(SO_REUSEADDR)', fd);
  if (spec.reuseport && c.setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, one, 4) !== 0)
    failed('setsockopt(SO_REUSEPORT)', fd);
  if (c.bind(fd, addr, addr.length) !== 0) failed(`bind(${spec.host}:${spec.port})`, fd);
  if (c.listen(fd, spec.backlog) !== 0) failed('listen()', fd);
  const out = new Uint8Array(addr.length);
  const len = new Uint32Array([out.length]);
  if (c.getsockname(fd, out, len) !== 0) failed('getsockname()', fd);
  return { fd, port: new DataView(out.buffer).getUint16(2, false) };
}
