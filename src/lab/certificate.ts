/**
 * A throwaway self-signed certificate for the lab's HTTPS variants, made with
 * the openssl CLI (ECDSA P-256) in a temporary directory removed with the
 * variant. The client trusts exactly this certificate for CERTIFICATE_NAME.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasCommand } from '../netns/index.js';
import type { LabContext } from './scenario.js';

export const CERTIFICATE_NAME = 'lab.keepwire.test';

export const opensslAvailable = (): boolean => hasCommand('openssl');

export interface LabCertificate {
  cert: string;
  key: string;
  /** The certificate's PEM text (the client's only trusted certificate). */
  pem: string;
}

/**
 * Makes a self-signed ECDSA P-256 certificate for `name` (CN and DNS
 * subjectAltName), valid two days, as `cert.pem`/`key.pem` in `dir`, with
 * the openssl CLI: the lab's HTTPS variants and the TLS benches use it.
 */
export function selfSignedCertificate(dir: string, name: string): { cert: string; key: string } {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
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
      '2',
      '-subj',
      `/CN=${name}`,
      '-addext',
      `subjectAltName=DNS:${name}`,
    ],
    { stdio: 'ignore', timeout: 30_000 },
  );
  return { cert, key };
}

export function labCertificate(ctx: LabContext): LabCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'keepwire-lab-tls-'));
  ctx.defer(() => rmSync(dir, { recursive: true, force: true }));
  const { cert, key } = selfSignedCertificate(dir, CERTIFICATE_NAME);
  return { cert, key, pem: readFileSync(cert, 'utf8') };
}
