/**
 * The TLS files of a configuration, loaded as `serve` would load them, so
 * `check` reports at the directive's file:line what would otherwise fail a
 * start or a reload, or a handshake months later:
 *   - a certificate or key that cannot be read or parsed (error);
 *   - a key that is not the certificate's (error);
 *   - a certificate past its notAfter (error) or within 14 days of it (warning);
 *   - a private key file readable by other users (warning);
 *   - a proxy_ssl_trusted_certificate with no certificate that parses (error).
 * Files only: nothing here connects anywhere.
 */
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { Diagnostic, DiagnosticCode } from './diagnostics.js';
import type { CertificatePair, Config, SourceRef, UpstreamTls } from './model.js';

/** A certificate expiring within this is reported (certbot renews at 30 days left; 14 means renewal is failing). */
export const EXPIRY_WARNING_DAYS = 14;
const DAY_MS = 86_400_000;

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

class Findings {
  readonly items: Diagnostic[] = [];
  add(
    severity: 'error' | 'warning',
    code: DiagnosticCode,
    at: SourceRef,
    message: string,
    hint?: string,
  ): void {
    const d: Diagnostic = { severity, code, message, file: at.file, line: at.line, col: at.col };
    if (hint !== undefined) d.hint = hint;
    this.items.push(d);
  }
}

function read(file: string, what: string, at: SourceRef, out: Findings): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    out.add('error', 'certificate-unreadable', at, `cannot read ${what} "${file}": ${code}`);
    return undefined;
  }
}

/** The first certificate of a PEM file (the server's own, before its chain). */
function certificate(file: string, at: SourceRef, out: Findings, now: number): X509Certificate | undefined {
  const pem = read(file, 'certificate', at, out);
  if (pem === undefined) return undefined;
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (error) {
    out.add(
      'error',
      'certificate-invalid',
      at,
      `certificate "${file}" does not parse: ${(error as Error).message}`,
    );
    return undefined;
  }
  const expires = Date.parse(cert.validTo);
  const subject = cert.subject.replace(/\n/g, ', ');
  if (expires <= now)
    out.add(
      'error',
      'certificate-expired',
      at,
      `certificate "${file}" (${subject}) expired on ${cert.validTo}`,
      'renew it (e.g. certbot renew) and reload',
    );
  else if (expires - now < EXPIRY_WARNING_DAYS * DAY_MS)
    out.add(
      'warning',
      'certificate-expiring',
      at,
      `certificate "${file}" (${subject}) expires on ${cert.validTo}, in ${Math.floor((expires - now) / DAY_MS)} days`,
      'renewal should have happened by now: check the ACME client (certbot renew --dry-run)',
    );
  return cert;
}

function privateKey(file: string, at: SourceRef, out: Findings): KeyObject | undefined {
  const pem = read(file, 'private key', at, out);
  if (pem === undefined) return undefined;
  try {
    const mode = statSync(file).mode;
    if ((mode & 0o004) !== 0)
      out.add(
        'warning',
        'key-readable-by-others',
        at,
        `private key "${file}" is readable by other users (mode ${(mode & 0o777).toString(8)})`,
        `chmod 600 ${file} (or 640 with the group of the user keepwire runs as)`,
      );
  } catch {
    // Read above, so it exists; a stat failure here changes nothing.
  }
  try {
    return createPrivateKey(pem);
  } catch (error) {
    out.add(
      'error',
      'certificate-invalid',
      at,
      `private key "${file}" does not parse: ${(error as Error).message}`,
    );
    return undefined;
  }
}

function pair(p: CertificatePair, out: Findings, now: number): void {
  const cert = certificate(p.certificate, p.certificateSource, out, now);
  const key = privateKey(p.key, p.keySource, out);
  if (cert !== undefined && key !== undefined && !cert.checkPrivateKey(key))
    out.add(
      'error',
      'key-mismatch',
      p.keySource,
      `private key "${p.key}" does not match certificate "${p.certificate}"`,
      'the n-th ssl_certificate_key must be the key of the n-th ssl_certificate',
    );
}

function upstream(tls: UpstreamTls, fallback: SourceRef, out: Findings, now: number): void {
  const sources = tls.proxySslSources ?? {};
  const ca = tls.proxySslTrustedCertificate;
  if (ca !== undefined) {
    const at = sources.trustedCertificate ?? fallback;
    const pem = read(ca, 'proxy_ssl_trusted_certificate', at, out);
    if (pem !== undefined) {
      const blocks = pem.toString('latin1').match(PEM_CERT) ?? [];
      let parsed = 0;
      for (const block of blocks) {
        try {
          new X509Certificate(block);
          parsed++;
        } catch {
          // Counted below: one bad block makes the file suspect.
        }
      }
      if (blocks.length === 0 || parsed < blocks.length)
        out.add(
          'error',
          'certificate-invalid',
          at,
          blocks.length === 0
            ? `proxy_ssl_trusted_certificate "${ca}" holds no PEM certificate`
            : `proxy_ssl_trusted_certificate "${ca}": ${blocks.length - parsed} of ${blocks.length} certificates do not parse`,
        );
    }
  }
  if (tls.proxySslCertificate !== undefined && tls.proxySslCertificateKey !== undefined)
    pair(
      {
        certificate: tls.proxySslCertificate,
        key: tls.proxySslCertificateKey,
        certificateSource: sources.certificate ?? fallback,
        keySource: sources.certificateKey ?? fallback,
      },
      out,
      now,
    );
}

/** Every TLS file of `config` loaded and judged; each file once per directive naming it. */
export function checkCertificates(config: Config, now = Date.now()): Diagnostic[] {
  const out = new Findings();
  const seen = new Set<string>();
  const once = (key: string) => {
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  };
  const servers = [...(config.http?.servers ?? []), ...(config.stream?.servers ?? [])];
  for (const server of servers)
    for (const p of server.sslCertificates)
      if (once(`${p.certificateSource.file}:${p.certificateSource.line}:${p.keySource.line}`))
        pair(p, out, now);
  for (const server of config.stream?.servers ?? [])
    if (server.proxySsl && once(`s:${server.source.file}:${server.source.line}`))
      upstream(server, server.source, out, now);
  for (const server of config.http?.servers ?? [])
    for (const location of server.locations)
      if (location.proxyPass?.scheme === 'https') {
        const s = location.proxySslSources;
        const key = `l:${s?.trustedCertificate?.line}:${s?.certificate?.line}:${s?.certificateKey?.line}:${location.proxySslTrustedCertificate}:${location.proxySslCertificate}`;
        if (once(key)) upstream(location, location.source, out, now);
      }
  return out.items;
}
