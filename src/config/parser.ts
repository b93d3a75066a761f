/**
 * Tokens → AST. Blocks nest as in nginx; `include` is expanded while parsing,
 * as nginx does, so included directives land in the including block with
 * their own file positions. Errors are collected, not thrown, and the parser
 * recovers so one mistake does not hide the next.
 */
import { readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import type { DiagnosticList, Position } from './diagnostics.js';
import { globFiles, hasGlobMagic } from './glob.js';
import { positionInToken, type Token, tokenize } from './lexer.js';
import { SourceFile } from './source.js';

export interface ArgNode extends Position {
  value: string;
  quoted: boolean;
  token: Token;
}

export interface DirectiveNode extends Position {
  name: string;
  args: ArgNode[];
  /** Present for block directives (`server { ... }`), even when empty. */
  children?: DirectiveNode[];
  /** The file that included this directive's file, for messages about include chains. */
  includedFrom?: Position;
}

export interface ConfigAst {
  file: string;
  directives: DirectiveNode[];
  /** Text of every file read, for showing source lines next to diagnostics. */
  sources: Map<string, string>;
}

export interface ParseOptions {
  /**
   * Directive names, used to notice a missing `;` when a line starts with a
   * directive while the previous one is still open.
   */
  knownNames?: ReadonlySet<string>;
  /**
   * Directory that relative include paths resolve against. nginx resolves them
   * against its configuration prefix (the main file's directory), not the
   * including file; absent, they resolve against the including file.
   */
  includeRoot?: string;
}

/** nginx has no limit, but a chain this deep is a mistake, not a config. */
const MAX_INCLUDE_DEPTH = 32;

interface Frame {
  children: DirectiveNode[];
  opener?: DirectiveNode;
  openBrace?: Token;
  /** Contents of a `{` with no directive name: parsed for errors, then dropped. */
  discarded?: boolean;
}

interface ClosedBlock {
  opener: DirectiveNode;
  close: Token;
}

function argOf(token: Token): ArgNode {
  return {
    file: token.source.file,
    line: token.line,
    col: token.col,
    value: token.value,
    quoted: token.quoted,
    token,
  };
}

/** Where a missing `;` belongs: right after the last word of the directive. */
function after(token: Token): Position {
  return token.source.position(token.end);
}

class Parser {
  readonly sources = new Map<string, string>();

  constructor(
    private readonly diags: DiagnosticList,
    private readonly knownNames: ReadonlySet<string>,
    private readonly includeRoot?: string,
  ) {}

  parseSource(source: SourceFile, chain: string[]): DirectiveNode[] {
    this.sources.set(source.file, source.text);
    const tokens = tokenize(source, this.diags);
    const root: Frame = { children: [] };
    const stack: Frame[] = [root];
    const closed: ClosedBlock[] = [];
    let pending: Token[] = [];
    const top = () => stack[stack.length - 1]!;

    const emit = (words: Token[], block: boolean): DirectiveNode => {
      const [name, ...rest] = words;
      const node: DirectiveNode = {
        file: name!.source.file,
        line: name!.line,
        col: name!.col,
        name: name!.value,
        args: rest.map(argOf),
      };
      if (block) node.children = [];
      if (!block && node.name === 'include') {
        const included = this.include(node, source, chain);
        top().children.push(...included);
      } else {
        top().children.push(node);
      }
      return node;
    };
    const missingSemicolon = (words: Token[], before: string) => {
      const name = words[0]!.value;
      this.diags.error(
        'missing-semicolon',
        after(words[words.length - 1]!),
        `directive "${name}" is not terminated by ";"`,
        `add ";" at the end of the "${name}" directive, before ${before}`,
      );
    };

    for (const token of tokens) {
      switch (token.kind) {
        case 'word': {
          const last = pending[pending.length - 1];
          if (
            last !== undefined &&
            token.line > last.line &&
            !token.quoted &&
            this.knownNames.has(token.value) &&
            this.knownNames.has(pending[0]!.value)
          ) {
            // A directive name at the start of a line while the previous directive is
            // still open: the `;` was forgotten at the end of the previous line.
            missingSemicolon(pending, `"${token.value}" on line ${token.line}`);
            emit(pending, false);
            pending = [];
          }
          pending.push(token);
          break;
        }
        case ';':
          if (pending.length === 0) {
            this.diags.error(
              'unexpected-token',
              token.source.position(token.start),
              'unexpected ";"',
              'remove the extra ";"',
            );
          } else {
            emit(pending, false);
            pending = [];
          }
          break;
        case '{': {
          if (pending.length === 0) {
            this.diags.error(
              'unexpected-token',
              token.source.position(token.start),
              'unexpected "{" without a directive name',
              'a block starts with its directive, e.g. "server {"',
            );
            stack.push({ children: [], openBrace: token, discarded: true });
          } else {
            const node = emit(pending, true);
            stack.push({ children: node.children!, opener: node, openBrace: token });
            pending = [];
          }
          break;
        }
        case '}': {
          if (pending.length > 0) {
            missingSemicolon(pending, `"}" on line ${token.line}`);
            emit(pending, false);
            pending = [];
          }
          if (stack.length === 1) {
            this.diags.error(
              'unbalanced-brace',
              token.source.position(token.start),
              'unexpected "}": no block is open here',
              'remove it, or look above for a block closed too early',
            );
          } else {
            const frame = stack.pop()!;
            if (frame.opener) closed.push({ opener: frame.opener, close: token });
          }
          break;
        }
        case 'eof':
          if (pending.length > 0) {
            missingSemicolon(pending, 'the end of the file');
            emit(pending, false);
            pending = [];
          }
          if (stack.length > 1) this.unclosed(stack, closed, token);
          break;
      }
    }
    return root.children;
  }

  /**
   * At end of file with blocks still open, the block missing its `}` is
   * usually the first one whose `}` sits left of its own directive: that
   * brace was meant for an enclosing block. Fall back to the innermost block.
   */
  private unclosed(stack: Frame[], closed: ClosedBlock[], eof: Token): void {
    const misplaced = closed.find((c) => c.close.col < c.opener.col && c.close.line > c.opener.line);
    const innermost = stack[stack.length - 1]!;
    const open = stack.length - 1;
    const count = `${open} block${open === 1 ? ' is' : 's are'} still open at the end of the file`;
    if (misplaced) {
      const o = misplaced.opener;
      this.diags.error(
        'unbalanced-brace',
        o,
        `unbalanced braces: the "${o.name}" block opened here is never closed (${count})`,
        `the "}" on line ${misplaced.close.line} is indented like an enclosing block; add "}" before it`,
      );
      return;
    }
    const at: Position = innermost.opener ?? innermost.openBrace!.source.position(innermost.openBrace!.start);
    const name = innermost.opener?.name ?? '{';
    this.diags.error(
      'unbalanced-brace',
      at,
      `unbalanced braces: the "${name}" block opened here is never closed (${count})`,
      `add "}" to close it before the end of ${path.basename(eof.source.file)}`,
    );
  }

  private include(node: DirectiveNode, source: SourceFile, chain: string[]): DirectiveNode[] {
    if (node.args.length !== 1) {
      this.diags.error(
        'wrong-arity',
        node.args[1] ?? node,
        `"include" takes exactly one file or glob pattern, got ${node.args.length}`,
        'include conf.d/*.conf;',
      );
      return [];
    }
    const arg = node.args[0]!;
    const base = this.includeRoot ?? path.dirname(path.resolve(source.file));
    const pattern = path.resolve(base, arg.value);
    let files: string[];
    if (hasGlobMagic(arg.value)) {
      // As nginx: a glob that matches nothing is not an error.
      files = globFiles(pattern);
    } else {
      files = [pattern];
    }
    const out: DirectiveNode[] = [];
    for (const file of files) {
      let real: string;
      try {
        real = realpathSync(file);
      } catch {
        this.diags.error(
          'include-not-found',
          arg,
          `included file "${arg.value}" does not exist (looked for ${file})`,
          'include paths are relative to the file that contains the include',
        );
        continue;
      }
      if (chain.includes(real)) {
        const cycle = [...chain.slice(chain.indexOf(real)), real].map((f) => path.basename(f)).join(' -> ');
        this.diags.error(
          'include-cycle',
          arg,
          `include cycle: ${cycle}`,
          'a file must not include itself, directly or through other files',
        );
        continue;
      }
      if (chain.length >= MAX_INCLUDE_DEPTH) {
        this.diags.error('include-cycle', arg, `includes nested deeper than ${MAX_INCLUDE_DEPTH} files`);
        continue;
      }
      let text: string;
      try {
        text = readFileSync(real, 'utf8');
      } catch (error) {
        this.diags.error(
          'file-unreadable',
          arg,
          `cannot read included file ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
        );
        continue;
      }
      const display = path.relative(process.cwd(), file) || file;
      const nested = this.parseSource(new SourceFile(display, text), [...chain, real]);
      for (const child of nested) child.includedFrom ??= { file: arg.file, line: arg.line, col: arg.col };
      out.push(...nested);
    }
    return out;
  }
}

function realOrResolved(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    return path.resolve(file);
  }
}

/** Parses config text that claims to come from `file` (includes resolve relative to it). */
export function parseText(
  text: string,
  file: string,
  diags: DiagnosticList,
  options: ParseOptions = {},
): ConfigAst {
  const parser = new Parser(diags, options.knownNames ?? new Set(), options.includeRoot);
  const directives = parser.parseSource(new SourceFile(file, text), [realOrResolved(file)]);
  return { file, directives, sources: parser.sources };
}

export { positionInToken };
