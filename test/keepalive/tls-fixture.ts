/**
 * A throwaway self-signed key and certificate for loopback TLS tests, made
 * with the openssl CLI in a temporary directory that is removed afterwards.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { tempDir } from '../support.js';

export interface KeyPair {
  key: Buffer;
  cert: Buffer;
}

/** Undefined (test skipped, or failed under CI=true) when the openssl CLI is missing. */
export function throwawayCert(t: TestContext): KeyPair | undefined {
  const dir = tempDir('kw-tls-', t);
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
      ],
      { stdio: 'ignore', timeout: 30_000 },
    );
  } catch (error) {
    const why = `the openssl CLI could not make a certificate: ${(error as Error).message} (apt-get install openssl)`;
    if (process.env.CI === 'true') throw new Error(`CI=true: this test must run, but ${why}`);
    t.skip(why);
    return undefined;
  }
  return { key: readFileSync(key), cert: readFileSync(cert) };
}
