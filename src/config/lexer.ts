/**
 * nginx's lexical rules (ngx_conf_read_token): words separated by white space,
 * `;` ends a directive, `{ }` delimit blocks, `#` starts a comment only at the
 * start of a word, quotes group a word and take backslash escapes, and `{`
 * right after `$` belongs to a variable (`${name}`), not to a block.
 */
import type { DiagnosticList, Position } from './diagnostics.js';
import type { SourceFile } from './source.js';

export type TokenKind = 'word' | ';' | '{' | '}' | 'eof';

export interface Token {
  kind: TokenKind;
  /** The word after quotes and escapes are removed; the punctuation itself otherwise. */
  value: string;
  quoted: boolean;
  source: SourceFile;
  /** Offset of the first character (the quote for quoted words). */
  start: number;
  /** Offset just after the last character. */
  end: number;
  line: number;
  col: number;
  /** Source offset of each value character, kept only when escapes make them differ from start + i. */
  offsets?: number[];
}

/** The position of the value character at `index` (clamped to the word), for errors inside a word. */
export function positionInToken(token: Token, index: number): Position {
  const i = Math.max(0, Math.min(index, token.value.length));
  if (token.offsets) {
    const offset = i < token.offsets.length ? token.offsets[i]! : token.end - (token.quoted ? 1 : 0);
    return token.source.position(offset);
  }
  return token.source.position(token.start + (token.quoted ? 1 : 0) + i);
}

const ESCAPES: Record<string, string> = { '"': '"', "'": "'", '\\': '\\', t: '\t', r: '\r', n: '\n' };

function isSpace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r';
}

/** Splits a file into tokens. Errors go to `diags`; the last token is always `eof`. */
export function tokenize(source: SourceFile, diags: DiagnosticList): Token[] {
  const text = source.text;
  const tokens: Token[] = [];
  const make = (kind: TokenKind, value: string, start: number, end: number, quoted = false): Token => {
    const pos = source.position(start);
    return { kind, value, quoted, source, start, end, line: pos.line, col: pos.col };
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (isSpace(c)) {
      i++;
      continue;
    }
    if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
      continue;
    }
    if (c === ';' || c === '{' || c === '}') {
      tokens.push(make(c, c, i, i + 1));
      i++;
      continue;
    }
    if (c === '"' || c === "'") {
      const start = i;
      let value = '';
      const offsets: number[] = [];
      let escaped = false;
      i++;
      let closed = false;
      while (i < text.length) {
        const ch = text[i]!;
        if (ch === c) {
          closed = true;
          i++;
          break;
        }
        if (ch === '\\' && i + 1 < text.length) {
          const next = text[i + 1]!;
          const mapped = ESCAPES[next];
          escaped = true;
          if (mapped !== undefined) {
            offsets.push(i);
            value += mapped;
          } else {
            // nginx keeps unknown escapes as written (`\d` stays `\d`, useful in regexes).
            offsets.push(i, i + 1);
            value += ch + next;
          }
          i += 2;
          continue;
        }
        offsets.push(i);
        value += ch;
        i++;
      }
      if (!closed) {
        diags.error(
          'unterminated-string',
          source.position(start),
          `unterminated ${c === '"' ? 'double' : 'single'}-quoted string`,
          `close it with ${c} on the same directive`,
        );
        tokens.push(make('eof', '', text.length, text.length));
        return tokens;
      }
      const token = make('word', value, start, i, true);
      if (escaped || value.includes('\n')) token.offsets = offsets;
      tokens.push(token);
      const after = text[i];
      if (after !== undefined && !isSpace(after) && after !== ';' && after !== '{' && after !== '}') {
        diags.error(
          'unexpected-token',
          source.position(i),
          `unexpected "${after}" right after a quoted string`,
          'put a space between words, or keep the whole word inside the quotes',
        );
      }
      continue;
    }
    // A plain word.
    const start = i;
    let value = '';
    const offsets: number[] = [];
    let escaped = false;
    let inVariable = false;
    while (i < text.length) {
      const ch = text[i]!;
      if (ch === '{' && text[i - 1] === '$' && i - 1 >= start) {
        inVariable = true;
      } else if (ch === '}' && inVariable) {
        inVariable = false;
      } else if (isSpace(ch) || ch === ';' || ch === '{' || ch === '}') {
        break;
      }
      if (ch === '\\' && i + 1 < text.length && ESCAPES[text[i + 1]!] !== undefined) {
        escaped = true;
        offsets.push(i);
        value += ESCAPES[text[i + 1]!];
        i += 2;
        continue;
      }
      offsets.push(i);
      value += ch;
      i++;
    }
    const token = make('word', value, start, i);
    if (escaped) token.offsets = offsets;
    tokens.push(token);
  }
  tokens.push(make('eof', '', text.length, text.length));
  return tokens;
}
