/**
 * YAML (and JSON, which YAML 1.2 reads) with the line of every key, for
 * doctor's findings at file:line on Envoy bootstraps and Kubernetes
 * manifests. The `yaml` package (eemeli/yaml) keeps each node's source range
 * and `LineCounter` turns it into line:col; js-yaml drops positions once
 * parsed. Values come back as plain objects; `at(object, key)` is where that
 * key was written.
 */
import { isMap, isScalar, isSeq, LineCounter, type Node, parseAllDocuments } from 'yaml';

export interface Place {
  file: string;
  line: number;
  col: number;
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface YamlFile {
  file: string;
  /** One value per document (`---`); empty documents left out. */
  docs: Json[];
  /** Where `key` of `obj` (or the object itself) was written. */
  at(obj: object, key?: string | number): Place;
}

export class YamlError extends Error {
  override name = 'YamlError';
  constructor(
    message: string,
    readonly place: Place,
  ) {
    super(message);
  }
}

export function readYaml(text: string, file: string): YamlFile {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false });
  const place = (offset: number): Place => {
    const p = lines.linePos(offset);
    return { file, line: p.line, col: p.col };
  };
  if (!Array.isArray(docs)) throw new YamlError('not a YAML stream', { file, line: 1, col: 1 });
  const keys = new WeakMap<object, Map<string | number, Place>>();
  const self = new WeakMap<object, Place>();
  const convert = (node: Node | null | undefined | unknown): Json => {
    if (node === null || node === undefined) return null;
    if (isMap(node)) {
      const out: { [key: string]: Json } = {};
      const where = new Map<string | number, Place>();
      for (const pair of node.items) {
        const k = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        out[k] = convert(pair.value);
        const range = (pair.key as Node | null)?.range;
        if (range) where.set(k, place(range[0]));
      }
      keys.set(out, where);
      if (node.range) self.set(out, place(node.range[0]));
      return out;
    }
    if (isSeq(node)) {
      const out: Json[] = [];
      const where = new Map<string | number, Place>();
      node.items.forEach((item, i) => {
        out.push(convert(item));
        const range = (item as Node | null)?.range;
        if (range) where.set(i, place(range[0]));
      });
      keys.set(out, where);
      if (node.range) self.set(out, place(node.range[0]));
      return out;
    }
    if (isScalar(node)) {
      const v = node.value;
      return typeof v === 'bigint' ? Number(v) : (v as Json);
    }
    return null;
  };
  const values: Json[] = [];
  for (const doc of docs) {
    const error = doc.errors[0];
    if (error) {
      const first = place(error.pos[0]);
      throw new YamlError(error.message.split('\n')[0] ?? 'invalid YAML', first);
    }
    if (doc.contents === null) continue;
    values.push(convert(doc.contents));
  }
  return {
    file,
    docs: values,
    at(obj, key) {
      const found = key === undefined ? self.get(obj) : (keys.get(obj)?.get(key) ?? self.get(obj));
      return found ?? { file, line: 1, col: 1 };
    },
  };
}

/** `obj[key]` when obj is a mapping; undefined otherwise. */
export function field(obj: Json | undefined, key: string): Json | undefined {
  return obj !== null && typeof obj === 'object' && !Array.isArray(obj) ? obj[key] : undefined;
}

export function asObject(v: Json | undefined): { [key: string]: Json } | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : undefined;
}

export function asArray(v: Json | undefined): Json[] {
  return Array.isArray(v) ? v : [];
}
