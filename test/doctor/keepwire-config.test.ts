/** `-c`: keepwire's own config, validated as `check` does and audited against the LB given to doctor. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { auditKeepwireConfig } from '../../src/doctor/keepwire-config.js';
import { middleboxFromArg } from '../../src/doctor/profiles.js';
import { tempDir } from '../support.js';
import { STOCK } from './support.js';

const dir = tempDir('keepwire-doctor-c-');

function conf(name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('keepwire config (-c)', () => {
  it('audits listeners and proxy_socket_keepalive specs against the LB; fixes use keepwire syntax', () => {
    const file = conf(
      'lb.conf',
      [
        'stream {',
        '    server {',
        '        listen 127.0.0.1:6432;',
        '        proxy_pass 10.0.0.5:5432;',
        '        proxy_timeout 1h;',
        '        proxy_socket_keepalive 600s:10s:3;',
        '    }',
        '}',
        '',
      ].join('\n'),
    );
    const r = auditKeepwireConfig(file, {
      front: [middleboxFromArg('aws-nlb')],
      upstream: [middleboxFromArg('azure-lb')],
      system: STOCK,
    });
    assert.deepEqual(
      r.findings.map((f) => `${f.layer} ${f.severity} ${f.code} ${f.evidence.line}:${f.evidence.col}`),
      // The codes are check's: one hazard engine over the model (config/hazards.ts).
      [
        'keepwire error hazard-listener-without-keepalive 3:9',
        'keepwire error hazard-keepalive-too-late 6:9',
      ],
    );
    assert.equal(r.findings[1]!.fix, 'proxy_socket_keepalive 160s:40s:3;');
  });

  it("keepwire's own validation errors come through with its codes", () => {
    const file = conf(
      'seed.conf',
      'stream {\n    server {\n        listen 80, so_keepalive=60s::;\n        proxy_pass 127.0.0.1:5432;\n    }\n}\n',
    );
    const r = auditKeepwireConfig(file, { front: [], upstream: [], system: STOCK });
    assert.deepEqual(
      r.findings.map((f) => `${f.severity} ${f.code} ${f.evidence.line}:${f.evidence.col}`),
      ['error config-comma-separator 3:18'],
    );
  });
});
