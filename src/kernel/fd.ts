/**
 * The kernel file descriptor behind a Node socket. A TLS socket's options
 * live on the TCP socket under it, so both resolve to that one descriptor.
 */
import type { Socket } from 'node:net';
import { NoFileDescriptorError } from './errors.js';
import { handleFd, handleOf, tcpSocketOf } from './node-internals.js';

/**
 * Whether the descriptor is still to come: the TCP socket is connecting, or
 * was made with `new Socket()` and not connected yet. A socket with a handle
 * but no descriptor (a TLSSocket over a JavaScript Duplex) never gets one.
 */
export function awaitsConnect(socket: Socket): boolean {
  const tcp = tcpSocketOf(socket);
  if (tcp.destroyed) return false;
  return tcp.connecting || (tcp.pending && handleOf(tcp) === null);
}

/** The descriptor of a connected or accepted socket (or of the TCP socket under a TLS one). */
export function fdOf(socket: Socket): number {
  const tcp = tcpSocketOf(socket);
  const fd = handleFd(tcp);
  if (typeof fd === 'number' && fd >= 0) return fd;
  if (tcp.destroyed)
    throw new NoFileDescriptorError('keepwire: the socket is destroyed; it has no file descriptor');
  if (awaitsConnect(tcp))
    throw new NoFileDescriptorError('keepwire: the socket has no file descriptor yet (not connected)');
  throw new NoFileDescriptorError(
    `keepwire: the socket has no kernel file descriptor (its handle is ${describeHandle(tcp)}): it is not backed by a TCP socket, e.g. a TLSSocket over a JavaScript stream`,
  );
}

function describeHandle(socket: Socket): string {
  const handle = handleOf(socket);
  if (handle === null) return 'missing';
  return `${(handle as object).constructor?.name ?? 'an object'} with fd ${String(handle.fd)}`;
}
