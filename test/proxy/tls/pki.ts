/**
 * A throwaway certificate authority for the TLS tests, made with the openssl
 * CLI in a temporary directory removed after the test: server certificates
 * (ECDSA P-256 or RSA) for DNS names, client certificates, and a keepwire
 * configuration file written beside them.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { parseConfigText } from '../../../src/config/index.js';
import type { Config } from '../../../src/config/model.js';
import { tempDir } from '../../support.js';

export interface Issued {
  cert: string;
  key: string;
}

export class Pki {
  readonly ca: string;
  private readonly caKey: string;
  private serial = 1;

  constructor(readonly dir: string) {
    this.ca = join(dir, 'ca.pem');
    this.caKey = join(dir, 'ca.key');
    openssl([
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      this.caKey,
      '-out',
      this.ca,
      '-days',
      '90',
      '-subj',
      '/CN=keepwire test CA',
    ]);
  }

  /** A certificate for `name` signed by the CA, valid for `days` (default 60). */
  issue(
    name: string,
    opts: { kind?: 'ec' | 'rsa'; days?: number; client?: boolean; file?: string } = {},
  ): Issued {
    const base = join(this.dir, opts.file ?? `${name}-${opts.kind ?? 'ec'}-${this.serial}`);
    const key = `${base}.key`;
    const csr = `${base}.csr`;
    const cert = `${base}.pem`;
    const ext = `${base}.ext`;
    const keyArgs =
      opts.kind === 'rsa'
        ? ['-newkey', 'rsa:2048']
        : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
    openssl(['req', '-new', ...keyArgs, '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${name}`]);
    writeFileSync(
      ext,
      opts.client
        ? 'extendedKeyUsage=clientAuth\n'
        : `subjectAltName=DNS:${name}\nextendedKeyUsage=serverAuth\n`,
    );
    openssl([
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      this.ca,
      '-CAkey',
      this.caKey,
      '-set_serial',
      String(this.serial++),
      '-out',
      cert,
      '-days',
      String(opts.days ?? 60),
      '-extfile',
      ext,
    ]);
    return { cert, key };
  }

  read(file: string): Buffer {
    return readFileSync(file);
  }

  /** Writes `text` as keepwire.conf in the PKI's directory and returns its model (relative paths work). */
  config(text: string): Config {
    const file = join(this.dir, 'keepwire.conf');
    writeFileSync(file, text);
    const r = parseConfigText(text, file);
    if (!r.config) {
      const why = r.diagnostics.map((d) => `${d.line}:${d.col} ${d.message}`).join('; ');
      throw new Error(`test configuration does not validate: ${why}`);
    }
    return r.config;
  }
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: 'ignore', timeout: 60_000 });
}

/** Undefined (test skipped, or failed under CI=true) when the openssl CLI is missing. */
export function makePki(t: TestContext): Pki | undefined {
  const dir = tempDir('kw-tls-', t);
  try {
    return new Pki(dir);
  } catch (error) {
    const why = `the openssl CLI could not make a CA: ${(error as Error).message} (apt-get install openssl)`;
    if (process.env.CI === 'true') throw new Error(`CI=true: this test must run, but ${why}`);
    t.skip(why);
    return undefined;
  }
}

/** A port free right now on 127.0.0.1 (for two servers that must share one address). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
