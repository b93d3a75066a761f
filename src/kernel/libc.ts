/**
 * libc through koffi, loaded once for the whole process: every setsockopt,
 * getsockopt, ioctl and raw syscall keepwire makes goes through here.
 *
 * Node has no API to read socket options back, and before Node 26 none to
 * set TCP_KEEPINTVL, TCP_KEEPCNT or TCP_USER_TIMEOUT, so keepwire talks to
 * libc directly. Loading is lazy: importing keepwire must not fail on a
 * platform where only the pure functions (parser, recommend) are used.
 */
import { createRequire } from 'node:module';
import { KeepaliveUnsupportedError } from './errors.js';

export interface Libc {
  setsockopt(fd: number, level: number, name: number, value: Uint8Array | Int32Array, len: number): number;
  getsockopt(
    fd: number,
    level: number,
    name: number,
    value: Uint8Array | Int32Array,
    len: Uint32Array,
  ): number;
  /** ioctl(fd, request, int *out): the variadic argument passed by pointer and copied back. */
  ioctlInt(fd: number, request: number, out: Int32Array): number;
  /** syscall(number, int...): for calls glibc wraps only in recent versions (pidfd_*). */
  syscallInts(number: number, ...args: number[]): number;
  close(fd: number): number;
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Uint8Array, len: number): number;
  listen(fd: number, backlog: number): number;
  getsockname(fd: number, addr: Uint8Array, len: Uint32Array): number;
  /** inet_pton(af, text, out): 1 when `text` is an address of family `af`. */
  inetPton(af: number, text: string, out: Uint8Array): number;
  /** errno of the last call made through this binding. */
  errno(): number;
}

/** The C library's file name per platform keepwire supports. */
const LIBC: Record<string, string> = { linux: 'libc.so.6', darwin: 'libSystem.B.dylib' };

let loaded: Libc | undefined;

/** The process's one libc binding; throws KeepaliveUnsupportedError where it cannot be had. */
export function libc(): Libc {
  if (loaded) return loaded;
  const file = LIBC[process.platform];
  if (file === undefined) {
    throw new KeepaliveUnsupportedError(
      `keepwire: kernel socket calls need Linux or macOS libc; ${process.platform} is not supported`,
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
  const lib = koffi.load(file);
  const setsockopt = lib.func('int setsockopt(int, int, int, const void *, uint32_t)');
  const getsockopt = lib.func('int getsockopt(int, int, int, _Out_ void *, _Inout_ uint32_t *)');
  // ioctl and syscall are variadic in C: koffi takes each extra argument's type before it.
  const ioctl = lib.func('int ioctl(int, unsigned long, ...)');
  const syscall = lib.func('long syscall(long, ...)');
  const close = lib.func('int close(int)');
  const socket = lib.func('int socket(int, int, int)');
  const bind = lib.func('int bind(int, const void *, uint32_t)');
  const listen = lib.func('int listen(int, int)');
  const getsockname = lib.func('int getsockname(int, _Out_ void *, _Inout_ uint32_t *)');
  const inetPton = lib.func('int inet_pton(int, const char *, _Out_ void *)');
  loaded = {
    setsockopt: (fd, level, name, value, len) => setsockopt(fd, level, name, value, len),
    getsockopt: (fd, level, name, value, len) => getsockopt(fd, level, name, value, len),
    ioctlInt: (fd, request, out) => ioctl(fd, request, 'int32_t *', out),
    syscallInts: (number, ...args) => Number(syscall(number, ...args.flatMap((a) => ['int', a]))),
    close: (fd) => close(fd),
    socket: (domain, type, protocol) => socket(domain, type, protocol),
    bind: (fd, addr, len) => bind(fd, addr, len),
    listen: (fd, backlog) => listen(fd, backlog),
    getsockname: (fd, addr, len) => getsockname(fd, addr, len),
    inetPton: (af, text, out) => inetPton(af, text, out),
    errno: () => koffi.errno(),
  };
  return loaded;
}

let trim: ((pad: number) => number) | null | undefined;

/**
 * glibc's malloc_trim(0): returns the free pages inside malloc's arenas to
 * the system (madvise), which free() keeps for reuse. Bound on first use and
 * apart from `libc()` because only glibc has it (musl and macOS do not);
 * false where it is missing. A few milliseconds per call with thousands of
 * free chunks: callers run it rarely (src/kernel/memory.ts).
 */
export function mallocTrim(): boolean {
  if (trim === undefined) {
    trim = null;
    if (process.platform === 'linux')
      try {
        const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
        trim = koffi.load('libc.so.6').func('int malloc_trim(size_t)') as (pad: number) => number;
      } catch {
        // not glibc: nothing to trim with
      }
  }
  if (trim === null) return false;
  trim(0);
  return true;
}
