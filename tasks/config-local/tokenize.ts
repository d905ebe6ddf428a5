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
  return new Tokenizer(src).run();
}

/** Where the tokenizer is and what it has seen; one method per kind of token. */
class Tokenizer {
  private readonly tokens: Token[] = [];
  private i: number;
  private line = 1;
  private lineStart: number;
  /** Open brackets, innermost last, with their lines for "was never closed". */
  private readonly brackets: { ch: string; line: number }[] = [];
  /** Whether the current logical line has code, so that its line break ends a statement. */
  private lineHasCode = false;

  constructor(private readonly src: string) {
    this.i = bomLength(src);
    this.lineStart = this.i;
  }

  run(): Token[] {
    while (this.i < this.src.length) this.next();
    const open = this.brackets.pop();
    if (open !== undefined) throw new ConfigParseError(open.line, `'${open.ch}' was never closed`);
    // Python ends the last statement even when the file does not end with a line break.
    if (this.lineHasCode) this.push('newline', this.src.length, this.src.length);
    return this.tokens;
  }

  /** Reads what starts at the current offset: a line break, a blank, or a token. */
  private next(): void {
    const { src, i } = this;
    const c = src[i]!;
    const br = lineBreakAt(src, i);
    if (br > 0) this.lineBreak(br);
    else if (c === ' ' || c === '\t' || c === '\f') this.i++;
    else if (c === '#') this.comment();
    else if (c === '\\') this.continuation();
    else if (c === '"' || c === "'") this.string(i, i);
    else if (IDENT_START.test(c)) this.nameOrPrefixedString();
    else if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(src[i + 1] ?? ''))) this.number();
    else this.operator(c);
  }

  private push(kind: TokenKind, start: number, end: number, line = this.line, col = start - this.lineStart): void {
    this.tokens.push({ kind, text: this.src.slice(start, end), start, end, line, col, depth: this.brackets.length });
  }

  private newLine(breakLen: number): void {
    this.i += breakLen;
    this.line++;
    this.lineStart = this.i;
  }

  /** A line break ends a statement only after code and outside brackets. */
  private lineBreak(br: number): void {
    const ends = this.lineHasCode && this.brackets.length === 0;
    this.push(ends ? 'newline' : 'nl', this.i, this.i + br);
    if (ends) this.lineHasCode = false;
    this.newLine(br);
  }

  private comment(): void {
    let j = this.i;
    while (j < this.src.length && lineBreakAt(this.src, j) === 0) j++;
    this.push('comment', this.i, j);
    this.i = j;
  }

  /** A backslash joins the next line to this one; it must be the last character of its line. */
  private continuation(): void {
    const after = lineBreakAt(this.src, this.i + 1);
    if (after === 0) {
      throw new ConfigParseError(this.line, this.i + 1 >= this.src.length ? 'unexpected end of file after line continuation' : 'unexpected character after line continuation character');
    }
    this.newLine(1 + after);
  }

  /** A string whose prefix (if any) starts at `start` and whose quote is at `quote`; it may span lines. */
  private string(start: number, quote: number): void {
    this.i = scanString(this.src, start, quote, this.line, this.lineStart, (s, e, l, col, lines, ls) => {
      this.push('string', s, e, l, col);
      this.line += lines;
      if (lines > 0) this.lineStart = ls;
    });
    this.lineHasCode = true;
  }

  /** A name, unless it is a string prefix (`r`, `f`, `rb`, ...) right before a quote. */
  private nameOrPrefixedString(): void {
    const { src, i } = this;
    let j = i + 1;
    while (j < src.length && IDENT_CHAR.test(src[j]!)) j++;
    const q = src[j];
    if ((q === '"' || q === "'") && STRING_PREFIXES.has(src.slice(i, j).toLowerCase())) {
      this.string(i, j);
      return;
    }
    this.push('name', i, j);
    this.i = j;
    this.lineHasCode = true;
  }

  // Numbers only need to be skipped whole: digits, letters (0x, e, j, L), '_' and '.', plus a
  // sign right after an exponent.
  private number(): void {
    const { src, i } = this;
    let j = i + 1;
    while (j < src.length) {
      const d = src[j]!;
      if (/[0-9A-Za-z_.]/.test(d)) j++;
      else if ((d === '+' || d === '-') && /[eE]/.test(src[j - 1]!) && !/^0[xX]/.test(src.slice(i, j))) j++;
      else break;
    }
    this.push('number', i, j);
    this.i = j;
    this.lineHasCode = true;
  }

  /** An operator or bracket, longest match first; brackets must pair up. */
  private operator(c: string): void {
    const op = OPERATORS.find((o) => this.src.startsWith(o, this.i));
    if (op === undefined) {
      throw new ConfigParseError(this.line, `invalid character U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`);
    }
    if (CLOSERS.includes(op)) {
      const open = this.brackets.pop();
      if (open === undefined || OPENERS.indexOf(open.ch) !== CLOSERS.indexOf(op)) {
        throw new ConfigParseError(this.line, `unmatched '${op}'`);
      }
    }
    // Pushed after a closer is popped and before an opener is pushed: a bracket has the depth outside it.
    this.push('op', this.i, this.i + op.length);
    if (OPENERS.includes(op)) this.brackets.push({ ch: op, line: this.line });
    this.i += op.length;
    this.lineHasCode = true;
  }
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
