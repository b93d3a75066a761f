/**
 * The error of a configuration generation that cannot be built (an unknown
 * group, a certificate that cannot be read): the runtime refuses the
 * configuration and, on a reload, keeps the running one. In a module of its
 * own so the modules a generation is built from (stream, tls) can throw it
 * without importing generation.ts, which imports them.
 */
export class GenerationBuildError extends Error {
  override name = 'GenerationBuildError';
}
