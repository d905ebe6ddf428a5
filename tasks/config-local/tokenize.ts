// A small Python tokenizer, just enough to find top-level assignments in config_local.py without
// being fooled by comments, strings (including docstrings) or bracketed continuations (STYLE 5).
// It follows Python's own tokenizer rules for what matters here: where strings and comments
// begin and end, which line breaks end a statement, and bracket depth. It does not evaluate
// anything. f-strings are scanned like ordinary strings (Python < 3.12 rules: a nested string
// inside an f-string's braces may not reuse the outer quote).

import { LineParseError } from '../../src/errors.ts';

/** Python source we cannot tokenize. Carries the 1-based line; never the line's text (secrets). */
export class ConfigParseError extends LineParseError {
  override name = 'ConfigParseError';
}

export type TokenKind =
  | 'name'
  | 'number'
  | 'string'
  | 'op'
  | 'comment'
  /** End of a logical line (a statement boundary). */
  | 'newline'
  /** A line break that does not end a statement: blank line, comment-only line, inside brackets. */
  | 'nl';

export interface Token {
  kind: TokenKind;
  text: string;
  /** Offsets into the source string, end exclusive. */
  start: number;
  end: number;
  /** 1-based line and 0-based column of `start`. */
  line: number;
  col: number;
  /** Bracket depth around this token; a bracket has the depth of the code outside it. */
  depth: number;
}

// Longest first, so `**=` wins over `**` and `*`.
const OPERATORS = [
  '**=', '//=', '>>=', '<<=', '...',
  '->', ':=', '==', '!=', '<=', '>=', '+=', '-=', '*=', '/=', '%=', '&=', '|=', '^=', '@=',
  '**', '//', '<<', '>>',
  '+', '-', '*', '/', '%', '@', '&', '|', '^', '~', '<', '>', '(', ')', '[', ']', '{', '}',
  ',', ':', ';', '.', '=', '!',
];
const OPENERS = '([{';
const CLOSERS = ')]}';
// Prefixes Python accepts before a quote (case-insensitive); t-strings are Python 3.14.
const STRING_PREFIXES = new Set(['r', 'u', 'b', 'f', 't', 'br', 'rb', 'fr', 'rf', 'tr', 'rt']);
const IDENT_START = /[\p{L}\p{Nl}_]/u;
const IDENT_CHAR = /[\p{L}\p{Nl}\p{Mn}\p{Mc}\p{Nd}\p{Pc}_]/u;

/** Length of the line break at `i` (`\r\n`, `\n` or `\r`, as Python reads them), else 0. */
export function lineBreakAt(src: string, i: number): number {
  const c = src[i];
  if (c === '\n') return 1;
  if (c === '\r') return src[i + 1] === '\n' ? 2 : 1;
  return 0;
}

/**
 * Length of a leading UTF-8 byte order mark: U+FEFF in decoded text, or its three bytes EF BB BF
 * in a byte string (files/text.ts: config_local.py is edited one character per byte). Python
 * skips it; so do we.
 */
export function bomLength(src: string): number {
  if (src.charCodeAt(0) === 0xfeff) return 1;
  return src.startsWith('\u00ef\u00bb\u00bf') ? 3 : 0;
}

/** Tokenizes Python source. A leading BOM is skipped. Throws ConfigParseError on invalid input. */
export function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  let i = bomLength(src);
  let line = 1;
  let lineStart = i;
  const brackets: { ch: string; line: number }[] = [];
  let lineHasCode = false;

  const push = (kind: TokenKind, start: number, end: number, tokLine = line, tokCol = start - lineStart) => {
    tokens.push({ kind, text: src.slice(start, end), start, end, line: tokLine, col: tokCol, depth: brackets.length });
  };
  const newLine = (breakLen: number) => {
    i += breakLen;
    line++;
    lineStart = i;
  };

  while (i < src.length) {
    const c = src[i]!;
    const br = lineBreakAt(src, i);
    if (br > 0) {
      const ends = lineHasCode && brackets.length === 0;
      push(ends ? 'newline' : 'nl', i, i + br);
      if (ends) lineHasCode = false;
      newLine(br);
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\f') {
      i++;
      continue;
    }
    if (c === '#') {
      let j = i;
      while (j < src.length && lineBreakAt(src, j) === 0) j++;
      push('comment', i, j);
      i = j;
      continue;
    }
    if (c === '\\') {
      const after = lineBreakAt(src, i + 1);
      if (after === 0) {
        throw new ConfigParseError(line, i + 1 >= src.length ? 'unexpected end of file after line continuation' : 'unexpected character after line continuation character');
      }
      newLine(1 + after);
      continue;
    }
    if (c === '"' || c === "'") {
      i = scanString(src, i, i, line, lineStart, (s, e, l, col, lines, ls) => {
        push('string', s, e, l, col);
        line += lines;
        if (lines > 0) lineStart = ls;
      });
      lineHasCode = true;
      continue;
    }
    if (IDENT_START.test(c)) {
      let j = i + 1;
      while (j < src.length && IDENT_CHAR.test(src[j]!)) j++;
      const q = src[j];
      if ((q === '"' || q === "'") && STRING_PREFIXES.has(src.slice(i, j).toLowerCase())) {
        i = scanString(src, i, j, line, lineStart, (s, e, l, col, lines, ls) => {
          push('string', s, e, l, col);
          line += lines;
          if (lines > 0) lineStart = ls;
        });
      } else {
        push('name', i, j);
        i = j;
      }
      lineHasCode = true;
      continue;
    }
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(src[i + 1] ?? ''))) {
      // Numbers only need to be skipped whole: digits, letters (0x, e, j, L), '_' and '.',
      // plus a sign right after an exponent.
      let j = i + 1;
      while (j < src.length) {
        const d = src[j]!;
        if (/[0-9A-Za-z_.]/.test(d)) j++;
        else if ((d === '+' || d === '-') && /[eE]/.test(src[j - 1]!) && !/^0[xX]/.test(src.slice(i, j))) j++;
        else break;
      }
      push('number', i, j);
      i = j;
      lineHasCode = true;
      continue;
    }
    const op = OPERATORS.find((o) => src.startsWith(o, i));
    if (op === undefined) {
      throw new ConfigParseError(line, `invalid character U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`);
    }
    if (CLOSERS.includes(op)) {
      const open = brackets.pop();
      if (open === undefined || OPENERS.indexOf(open.ch) !== CLOSERS.indexOf(op)) {
        throw new ConfigParseError(line, `unmatched '${op}'`);
      }
    }
    push('op', i, i + op.length);
    if (OPENERS.includes(op)) brackets.push({ ch: op, line });
    i += op.length;
    lineHasCode = true;
  }
  const open = brackets.pop();
  if (open !== undefined) throw new ConfigParseError(open.line, `'${open.ch}' was never closed`);
  if (lineHasCode) push('newline', src.length, src.length);
  return tokens;
}

/**
 * Scans a string literal whose prefix starts at `start` and whose opening quote is at `q`.
 * Reports it through `emit` (start, end, line, col, line breaks inside, start of its last line)
 * and returns the offset after it.
 */
function scanString(
  src: string,
  start: number,
  q: number,
  line: number,
  lineStart: number,
  emit: (s: number, e: number, l: number, col: number, lines: number, lastLineStart: number) => void,
): number {
  const quote = src[q]!;
  const triple = src.startsWith(quote.repeat(3), q);
  const close = triple ? quote.repeat(3) : quote;
  let j = q + close.length;
  let lines = 0;
  let lastLineStart = lineStart;
  while (j < src.length) {
    const ch = src[j]!;
    if (ch === '\\') {
      // A backslash always takes the next character with it, even in raw strings (r"\"" is one
      // string); a backslash-newline continues a single-quoted string onto the next line.
      const br = lineBreakAt(src, j + 1);
      if (br > 0) {
        j += 1 + br;
        lines++;
        lastLineStart = j;
      } else {
        j += 2;
      }
      continue;
    }
    const br = lineBreakAt(src, j);
    if (br > 0) {
      if (!triple) break;
      j += br;
      lines++;
      lastLineStart = j;
      continue;
    }
    if (src.startsWith(close, j)) {
      j += close.length;
      emit(start, j, line, start - lineStart, lines, lastLineStart);
      return j;
    }
    j++;
  }
  throw new ConfigParseError(line, triple ? 'unterminated triple-quoted string literal' : 'unterminated string literal');
}
