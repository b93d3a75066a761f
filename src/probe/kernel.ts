/**
 * What the kernel knows about a probing socket: bytes still unacknowledged
 * (SIOCOUTQ) and TCP_INFO. keepwire probe judges delivery by these, never by
 * an application's answer, so it works against any TCP service, even one that
 * never replies.
 *
 * Linux only: SIOCOUTQ and struct tcp_info are Linux interfaces. libc is
 * loaded on first use, as in keepalive/sockopt.ts.
 */
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { KeepaliveUnsupportedError, SockoptError, socketFd } from '../keepalive/sockopt.js';

/** include/uapi/asm-generic/ioctls.h: TIOCOUTQ, which TCP answers as SIOCOUTQ. */
const SIOCOUTQ = 0x5411;
const IPPROTO_TCP = 6;
/** include/uapi/linux/tcp.h */
const TCP_INFO = 11;
const TCP_INFO_BYTES = 104;

interface KernelCalls {
  ioctlInt(fd: number, request: number, out: Int32Array): number;
  getsockopt(fd: number, level: number, name: number, out: Uint8Array, len: Uint32Array): number;
  errno(): number;
}

let calls: KernelCalls | undefined;

function load(): KernelCalls {
  if (calls) return calls;
  if (process.platform !== 'linux') {
    throw new KeepaliveUnsupportedError(
      `keepwire probe needs Linux (SIOCOUTQ, TCP_INFO); ${process.platform} is not supported`,
    );
  }
  let koffi: typeof import('koffi');
  try {
    koffi = createRequire(import.meta.url)('koffi');
  } catch (cause) {
    throw new KeepaliveUnsupportedError(
      `keepwire: the koffi package (libc calls) could not be loaded: ${(cause as Error).message}`,
    );
  }
  const lib = koffi.load('libc.so.6');
  // ioctl is variadic in C; koffi passes the typed extra argument by pointer and copies it back.
  const ioctl = lib.func('int ioctl(int, unsigned long, ...)');
  const getsockopt = lib.func('int getsockopt(int, int, int, _Out_ void *, _Inout_ uint32_t *)');
  calls = {
    ioctlInt: (fd, request, out) => ioctl(fd, request, 'int32_t *', out),
    getsockopt: (fd, level, name, out, len) => getsockopt(fd, level, name, out, len),
    errno: () => koffi.errno(),
  };
  return calls;
}

const outq = new Int32Array(1);

/** Bytes written to the socket that the peer has not acknowledged yet (sent or not). */
export function unackedBytes(socket: Socket): number {
  const c = load();
  const fd = socketFd(socket);
  if (c.ioctlInt(fd, SIOCOUTQ, outq) !== 0) {
    const errno = c.errno();
    throw new SockoptError(`ioctl(SIOCOUTQ) failed: errno ${errno}`, errno, `errno ${errno}`);
  }
  return outq[0]!;
}

/** The fields of struct tcp_info that keepwire probe reads. */
export interface TcpInfo {
  /** TCP_ESTABLISHED = 1, TCP_CLOSE_WAIT = 8, ... (include/net/tcp_states.h) */
  state: number;
  /** Unanswered keepalive or zero-window probes (icsk_probes_out). */
  probes: number;
  /** Segments in flight, not yet acknowledged. */
  unacked: number;
  /** Milliseconds since the last ACK arrived. */
  lastAckRecvMs: number;
  /** Milliseconds since the last data arrived. */
  lastDataRecvMs: number;
  /** Smoothed round-trip time, microseconds. */
  rttUs: number;
}

const infoBuf = new Uint8Array(TCP_INFO_BYTES);
const infoLen = new Uint32Array(1);
const infoView = new DataView(infoBuf.buffer);

export function tcpInfo(socket: Socket): TcpInfo {
  const c = load();
  const fd = socketFd(socket);
  infoLen[0] = TCP_INFO_BYTES;
  if (c.getsockopt(fd, IPPROTO_TCP, TCP_INFO, infoBuf, infoLen) !== 0) {
    const errno = c.errno();
    throw new SockoptError(`getsockopt(TCP_INFO) failed: errno ${errno}`, errno, `errno ${errno}`);
  }
  // Offsets of struct tcp_info (include/uapi/linux/tcp.h); every field used here exists since 2.6.
  return {
    state: infoBuf[0]!,
    probes: infoBuf[3]!,
    unacked: infoView.getUint32(24, true),
    lastDataRecvMs: infoView.getUint32(52, true),
    lastAckRecvMs: infoView.getUint32(56, true),
    rttUs: infoView.getUint32(68, true),
  };
}
