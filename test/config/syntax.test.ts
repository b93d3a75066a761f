import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfigAst } from '../../src/config/index.js';
import { check, expectClean, expectDiagnostic } from './support.js';

const STREAM_OK = `stream {
    server {
        listen 127.0.0.1:9000;
        proxy_pass 127.0.0.1:9001;
    }
}
`;

describe('lexical rules', () => {
  it('reads quoted words with escapes, comments and braced variables as nginx does', () => {
    const { ast, diagnostics } = parseConfigAst(
      `# comment\nhash "a b\\"c" 'd\\'e' \${host}x f#g; # trailing\n`,
      'x.conf',
    );
    assert.deepEqual(diagnostics, []);
    const d = ast.directives[0]!;
    assert.equal(d.name, 'hash');
    assert.deepEqual(
      d.args.map((a) => a.value),
      // biome-ignore lint/suspicious/noTemplateCurlyInString: an nginx variable, not a template
      ['a b"c', "d'e", '${host}x', 'f#g'],
    );
    assert.deepEqual(
      d.args.map((a) => [a.line, a.col]),
      [
        [2, 6],
        [2, 15],
        [2, 22],
        [2, 31],
      ],
    );
  });

  it('points at the opening quote of an unterminated string', () => {
    expectDiagnostic(check('http {\n  server { server_name "abc;\n}\n}\n'), {
      code: 'unterminated-string',
      line: 2,
      col: 24,
      message: ['unterminated double-quoted string'],
    });
  });

  it('rejects a word glued to a quoted string', () => {
    expectDiagnostic(check('worker_shutdown_timeout "1"s;\n'), {
      code: 'unexpected-token',
      line: 1,
      col: 28,
    });
  });

  it('rejects a stray ";"', () => {
    expectDiagnostic(check('worker_shutdown_timeout 1s;;\n'), { code: 'unexpected-token', line: 1, col: 28 });
  });
});

describe('the seed line with a comma', () => {
  it('is an error at the comma that explains nginx takes space-separated parameters', () => {
    const result = check(
      'stream {\n    server {\n        listen 80, so_keepalive=60s::;\n        proxy_pass 127.0.0.1:9001;\n    }\n}\n',
    );
    const d = expectDiagnostic(result, {
      code: 'comma-separator',
      line: 3,
      col: 18,
      message: ['","', 'spaces', 'not commas'],
      hint: 'listen 80 so_keepalive=60s::;',
    });
    assert.equal(result.config, undefined);
    // Only the comma is reported: no cascade into "no listen in this server".
    assert.deepEqual(
      result.diagnostics.map((x) => x.code),
      ['comma-separator'],
    );
    assert.equal(d.severity, 'error');
  });

  it('is caught in any listen or server parameter', () => {
    expectDiagnostic(
      check(
        'stream {\n  upstream db { server 127.0.0.1:1 weight=2, backup; }\n  server { listen 1; proxy_pass db; }\n}\n',
      ),
      { code: 'comma-separator', line: 2, col: 44 },
    );
  });
});

describe('missing ";"', () => {
  it('is reported after the last word when the next line starts a directive', () => {
    expectDiagnostic(
      check(
        'stream {\n    server {\n        listen 127.0.0.1:9000\n        proxy_pass 127.0.0.1:9001;\n    }\n}\n',
      ),
      {
        code: 'missing-semicolon',
        line: 3,
        col: 30,
        message: ['"listen" is not terminated by ";"'],
        hint: 'before "proxy_pass" on line 4',
      },
    );
  });

  it('is reported before a closing brace', () => {
    const r = check('stream {\n    server { listen 9000; proxy_pass 127.0.0.1:9001 }\n}\n');
    expectDiagnostic(r, { code: 'missing-semicolon', line: 2, col: 52 });
    assert.equal(r.diagnostics.length, 1, 'the directive is recovered and nothing else fails');
  });

  it('is reported at the end of the file', () => {
    expectDiagnostic(check('worker_shutdown_timeout 5s'), { code: 'missing-semicolon', line: 1, col: 27 });
  });
});

describe('unbalanced braces', () => {
  it('reports an extra "}" where it is', () => {
    expectDiagnostic(check(`${STREAM_OK}}\n`), {
      code: 'unbalanced-brace',
      line: 7,
      col: 1,
      message: ['unexpected "}"'],
    });
  });

  it('reports the block whose "}" is missing, found by indentation', () => {
    const text = `http {
    upstream app { server 127.0.0.1:1; }
    server {
        location / {
            proxy_pass http://app;

    }
}
`;
    expectDiagnostic(check(text), {
      code: 'unbalanced-brace',
      line: 4,
      col: 9,
      message: ['"location" block', 'never closed'],
      hint: 'line 7',
    });
  });

  it('falls back to the innermost open block', () => {
    expectDiagnostic(check('stream {\nserver {\nlisten 1;\nproxy_pass 127.0.0.1:2;\n'), {
      code: 'unbalanced-brace',
      line: 2,
      col: 1,
      message: ['"server" block', '2 blocks are still open'],
    });
  });

  it('reports a "{" with no directive', () => {
    expectDiagnostic(check('{ }\n'), { code: 'unexpected-token', line: 1, col: 1 });
  });
});

describe('directive checks', () => {
  it('suggests the directive meant for an unknown one', () => {
    const r = check(STREAM_OK.replace('proxy_pass', 'proxy_pas'));
    expectDiagnostic(r, {
      code: 'unknown-directive',
      line: 4,
      col: 9,
      message: ['unknown directive "proxy_pas"'],
      hint: 'did you mean "proxy_pass"?',
    });
    assert.equal(r.diagnostics.length, 1);
  });

  it('says where a directive in the wrong context belongs', () => {
    expectDiagnostic(check(`listen 80;\n${STREAM_OK}`), {
      code: 'wrong-context',
      line: 1,
      col: 1,
      message: ['"listen" directive is not allowed in main'],
      hint: 'server (stream), server (http)',
    });
    expectDiagnostic(check('http { server { location / { keepalive 2; return 200; } } }\n'), {
      code: 'wrong-context',
      line: 1,
      col: 30,
      hint: 'upstream (http)',
    });
  });

  it('points at the first extra argument, or at the directive when arguments are missing', () => {
    expectDiagnostic(
      check('stream { server { listen 1; proxy_pass 127.0.0.1:2; proxy_timeout 1s 2s; } }\n'),
      {
        code: 'wrong-arity',
        line: 1,
        col: 70,
        message: ['"proxy_timeout"', 'takes 1 argument, got 2'],
      },
    );
    expectDiagnostic(check('stream { server { listen 1; proxy_pass; } }\n'), {
      code: 'wrong-arity',
      line: 1,
      col: 29,
    });
  });

  it('reports a block directive without a block and a plain directive with one', () => {
    expectDiagnostic(check('stream;\n'), { code: 'block-expected', line: 1, col: 1 });
    expectDiagnostic(check('worker_shutdown_timeout 1s { }\n'), {
      code: 'block-unexpected',
      line: 1,
      col: 1,
    });
  });

  it('refuses the same directive twice in one block, naming the first', () => {
    expectDiagnostic(
      check(
        'stream { server { listen 1; proxy_pass 127.0.0.1:2; proxy_timeout 1s;\n proxy_timeout 2s; } }\n',
      ),
      { code: 'duplicate-directive', line: 2, col: 2, hint: 'test.conf:1:53' },
    );
  });

  it('reports proxy_pass to an unknown upstream at the name, with a suggestion', () => {
    expectDiagnostic(
      check(
        'http {\n  upstream backend { server 127.0.0.1:1; }\n  server { location / { proxy_pass http://backnd; } }\n}\n',
      ),
      {
        code: 'unknown-upstream',
        line: 3,
        col: 43,
        message: ['"backnd"'],
        hint: 'did you mean "backend"?',
      },
    );
    expectDiagnostic(check('stream { server { listen 1; proxy_pass db; } }\n'), {
      code: 'unknown-upstream',
      line: 1,
      col: 40,
    });
  });

  it('does not look up upstreams of the other module', () => {
    expectDiagnostic(
      check(
        'stream { upstream app { server 127.0.0.1:1; } }\nhttp { server { listen 1; location / { proxy_pass http://app; } } }\n',
      ),
      { code: 'unknown-upstream', line: 2, col: 58 },
    );
  });

  it('refuses duplicate listen addresses where nginx does', () => {
    expectDiagnostic(check('stream { server { listen 9000;\n listen *:9000; proxy_pass 127.0.0.1:2; } }\n'), {
      code: 'duplicate-listen',
      line: 2,
      col: 2,
      message: ['0.0.0.0:9000', 'in this server'],
    });
    expectDiagnostic(
      check(
        'stream {\n server { listen 127.0.0.1:9000; proxy_pass 127.0.0.1:2; }\n server { listen 127.0.0.1:9000; proxy_pass 127.0.0.1:3; }\n}\n',
      ),
      { code: 'duplicate-listen', line: 3, col: 11, hint: 'stream server only' },
    );
    expectDiagnostic(
      check(
        'stream { server { listen 127.0.0.1:9000; proxy_pass 127.0.0.1:2; } }\nhttp { server { listen 127.0.0.1:9000; return 200; } }\n',
      ),
      { code: 'duplicate-listen', line: 2, col: 17 },
    );
  });

  it('lets http servers share an address (virtual hosts) unless both set socket options', () => {
    const shared = (a: string, b: string) =>
      check(
        `http {\n server { listen 127.0.0.1:80${a}; server_name a; location / { return 200; } }\n server { listen 127.0.0.1:80${b}; server_name b; location / { return 200; } }\n}\n`,
      );
    expectClean(shared('', ''));
    expectClean(shared(' so_keepalive=on', ''));
    expectDiagnostic(shared(' so_keepalive=on', ' backlog=10'), {
      code: 'duplicate-listen',
      line: 3,
      col: 11,
      message: ['duplicate listen options for 127.0.0.1:80'],
    });
  });

  it('allows one default_server per address, and reports a second like nginx', () => {
    const two = (a: string, b: string, addrB = '127.0.0.1:80') =>
      check(
        `http {\n server { listen 127.0.0.1:80${a}; server_name a; location / { return 200; } }\n server { listen ${addrB}${b}; server_name b; location / { return 200; } }\n}\n`,
        'vhosts.conf',
      );
    expectClean(two('', ' default_server'));
    expectClean(two(' default_server so_keepalive=on', ''));
    expectClean(two(' default_server', ' default_server', '127.0.0.1:81'));
    expectDiagnostic(two(' default_server', ' default_server'), {
      code: 'duplicate-listen',
      line: 3,
      col: 11,
      message: ['a duplicate default server for 127.0.0.1:80'],
      hint: 'already set at vhosts.conf:2:11',
    });
    // `default` is nginx's older spelling of the same thing.
    expectDiagnostic(two(' default', ' default_server'), {
      code: 'duplicate-listen',
      line: 3,
      col: 11,
      message: ['a duplicate default server'],
    });
  });

  it('requires listen and proxy_pass in a stream server and servers in an upstream', () => {
    expectDiagnostic(check('stream {\n  server { proxy_pass 127.0.0.1:2; }\n}\n'), {
      code: 'missing-directive',
      line: 2,
      col: 3,
      message: ['no "listen"'],
    });
    expectDiagnostic(check('stream {\n  server { listen 1; }\n}\n'), {
      code: 'missing-directive',
      line: 2,
      col: 3,
      message: ['no "proxy_pass"'],
    });
    expectDiagnostic(
      check('stream {\n  upstream db { least_conn; }\n  server { listen 1; proxy_pass db; }\n}\n'),
      {
        code: 'missing-directive',
        line: 2,
        col: 3,
        message: ['no servers are inside upstream "db"'],
      },
    );
  });

  it('keeps unknown directives as warnings in tolerant mode', async () => {
    const { parseConfigText } = await import('../../src/config/index.js');
    const r = parseConfigText(
      'http { gzip on; server { listen 1; location / { return 204; } } }\n',
      'nginx.conf',
      {
        tolerant: true,
      },
    );
    assert.equal(r.diagnostics.length, 1);
    assert.equal(r.diagnostics[0]!.severity, 'warning');
    assert.equal(r.diagnostics[0]!.code, 'unknown-directive');
    assert.ok(r.config?.http);
  });
});
