/**
 * What the kernel knows about a probing socket: bytes still unacknowledged
 * (SIOCOUTQ) and TCP_INFO. keepwire probe judges delivery by these, never by
 * an application's answer, so it works against any TCP service, even one that
 * never replies. Linux only; the calls themselves live in src/kernel/.
 */
import type { Socket } from 'node:net';
import {
  fdOf,
  ioctlInt,
  KeepaliveUnsupportedError,
  readTcpInfo,
  sockoptConstants,
  type TcpInfo,
} from '../kernel/index.js';

export type { TcpInfo } from '../kernel/index.js';

/** Bytes written to the socket that the peer has not acknowledged yet (sent or not). */
export function unackedBytes(socket: Socket): number {
  const request = sockoptConstants().SIOCOUTQ;
  if (request === undefined) {
    throw new KeepaliveUnsupportedError(
      `keepwire probe needs Linux (SIOCOUTQ, TCP_INFO); ${process.platform} is not supported`,
    );
  }
  return ioctlInt(fdOf(socket), request, 'SIOCOUTQ');
}

export function tcpInfo(socket: Socket): TcpInfo {
  return readTcpInfo(fdOf(socket));
}
