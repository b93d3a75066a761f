export { chainFindings, type Hop, parseChain, readChainArg } from './chain.js';
export { type DoctorOptions, type DoctorReport, detectNginxVersion, runDoctor } from './doctor.js';
export type { Evidence, Finding, FindingSeverity, Layer, SocketRef } from './findings.js';
export { type HostState, hostFindings, readHost } from './host.js';
export { auditKeepwireConfig } from './keepwire-config.js';
export { type AuditOptions, auditNginx, type ConfigAudit, parseNginxSoKeepalive } from './nginx.js';
export { customMiddlebox, type Expiry, type Middlebox, middleboxFromArg, PROFILES } from './profiles.js';
export { failed, renderReport, reportJson, summaryLine } from './report.js';
export { listSockets, parseSs, readProcessSockets } from './sockets.js';
