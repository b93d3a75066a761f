export { keepaliveConnector, withKeepalive } from './pool.js';
export {
  type DetectionInput,
  detectionTime,
  probePeriod,
  type Recommendation,
  recommend,
} from './recommend.js';
export {
  applyKeepalive,
  applyKeepaliveVia,
  type KeepaliveBackend,
  type KeepaliveOptions,
  type KeepaliveState,
  nativeKeepaliveSupported,
  readKeepalive,
  toKeepaliveOptions,
  validateKeepaliveOptions,
} from './socket.js';
export { KeepaliveUnsupportedError, NoFileDescriptorError, SockoptError } from './sockopt.js';
export {
  formatSoKeepalive,
  KERNEL_LIMITS,
  type KeepaliveSpec,
  parseSoKeepalive,
  type SpecError,
  type SpecResult,
} from './spec.js';
export { KEEPALIVE_SYSCTLS, type SystemKeepaliveDefaults, systemDefaults } from './system.js';
