/**
 * `keepwire check` loads every certificate and key and reports, at the
 * directive's file:line: a key that is not the certificate's, an unreadable
 * key, an expired certificate (error) or one expiring within 14 days
 * (warning), a proxy_ssl_trusted_certificate that does not parse, a private
 * key readable by others (warning), and https upstreams without verification.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkCertificates } from '../../../src/config/certificates.js';
import type { Diagnostic } from '../../../src/config/diagnostics.js';
import { MAIN } from '../../support.js';
import { makePki } from './pki.js';

const DAY = 86_400_000;

function at(d: Diagnostic): string {
  return `${d.severity} ${d.code} ${d.line}`;
}

test('certificate pairs: mismatch, unreadable key, expiry by the clock, key mode, trusted CA file', async (t) => {
  const pki = makePki(t);
  if (!pki) return;
  const a = pki.issue('a.test');
  const b = pki.issue('b.test', { kind: 'rsa' });
  for (const k of [a.key, b.key]) chmodSync(k, 0o600);
  const junk = join(pki.dir, 'junk.pem');
  writeFileSync(junk, '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n');
  const config = pki.config(`http {
  server {
    listen 127.0.0.1:8443 ssl;
    ssl_certificate ${a.cert};
    ssl_certificate_key ${a.key};
    ssl_certificate ${b.cert};
    ssl_certificate_key ${b.key};
    location / { return 200; }
  }
  server {
    listen 127.0.0.1:8444 ssl;
    ssl_certificate ${a.cert};
    ssl_certificate_key ${b.key};
    location / { return 200; }
  }
  server {
    listen 127.0.0.1:8445 ssl;
    ssl_certificate ${a.cert};
    ssl_certificate_key missing.key;
    location / {
      proxy_pass https://127.0.0.1:9443;
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate junk.pem;
    }
  }
}
`);
  // Today: the RSA + ECDSA pair is clean; line 13 pairs a's certificate with b's key; 19 is missing; 23 junk.
  const now = checkCertificates(config).map(at).sort();
  assert.deepEqual(now, [
    'error certificate-invalid 23',
    'error certificate-unreadable 19',
    'error key-mismatch 13',
  ]);
  // 50 days on, the 60-day certificates expire within 14 days; 61 days on they have expired.
  const soon = checkCertificates(config, Date.now() + 50 * DAY).filter(
    (d) => d.code === 'certificate-expiring',
  );
  assert.deepEqual(
    soon.map((d) => d.line).sort((x, y) => x - y),
    [4, 6, 12, 18],
  );
  assert.ok(soon.every((d) => d.severity === 'warning'));
  const later = checkCertificates(config, Date.now() + 61 * DAY).filter(
    (d) => d.code === 'certificate-expired',
  );
  assert.deepEqual(
    later.map((d) => d.line).sort((x, y) => x - y),
    [4, 6, 12, 18],
  );
  assert.ok(later.every((d) => d.severity === 'error'));
  assert.match(later[0]!.message, /expired on/);
  // A key other users can read is a warning at its ssl_certificate_key.
  chmodSync(a.key, 0o644);
  const loose = checkCertificates(config).filter((d) => d.code === 'key-readable-by-others');
  assert.deepEqual(loose.map(at), ['warning key-readable-by-others 5']);
});

test('keepwire check: a certificate expiring within 14 days is a warning, proxy_ssl_verify off a warning, at file:line', async (t) => {
  const pki = makePki(t);
  if (!pki) return;
  const soon = pki.issue('soon.test', { days: 5 });
  chmodSync(soon.key, 0o600);
  const file = join(pki.dir, 'keepwire.conf');
  pki.config(`http {
  upstream app { server 127.0.0.1:9443; }
  server {
    listen 127.0.0.1:8443 ssl;
    ssl_certificate ${soon.cert};
    ssl_certificate_key ${soon.key};
    location / { proxy_pass https://app; }
  }
}
`);
  const r = spawnSync(process.execPath, [MAIN, 'check', '-c', file, '--json'], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const diags = JSON.parse(r.stdout) as Diagnostic[];
  assert.deepEqual(diags.map((d) => `${d.code} ${d.file === file} ${d.line}`).sort(), [
    'certificate-expiring true 5',
    'tls-verify-off true 7',
  ]);
  assert.match(diags.find((d) => d.code === 'certificate-expiring')!.message, /in [45] days/);
});

test("keepwire check: a server sharing an ssl address without a certificate is a warning (it gets the default server's); the default server without one is nginx's error", async (t) => {
  const pki = makePki(t);
  if (!pki) return;
  const a = pki.issue('a.test');
  chmodSync(a.key, 0o600);
  const file = join(pki.dir, 'keepwire.conf');
  const check = (text: string) => {
    writeFileSync(file, text);
    const r = spawnSync(process.execPath, [MAIN, 'check', '-c', file, '--json'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    return { status: r.status, diags: JSON.parse(r.stdout) as Diagnostic[] };
  };
  const server = (name: string, listen: string, cert: boolean) => `  server {
    listen ${listen};
    server_name ${name};${cert ? `\n    ssl_certificate ${a.cert};\n    ssl_certificate_key ${a.key};` : ''}
    location / { return 200; }
  }
`;
  // The second server has no certificate; the third has none and no `ssl` on its
  // listen, but the address is ssl (nginx: the parameter is the address's).
  const warned = check(
    `http {\n${server('a.test', '127.0.0.1:8443 ssl', true)}${server('b.test', '127.0.0.1:8443 ssl', false)}${server('c.test', '127.0.0.1:8443', false)}}\n`,
  );
  assert.equal(warned.status, 0);
  assert.deepEqual(
    warned.diags.map((d) => `${d.severity} ${d.code} ${d.file === file} ${d.line}`),
    ['warning certificate-from-default true 10', 'warning certificate-from-default true 15'],
  );
  assert.match(
    warned.diags[0]!.message,
    /server b\.test shares the ssl address 127\.0\.0\.1:8443 but has no ssl_certificate/,
  );
  assert.match(warned.diags[0]!.message, /keepwire\.conf:2$/);
  assert.match(warned.diags[0]!.hint!, /ssl_certificate/);
  // default_server on the server without a certificate: nginx refuses the address.
  const refused = check(
    `http {\n${server('a.test', '127.0.0.1:8443 ssl', true)}${server('b.test', '127.0.0.1:8443 ssl default_server', false)}}\n`,
  );
  assert.equal(refused.status, 1);
  assert.deepEqual(
    refused.diags.map((d) => `${d.severity} ${d.code} ${d.line}`),
    ['error missing-directive 10'],
  );
  assert.match(
    refused.diags[0]!.message,
    /no "ssl_certificate" is defined for the listen 127\.0\.0\.1:8443 ssl/,
  );
});
