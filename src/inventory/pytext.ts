// Text handling as Python does it, because Ansible's INI plugin is Python: the file is split
// with str.splitlines, each line trimmed with str.strip, and `\s` / `\w` in its patterns are
// Python's (Unicode-aware, but not the same sets as JavaScript's).

import { InventoryError } from '../errors.ts';

/** Characters for which Python's str.isspace() is true (what str.strip() removes and re's `\s` matches). */
export const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
/**
 * Python's `\w` for str patterns: alphanumeric (str.isalnum) or `_`. Checked against Python 3.11
 * over every code point: equal, except characters assigned after Unicode 14 (newer here).
 */
export const PY_WORD = '\\p{L}\\p{N}_';

const STRIP = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'gu');
/** str.splitlines: \n, \r, \r\n, \v, \f, \x1c, \x1d, \x1e, \x85, \u2028, \u2029 (no trailing empty line). */
const LINE_BREAK = /\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]/;

export function pyStrip(s: string): string {
  return s.replace(STRIP, '');
}

export function splitPyLines(text: string): string[] {
  const lines = text.split(LINE_BREAK);
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/**
 * The inventory file as text. Ansible decodes it with surrogateescape, so bytes that are not UTF-8
 * become lone surrogates inside host names and values; we refuse such a file instead, naming the
 * line of the first bad byte.
 */
export function decodeInventory(bytes: Uint8Array, file: string): string {
  const text = new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes);
  let offset = 0;
  let index = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    const genuine = cp !== 0xfffd || (bytes[offset] === 0xef && bytes[offset + 1] === 0xbf && bytes[offset + 2] === 0xbd);
    if (!genuine) {
      throw new InventoryError(file, splitPyLines(text.slice(0, index) + 'x').length, 'this line is not valid UTF-8');
    }
    offset += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    index += ch.length;
  }
  return text;
}

/** Python's `a < b` on str: by code point (JavaScript's `<` compares UTF-16 units). */
export function comparePy(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}
