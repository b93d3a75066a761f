/** keepwire's library entry: TCP keepalive control for Node.js sockets. */
export * from './advisor/index.js';
export * from './keepalive/index.js';
export { formatDuration, parseDuration } from './units/time.js';
