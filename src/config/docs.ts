/**
 * Generates docs/config.md from the directive table, so the reference cannot
 * drift from what the parser accepts. Run: `npm run docs:config`.
 */
import { isMainModule } from '../units/main-module.js';
import { CONTEXT_LABEL, DIRECTIVES, type Directive } from './directives.js';

const MODULES: { module: Directive['module']; title: string; intro: string }[] = [
  {
    module: 'core',
    title: 'Main and events',
    intro: 'Top-level settings and the `stream`, `http` and `events` blocks.',
  },
  {
    module: 'stream',
    title: 'stream (TCP proxy)',
    intro: 'Inside `stream { }`. `least_conn`, `hash` and `random` are also valid in http `upstream` blocks.',
  },
  { module: 'http', title: 'http (HTTP/1.x reverse proxy)', intro: 'Inside `http { }`.' },
];

function anchor(d: Directive): string {
  return `${d.module}-${d.name}-${d.contexts[0]}`.replace(/_/g, '-');
}

function syntaxLine(d: Directive): string {
  const args = d.syntax === '' ? '' : ` ${d.syntax}`;
  return `${d.name}${args}${d.block ? '' : ';'}`;
}

function defaultText(d: Directive): string {
  if (d.default !== undefined) return `\`${d.name} ${d.default};\``;
  return d.defaultNote ?? '—';
}

const contexts = (d: Directive) => d.contexts.map((c) => CONTEXT_LABEL[c]).join(', ');

const cell = (text: string) => text.replace(/\|/g, '\\|');

/** A Markdown table with padded columns, as Biome formats Markdown, so `biome check` accepts the file as generated. */
function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

export function renderConfigDocs(): string {
  const out: string[] = [];
  out.push('# keepwire.conf reference');
  out.push('');
  out.push('<!-- Generated from src/config/directives.ts by `npm run docs:config`. Do not edit by hand. -->');
  out.push('');
  out.push(
    'keepwire reads an nginx-style configuration: a directive ends with `;`, a block is written in `{ }`, `#` starts a comment, and words may be quoted with `"` or `\'` (with `\\"`, `\\\'`, `\\\\`, `\\n`, `\\t`, `\\r` escapes). Parameters are separated by spaces, never commas. `keepwire check -c FILE` validates a file like `nginx -t` and adds keepalive hazard warnings.',
  );
  out.push('');
  out.push('Values:');
  out.push('');
  out.push(
    '- **time**: nginx units `ms s m h d w M y` (a month is 30 days, a year 365), largest first and combinable (`1m30s`); a bare number is seconds.',
  );
  out.push('- **size**: bytes with an optional `k`, `m` or `g` suffix (`1m` = 1048576).');
  out.push('- **flag**: `on` or `off`.');
  out.push(
    '- **address**: `host:port`, `[::1]:port`; `listen` also takes `port` and `*:port` (every address). `unix:` sockets are not supported: keepalive is a TCP matter.',
  );
  out.push(
    '- **keepalive spec**: `on | off | [idle]:[interval]:[count]` as nginx `so_keepalive`: idle and interval in whole seconds (time units allowed, no `ms`), count a number of probes; an empty field keeps the system value.',
  );
  out.push('');
  out.push(
    "Directives set at an outer level are inherited by inner levels unless set there (`proxy_set_header` follows nginx's array rule: a level that sets any inherits none). Defaults equal nginx's wherever nginx has the directive. Entries marked _keepwire_ are keepwire's own directives or extensions of nginx ones.",
  );
  out.push('');
  out.push('## Summary');
  out.push('');
  out.push(
    ...table(
      ['Directive', 'Context', 'Default'],
      DIRECTIVES.map((d) => [`[\`${d.name}\`](#${anchor(d)})`, cell(contexts(d)), cell(defaultText(d))]),
    ),
  );
  out.push('');
  for (const m of MODULES) {
    out.push(`## ${m.title}`);
    out.push('');
    out.push(m.intro);
    out.push('');
    for (const d of DIRECTIVES.filter((x) => x.module === m.module)) {
      out.push(`<a id="${anchor(d)}"></a>`);
      out.push('');
      out.push(`### \`${d.name}\` (${contexts(d)})`);
      out.push('');
      out.push(`- Syntax: \`${syntaxLine(d)}\``);
      out.push(`- Default: ${defaultText(d)}`);
      out.push(`- Context: ${contexts(d)}`);
      if (d.multiple) out.push('- May appear more than once in a block.');
      if (d.keepwire) {
        out.push(
          `- _keepwire ${d.keepwire === 'directive' ? 'directive' : 'extension of the nginx directive'}_`,
        );
      }
      out.push('');
      out.push(d.doc);
      out.push('');
    }
  }
  return out.join('\n');
}

if (isMainModule(import.meta.url)) process.stdout.write(renderConfigDocs());
