/**
 * A listening socket, kept apart from the server block that handles its
 * connections so a reload can hand an already-bound address to the new
 * configuration without a window in which connections are refused.
 */
import { lookup } from 'node:dns/promises';
import { createServer, isIP, type Server, type Socket } from 'node:net';
import type { Listen } from '../config/model.js';
import { closeFd, openListeningSocket } from '../kernel/index.js';
import { acceptHandles, type TcpHandle, tcpHandles } from '../kernel/node-internals.js';

/**
 * Bytes a session may hold queued for one peer before it stops reading from
 * the other: the bound on per-session buffering. Above Node's 16 KiB default
 * so a bulk transfer pauses and resumes reading (two epoll_ctl calls) once
 * per few 64 KiB reads instead of after nearly every one.
 */
export const SOCKET_HIGH_WATER_MARK = 256 * 1024;

export type ConnectionHandler = (socket: Socket) => void;
/** Takes an accepted connection as its bare TCP handle (true), or declines it (false: it gets a net.Socket and `handler`). */
export type HandleHandler = (client: TcpHandle) => boolean;

/** `listen 8080` binds every IPv4 address, as in nginx. */
export function bindHost(listen: Listen): string {
  const host = listen.address.host;
  return host === '' || host === '*' ? '0.0.0.0' : host;
}

export function listenKey(listen: Listen): string {
  return `${bindHost(listen)}:${listen.address.port}`;
}

export class Listener {
  readonly key: string;
  readonly server: Server;
  handler: ConnectionHandler | undefined;
  /**
   * Set by a stream block that runs sessions on TCP handles: offered each
   * connection before net makes a Socket for it (proxy/stream-handles.ts).
   * Works only once `open` has hooked the listening handle (`takesHandles`).
   */
  handleHandler: HandleHandler | undefined;
  /** Whether accepted connections can be offered to `handleHandler` (the hook is in place). */
  takesHandles = false;

  constructor(readonly listen: Listen) {
    this.key = listenKey(listen);
    // pauseOnConnect: nothing is read from the client until its upstream is
    // connected, so early bytes wait in the kernel's receive buffer (bounded)
    // instead of in ours. allowHalfOpen: a client FIN must not close our side.
    this.server = createServer(
      { allowHalfOpen: true, pauseOnConnect: true, noDelay: true, highWaterMark: SOCKET_HIGH_WATER_MARK },
      (socket) => {
        if (this.handler) this.handler(socket);
        else socket.destroy();
      },
    );
    // Errors on accepted sockets are the session's; the server itself only
    // fails at bind time, which open() reports.
    this.server.on('error', () => {});
  }

  /**
   * Binds the address, or with `fd` accepts on a listening socket this
   * process was handed (a worker under a master: src/serve/master.ts).
   */
  async open(fd?: number): Promise<void> {
    // `reuseport` in one process: Node 20 ignores listen's `reusePort`, so
    // on Linux the socket is made with SO_REUSEPORT through libc and handed
    // to Node as a descriptor (the master of worker_processes does the same).
    if (fd === undefined && this.listen.reuseport && process.platform === 'linux') {
      const host = bindHost(this.listen);
      const numeric = isIP(host) !== 0 ? host : (await lookup(host)).address;
      const opened = openListeningSocket({
        host: numeric,
        port: this.listen.address.port,
        backlog: this.listen.backlog,
        reuseport: true,
      });
      try {
        await this.openOn(opened.fd);
      } catch (error) {
        closeFd(opened.fd);
        throw error;
      }
      return;
    }
    return this.openOn(fd);
  }

  private openOn(fd: number | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      this.server.once('error', onError);
      this.server.listen(
        fd !== undefined
          ? { fd, backlog: this.listen.backlog }
          : {
              host: bindHost(this.listen),
              port: this.listen.address.port,
              backlog: this.listen.backlog,
              exclusive: true,
              ...(this.listen.reuseport ? { reusePort: true } : {}),
            },
        () => {
          this.server.off('error', onError);
          this.takesHandles =
            tcpHandles !== null &&
            acceptHandles(this.server, (client) => {
              const take = this.handleHandler;
              return take?.(client) === true;
            });
          resolve();
        },
      );
    });
  }

  /** Stops accepting. Sessions already accepted are not touched. */
  close(): void {
    this.handler = undefined;
    this.handleHandler = undefined;
    if (this.server.listening) this.server.close();
  }

  /** The bound port (useful with port 0 in tests). */
  get port(): number {
    const a = this.server.address();
    return a !== null && typeof a === 'object' ? a.port : this.listen.address.port;
  }
}
