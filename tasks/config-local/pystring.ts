// Python string literals: writing one for any string, and reading back the value of a plain one
// (for drift checks and for "same value, differently quoted" idempotence).

/**
 * A double-quoted Python string literal for `s`, pure ASCII: `\` and `"` are escaped, control
 * characters use `\n`, `\r`, `\t` or `\xNN`, and every non-ASCII character becomes `\xNN`,
 * `\uXXXX` or `\UXXXXXXXX`. ASCII-only because config_local.py's encoding is the file's business
 * (a `# -*- coding: latin-1 -*-` line would make raw UTF-8 bytes mean something else), and an
 * escape shows exactly which character is there (no look-alikes in a diff).
 */
export function pythonStringLiteral(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const unit = s.charCodeAt(i);
    let cp = unit;
    // A well-formed surrogate pair is one code point; a lone surrogate is escaped as itself.
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < s.length) {
      const low = s.charCodeAt(i + 1);
      if (low >= 0xdc00 && low <= 0xdfff) {
        cp = 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
        i++;
      }
    }
    if (cp === 0x5c) out += '\\\\';
    else if (cp === 0x22) out += '\\"';
    else if (cp === 0x0a) out += '\\n';
    else if (cp === 0x0d) out += '\\r';
    else if (cp === 0x09) out += '\\t';
    else if (cp >= 0x20 && cp < 0x7f) out += String.fromCharCode(cp);
    else if (cp <= 0xff) out += `\\x${hex(cp, 2)}`;
    else if (cp <= 0xffff) out += `\\u${hex(cp, 4)}`;
    else out += `\\U${hex(cp, 8)}`;
  }
  return out + '"';
}

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

const SIMPLE_ESCAPES: Record<string, string> = {
  '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v',
};

/**
 * The `str` value of one Python string literal token (prefix and quotes included), or undefined
 * when it is not a plain str we can evaluate: bytes, an f/t-string with replacement fields, or a
 * `\N{...}` escape (we carry no Unicode name table).
 */
export function decodePythonString(literal: string): string | undefined {
  const m = /^([A-Za-z]*)('''|"""|'|")/.exec(literal);
  if (!m) return undefined;
  const prefix = m[1]!.toLowerCase();
  const quote = m[2]!;
  if (prefix.includes('b')) return undefined;
  let body = literal.slice(m[0].length, literal.length - quote.length);
  if (prefix.includes('f') || prefix.includes('t')) {
    // Without replacement fields an f-string is a plain string with doubled braces.
    if (/[{}]/.test(body.replace(/\{\{|\}\}/g, ''))) return undefined;
    body = body.replace(/\{\{/g, '{').replace(/\}\}/g, '}');
  }
  // Python reads any line break inside a literal as \n.
  body = body.replace(/\r\n?/g, '\n');
  if (prefix.includes('r')) return body;
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const e = body[i + 1];
    if (e === undefined) return undefined;
    if (e === '\n') {
      i++;
      continue;
    }
    const simple = SIMPLE_ESCAPES[e];
    if (simple !== undefined) {
      out += simple;
      i++;
      continue;
    }
    const oct = /^[0-7]{1,3}/.exec(body.slice(i + 1, i + 4));
    if (oct) {
      out += String.fromCodePoint(parseInt(oct[0], 8));
      i += oct[0].length;
      continue;
    }
    const width = e === 'x' ? 2 : e === 'u' ? 4 : e === 'U' ? 8 : 0;
    if (width > 0) {
      const digits = body.slice(i + 2, i + 2 + width);
      if (!new RegExp(`^[0-9A-Fa-f]{${width}}$`).test(digits)) return undefined;
      const cp = parseInt(digits, 16);
      if (cp > 0x10ffff) return undefined;
      out += String.fromCodePoint(cp);
      i += 1 + width;
      continue;
    }
    if (e === 'N') return undefined;
    // Unknown escapes keep their backslash in Python.
    out += c;
  }
  return out;
}
