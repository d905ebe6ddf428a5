// The tokens of a Python expression, as far as ast.literal_eval can use them: numbers, string
// and bytes literals (escapes decoded), names, brackets and the few operators a literal may
// hold. Anything else makes the text "not a literal": Python raises SyntaxError or ValueError,
// and Ansible then keeps the raw text as a string.

/** Python would raise ValueError or SyntaxError: Ansible keeps the text as it is. */
export class NotLiteral extends Error {}

export type Token =
  | { t: 'int'; value: bigint }
  | { t: 'float'; value: number }
  | { t: 'imag' }
  | { t: 'str'; value: string; prefix: string; needsNames: boolean }
  | { t: 'bytes'; value: number[]; prefix: string }
  | { t: 'name'; text: string }
  | { t: 'op'; text: string };

const DIGITS = '[0-9](?:_?[0-9])*';
const POINT_FLOAT = `(?:${DIGITS})?\\.${DIGITS}|${DIGITS}\\.`;
const EXPONENT_FLOAT = `(?:${POINT_FLOAT}|${DIGITS})[eE][+-]?${DIGITS}`;
const FLOAT = `${EXPONENT_FLOAT}|${POINT_FLOAT}`;
const INT = `0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|[1-9](?:_?[0-9])*|0+(?:_?0)*`;
const NUMBER = new RegExp(`(?<imag>(?:${FLOAT}|${DIGITS})[jJ])|(?<float>${FLOAT})|(?<int>${INT})`, 'y');
const STRING_START = /([rR][bBfF]?|[bBfF][rR]?|[uU])?(['"])/y;
const NAME = /[\p{L}_][\p{L}\p{N}\p{Mn}\p{Mc}\p{Pc}]*/uy;
const WORD_CHAR = /[\p{L}\p{N}_]/u;
const SPACE = /[ \t\f]+|#.*/sy;
const OPS = ['...', '(', ')', '[', ']', '{', '}', ',', ':', '+', '-'];

export function tokenize(source: string): Token[] {
  if (source.includes('\0')) throw new NotLiteral('null byte');
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    SPACE.lastIndex = i;
    const space = SPACE.exec(source);
    if (space) {
      i += space[0].length;
      continue;
    }
    const [token, next] = readToken(source, i);
    tokens.push(token);
    i = next;
  }
  return tokens;
}

function readToken(source: string, i: number): [Token, number] {
  NUMBER.lastIndex = i;
  const num = NUMBER.exec(source);
  if (num) return readNumber(source, num);
  STRING_START.lastIndex = i;
  const str = STRING_START.exec(source);
  if (str) return readString(source, i + str[0].length - 1, str[1] ?? '');
  NAME.lastIndex = i;
  const name = NAME.exec(source);
  if (name) return [{ t: 'name', text: name[0] }, i + name[0].length];
  const op = OPS.find((o) => source.startsWith(o, i));
  if (op) return [{ t: 'op', text: op }, i + op.length];
  throw new NotLiteral(`unexpected character at ${i}`);
}

function readNumber(source: string, m: RegExpExecArray): [Token, number] {
  const end = m.index + m[0].length;
  // `1x`, `0123`, `1_`: Python either fails or reads a number next to a name, never a literal.
  if (end < source.length && WORD_CHAR.test(source[end]!)) throw new NotLiteral('invalid number');
  const text = m[0].replace(/_/g, '');
  if (m.groups!['imag'] !== undefined) return [{ t: 'imag' }, end];
  if (m.groups!['float'] !== undefined) return [{ t: 'float', value: Number(text) }, end];
  return [{ t: 'int', value: BigInt(text) }, end];
}

/** `quoteAt` is the index of the opening quote; prefix the letters before it. */
function readString(source: string, quoteAt: number, prefix: string): [Token, number] {
  const quote = source[quoteAt]!;
  const triple = source.startsWith(quote.repeat(3), quoteAt);
  const delimiter = triple ? quote.repeat(3) : quote;
  const start = quoteAt + delimiter.length;
  let i = start;
  while (!source.startsWith(delimiter, i)) {
    if (i >= source.length) throw new NotLiteral('unterminated string');
    i += source[i] === '\\' ? 2 : 1;
  }
  if (i > source.length) throw new NotLiteral('unterminated string');
  const body = source.slice(start, i);
  const end = i + delimiter.length;
  const lower = prefix.toLowerCase();
  // An f-string is a JoinedStr, which literal_eval rejects.
  if (lower.includes('f')) throw new NotLiteral('f-string');
  const raw = lower.includes('r');
  if (lower.includes('b')) return [{ t: 'bytes', value: decodeBytes(body, raw), prefix }, end];
  const { text, needsNames } = raw ? { text: body, needsNames: false } : decodeStr(body);
  return [{ t: 'str', value: text, prefix, needsNames }, end];
}

const SIMPLE_ESCAPES: Record<string, number> = {
  '\\': 0x5c, "'": 0x27, '"': 0x22, a: 0x07, b: 0x08, f: 0x0c, n: 0x0a, r: 0x0d, t: 0x09, v: 0x0b,
};

/** One escape at body[i] (a backslash): the code it stands for and its length, or undefined if unknown. */
function readEscape(body: string, i: number, bytes: boolean): { code: number; length: number } | undefined {
  const c = body[i + 1]!;
  if (c in SIMPLE_ESCAPES) return { code: SIMPLE_ESCAPES[c]!, length: 2 };
  const octal = /^[0-7]{1,3}/.exec(body.slice(i + 1, i + 4));
  if (octal) return { code: parseInt(octal[0], 8) & (bytes ? 0xff : 0x1ff), length: 1 + octal[0].length };
  const hexLength = c === 'x' ? 2 : bytes ? 0 : c === 'u' ? 4 : c === 'U' ? 8 : 0;
  if (hexLength === 0) return undefined;
  const hex = body.slice(i + 2, i + 2 + hexLength);
  if (!new RegExp(`^[0-9a-fA-F]{${hexLength}}$`).test(hex)) throw new NotLiteral(`truncated \\${c} escape`);
  const code = parseInt(hex, 16);
  if (code > 0x10ffff) throw new NotLiteral('illegal Unicode character');
  return { code, length: 2 + hexLength };
}

function decodeStr(body: string): { text: string; needsNames: boolean } {
  let text = '';
  let needsNames = false;
  for (let i = 0; i < body.length;) {
    if (body[i] !== '\\') {
      text += body[i++];
      continue;
    }
    if (body[i + 1] === 'N') needsNames = true;
    const escape = readEscape(body, i, false);
    if (escape) {
      text += String.fromCodePoint(escape.code);
      i += escape.length;
    } else {
      text += body.slice(i, i + 2); // unknown escapes keep their backslash
      i += 2;
    }
  }
  return { text, needsNames };
}

function decodeBytes(body: string, raw: boolean): number[] {
  const out: number[] = [];
  for (let i = 0; i < body.length;) {
    const code = body.charCodeAt(i);
    if (code > 0x7f) throw new NotLiteral('bytes can only contain ASCII literal characters');
    const escape = !raw && code === 0x5c ? readEscape(body, i, true) : undefined;
    if (escape) {
      out.push(escape.code);
      i += escape.length;
    } else {
      out.push(code);
      i += 1;
    }
  }
  return out;
}
