import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { renderConfigDocs } from '../../src/config/docs.js';
import { DIRECTIVES } from '../../src/config/index.js';
import { ROOT } from './support.js';

describe('docs/config.md', () => {
  it('is exactly what the directive table generates (run npm run docs:config)', () => {
    const committed = readFileSync(path.join(ROOT, 'docs', 'config.md'), 'utf8');
    assert.equal(committed, renderConfigDocs());
  });

  it('lists every directive with its contexts and default', () => {
    const docs = renderConfigDocs();
    for (const d of DIRECTIVES) {
      assert.ok(docs.includes(`### \`${d.name}\``), d.name);
      if (d.default !== undefined)
        assert.ok(docs.includes(`\`${d.name} ${d.default};\``), `${d.name} default`);
    }
  });
});
