// pg_hba.conf lexing, ported from Postgres' own tokenizer (src/backend/libpq/hba.c:
// tokenize_auth_file, next_field_expand, next_token) so that we split lines, fields and
// quoted names exactly where the server does. Byte offsets are kept so the planner can
// insert a line without touching any other byte.

/** One token of a field. `quoted` is Postgres' "initial quote": only then do keywords
 * (`all`, `samerole`, `+group`, ...) lose their meaning. */
export interface HbaToken {
  value: string;
  quoted: boolean;
  /** An unquoted `@file` reference: its contents live in another file, unknowable here. */
  file: boolean;
}

/** A record as Postgres sees it: one physical line, or several joined by a trailing `\`. */
export interface LogicalLine {
  /** 1-based number of the first physical line. */
  line: number;
  /** Offset in the text of the first physical line (after a BOM on line 1). */
  offset: number;
  /** Exact text of the physical lines, inner line breaks included, final EOL excluded. */
  raw: string;
  /** Fields, each a comma list of tokens; empty for blank and comment lines. */
  fields: HbaToken[][];
  /** A quote was opened and never closed (Postgres silently takes the rest of the line). */
  unterminatedQuote: boolean;
  /** The last physical line ended in `\` at end of file: a line appended after it would be
   * glued onto this record. */
  danglingContinuation: boolean;
}

const isBlank = (c: string): boolean => c === ' ' || c === '\t' || c === '\r';

/** Splits a file into logical lines. `continuation` is Postgres 14+'s trailing-backslash
 * joining; before 14 a backslash is an ordinary character. */
export function logicalLines(text: string, continuation: boolean): LogicalLine[] {
  const out: LogicalLine[] = [];
  let pos = text.startsWith('\uFEFF') ? 1 : 0;
  let lineNo = 1;
  while (pos < text.length) {
    const start = pos;
    const firstLine = lineNo;
    let joined = '';
    let lastBackslashLen = 0;
    let rawEnd = pos;
    let dangling = false;
    for (;;) {
      const nl = text.indexOf('\n', pos);
      const end = nl === -1 ? text.length : nl;
      let contentEnd = end;
      // Postgres strips every trailing CR/LF (pg_strip_crlf) before looking for a backslash.
      while (contentEnd > pos && text[contentEnd - 1] === '\r') contentEnd--;
      joined += text.slice(pos, contentEnd);
      rawEnd = contentEnd;
      pos = nl === -1 ? text.length : nl + 1;
      lineNo++;
      // The length check mirrors hba.c: an empty next line ends the record even when the
      // text before it happens to end in a backslash.
      if (continuation && joined.length > lastBackslashLen && joined.endsWith('\\')) {
        joined = joined.slice(0, -1);
        lastBackslashLen = joined.length;
        if (pos >= text.length) {
          dangling = true;
          break;
        }
        continue;
      }
      break;
    }
    const { fields, unterminatedQuote } = tokenizeLine(joined);
    out.push({
      line: firstLine,
      offset: start,
      raw: text.slice(start, rawEnd),
      fields,
      unterminatedQuote,
      danglingContinuation: dangling,
    });
  }
  return out;
}

/** Splits one logical line into fields of comma-separated tokens, as next_field_expand does:
 * `a, b` is one field of two tokens, `a ,b` is two fields. */
export function tokenizeLine(s: string): { fields: HbaToken[][]; unterminatedQuote: boolean } {
  const fields: HbaToken[][] = [];
  let unterminatedQuote = false;
  let i = 0;

  const nextToken = (): { token: HbaToken; comma: boolean } | undefined => {
    while (i < s.length && (isBlank(s[i]!) || s[i] === ',')) i++;
    let buf = '';
    let inQuote = false;
    let wasQuote = false;
    let sawQuote = false;
    let initialQuote = false;
    let comma = false;
    while (i < s.length && (!isBlank(s[i]!) || inQuote)) {
      const c = s[i]!;
      if (c === '#' && !inQuote) {
        i = s.length; // a comment runs to the end of the logical line
        break;
      }
      if (c === ',' && !inQuote) {
        comma = true;
        break;
      }
      if (c !== '"' || wasQuote) buf += c;
      // A literal double quote is written as two double quotes.
      wasQuote = inQuote && c === '"' ? !wasQuote : false;
      if (c === '"') {
        inQuote = !inQuote;
        sawQuote = true;
        if (buf.length === 0) initialQuote = true;
      }
      i++;
    }
    if (inQuote) unterminatedQuote = true;
    if (!sawQuote && buf.length === 0) return undefined;
    const file = !initialQuote && buf.length > 1 && buf.startsWith('@');
    return { token: { value: file ? buf.slice(1) : buf, quoted: initialQuote, file }, comma };
  };

  while (i < s.length) {
    const field: HbaToken[] = [];
    for (;;) {
      const t = nextToken();
      if (!t) break;
      field.push(t.token);
      if (!t.comma) break;
    }
    if (field.length > 0) fields.push(field);
  }
  return { fields, unterminatedQuote };
}
