import type { Position } from './diagnostics.js';

/** The text of one config file with a line index, so any offset maps to line and column. */
export class SourceFile {
  private readonly lineStarts: number[] = [0];

  constructor(
    readonly file: string,
    readonly text: string,
  ) {
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) this.lineStarts.push(i + 1);
  }

  /** 1-based line and column of a 0-based offset; columns count UTF-16 units, tabs as one. */
  position(offset: number): Position {
    const at = Math.max(0, Math.min(offset, this.text.length));
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid]! <= at) lo = mid;
      else hi = mid - 1;
    }
    return { file: this.file, line: lo + 1, col: at - this.lineStarts[lo]! + 1 };
  }
}
