/**
 * HTTP ops of the socket agent: a slow HTTP backend and an undici pool
 * client, each with optional TCP keepalive, for the lab's HTTP scenarios.
 *
 *   {"op":"http-listen","host":H,"port":P,"delayMs":N,"keepalive":{...}?,"keepaliveTimeoutMs":N?}
 *   {"op":"http-client","id":I,"origin":"http://H:P","keepalive":{...}?,"poolIdleMs":N,"tls":{"ca":PEM,"servername":S}?}
 *     (an https origin verifies the server against `tls.ca` for `tls.servername`)
 *   {"op":"http-request","id":I,"rid":R,"path":"/","timeoutMs":N}
 * Events: http-listening, http-accepted, http-request, http-responded,
 *   http-connect (a new pooled connection), response, http-error.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Pool } from 'undici';
import { keepaliveConnector } from '../keepalive/pool.js';
import { applyKeepalive, type KeepaliveOptions } from '../keepalive/socket.js';

export interface HttpCommand {
  op: string;
  id?: string;
  rid?: string;
  host?: string;
  port?: number;
  origin?: string;
  path?: string;
  delayMs?: number;
  timeoutMs?: number;
  poolIdleMs?: number;
  keepaliveTimeoutMs?: number;
  keepalive?: KeepaliveOptions;
  tls?: { ca: string; servername: string };
}

type Emit = (event: Record<string, unknown>) => void;

const pools = new Map<string, Pool>();

export function handleHttp(cmd: HttpCommand, emit: Emit): boolean {
  switch (cmd.op) {
    case 'http-listen': {
      const server = http.createServer((req, res) => {
        emit({ ev: 'http-request', method: req.method, url: req.url, remote: req.socket.remotePort });
        req.resume();
        setTimeout(() => {
          if (res.destroyed) return;
          res.end('ok\n');
          emit({ ev: 'http-responded', url: req.url, remote: req.socket.remotePort });
        }, cmd.delayMs ?? 0);
      });
      // The backend's HTTP keep-alive must outlive anything in front of it.
      server.keepAliveTimeout = cmd.keepaliveTimeoutMs ?? 60_000;
      server.requestTimeout = 0;
      server.on('connection', (socket: Socket) => {
        if (cmd.keepalive) applyKeepalive(socket, cmd.keepalive);
        emit({ ev: 'http-accepted', remote: socket.remotePort });
        socket.on('error', (error: NodeJS.ErrnoException) =>
          emit({ ev: 'http-socket-error', remote: socket.remotePort, code: error.code }),
        );
      });
      server.on('error', (error: NodeJS.ErrnoException) =>
        emit({ ev: 'fatal', code: error.code, message: error.message }),
      );
      server.listen(cmd.port ?? 0, cmd.host ?? '0.0.0.0', () =>
        emit({ ev: 'http-listening', port: (server.address() as AddressInfo).port }),
      );
      return true;
    }
    case 'http-client': {
      const idle = cmd.poolIdleMs ?? 60_000;
      const tls = cmd.tls ? { ca: cmd.tls.ca, servername: cmd.tls.servername } : undefined;
      const connect = cmd.keepalive ? keepaliveConnector(cmd.keepalive, tls) : tls;
      const pool = new Pool(cmd.origin!, {
        connections: 1,
        pipelining: 1,
        // undici also honours the server's Keep-Alive hint; cap it at ours.
        keepAliveTimeout: idle,
        keepAliveMaxTimeout: idle,
        ...(connect ? { connect } : {}),
      });
      pool.on('connect', () => emit({ ev: 'http-connect', id: cmd.id }));
      pool.on('disconnect', (_origin, _targets, error) =>
        emit({ ev: 'http-disconnect', id: cmd.id, code: (error as NodeJS.ErrnoException)?.code }),
      );
      pools.set(cmd.id!, pool);
      emit({ ev: 'http-client', id: cmd.id });
      return true;
    }
    case 'http-request': {
      const pool = pools.get(cmd.id!);
      if (!pool) return false;
      const timeout = cmd.timeoutMs ?? 30_000;
      pool
        .request({ path: cmd.path ?? '/', method: 'GET', headersTimeout: timeout, bodyTimeout: timeout })
        .then(async (res) => {
          const body = await res.body.text();
          emit({ ev: 'response', id: cmd.id, rid: cmd.rid, status: res.statusCode, body });
        })
        .catch((error: NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException }) =>
          emit({
            ev: 'http-error',
            id: cmd.id,
            rid: cmd.rid,
            code: error.cause?.code ?? error.code,
            message: error.message,
          }),
        );
      return true;
    }
    default:
      return false;
  }
}
