/**
 * The part of glob(3) that nginx's `include` needs: `*`, `?` and `[...]` in
 * any path segment, matches sorted as nginx sorts them, and a leading dot
 * matched only explicitly. Node 20 has no fs.globSync, and a dependency for
 * this would be larger than the code.
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

export function hasGlobMagic(pattern: string): boolean {
  return /[*?[]/.test(pattern);
}

/** Compiles one path segment's pattern into a RegExp. */
export function segmentMatcher(segment: string): RegExp {
  let re = '^';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const close = segment.indexOf(']', i + 2);
      if (close === -1) {
        re += '\\[';
        continue;
      }
      let body = segment.slice(i + 1, close);
      const negate = body.startsWith('!') || body.startsWith('^');
      if (negate) body = body.slice(1);
      re += `[${negate ? '^' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`;
      i = close;
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`${re}$`);
}

/** Files (not directories) matching an absolute pattern, sorted. */
export function globFiles(pattern: string): string[] {
  const root = path.parse(pattern).root;
  const segments = pattern
    .slice(root.length)
    .split(/[\\/]+/)
    .filter(Boolean);
  let candidates = [root];
  for (const segment of segments) {
    const next: string[] = [];
    if (!hasGlobMagic(segment)) {
      for (const dir of candidates) next.push(path.join(dir, segment));
    } else {
      const matcher = segmentMatcher(segment);
      for (const dir of candidates) {
        let names: string[];
        try {
          names = readdirSync(dir);
        } catch {
          continue;
        }
        for (const name of names.sort()) {
          if (name.startsWith('.') && !segment.startsWith('.')) continue;
          if (matcher.test(name)) next.push(path.join(dir, name));
        }
      }
    }
    candidates = next;
  }
  return candidates.filter((file) => {
    try {
      return statSync(file).isFile();
    } catch {
      return false;
    }
  });
}
