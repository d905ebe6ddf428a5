// Setting one variable in config_local.py (SPEC 4, stage 4): exactly one active top-level
// assignment afterwards, at the place of the first existing one, every other byte unchanged.
// Pure: text in, text out. The apply step does the I/O, backups and py_compile.

import { bomLength, ConfigParseError, tokenize, type Token } from './tokenize.ts';
import { decodePythonString } from './pystring.ts';

export { ConfigParseError } from './tokenize.ts';
export { pythonStringLiteral, decodePythonString } from './pystring.ts';

export interface Assignment {
  /** `=` / `NAME: T = ...` replace the value; `+=` and friends modify it (never rewritten here). */
  kind: 'assign' | 'augmented';
  /** True for a statement at column 0 outside any block: the only ones we rewrite. */
  topLevel: boolean;
  /** 1-based first and last line of the statement. */
  line: number;
  endLine: number;
  /** The statement's own bytes: first token to last token, no trailing comment. */
  start: number;
  end: number;
  /** True when the statement is alone on its lines (apart from comments and stray `;`). */
  ownsLines: boolean;
  /** ownsLines: the whole physical lines, final line break included. Otherwise the bytes to
   *  cut to delete the statement and its `;` separator. */
  cutStart: number;
  cutEnd: number;
  /** The value when it is a plain str literal (or adjacent ones, optionally parenthesised). */
  value: string | undefined;
}

export interface SetResult {
  newText: string;
  changed: boolean;
  /** 1-based line of the active assignment in newText. */
  line: number;
  /** Lines (in the old text) of later top-level duplicates that were disabled. */
  disabled: number[];
  /** Lines of assignments inside blocks or augmented ones: left alone, worth a warning. */
  untouched: number[];
}

// A statement starting with one of these opens a block; anything after its `:` on the same line
// belongs to that block, not to the module's top level.
const COMPOUND = new Set(['if', 'elif', 'else', 'while', 'for', 'try', 'except', 'finally', 'with', 'def', 'class', 'async']);
const AUGMENTED = new Set(['+=', '-=', '*=', '/=', '//=', '%=', '**=', '>>=', '<<=', '&=', '|=', '^=', '@=']);
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Every assignment to `name` the tokenizer can see, in file order. */
export function findAssignments(text: string, name: string): Assignment[] {
  const found: Assignment[] = [];
  for (const logical of logicalLines(tokenize(text))) {
    const code = logical.filter((t) => t.kind !== 'comment' && t.kind !== 'nl' && t.kind !== 'newline');
    const first = code[0];
    if (first === undefined) continue;
    if ((first.kind === 'name' && COMPOUND.has(first.text)) || first.text === '@') continue;
    const topLevel = first.col === 0;
    const statements = splitStatements(code);
    const lastTok = logical[logical.length - 1]!;
    const lineStart = startOfLine(text, first.start);
    const lineEnd = lastTok.kind === 'newline' ? lastTok.end : text.length;
    const nonEmpty = statements.filter((s) => s.tokens.length > 0).length;
    for (const [idx, stmt] of statements.entries()) {
      const a = assignmentOf(stmt.tokens, name);
      if (a === undefined) continue;
      const firstTok = stmt.tokens[0]!;
      const last = stmt.tokens[stmt.tokens.length - 1]!;
      const ownsLines = nonEmpty === 1;
      let cutStart = lineStart;
      let cutEnd = lineEnd;
      if (!ownsLines) {
        const next = statements[idx + 1];
        if (stmt.separator !== undefined) {
          cutStart = firstTok.start;
          cutEnd = next?.tokens[0]?.start ?? stmt.separator.end;
        } else {
          cutStart = statements[idx - 1]?.separator?.start ?? firstTok.start;
          cutEnd = last.end;
        }
      }
      found.push({
        kind: a.kind, topLevel: topLevel && a.kind === 'assign', line: firstTok.line, endLine: endLineOf(last),
        start: firstTok.start, end: last.end, ownsLines, cutStart, cutEnd, value: a.value,
      });
    }
  }
  return found;
}

/**
 * Makes `NAME = pythonExpr` the one active top-level assignment: the first existing one is
 * replaced in place (left as is when its string value already equals the expression's), later
 * top-level duplicates are commented out line by line (kept visible, and "# NAME = ..." lines
 * are inert on the next run), and with none the assignment is appended as the last line.
 */
export function setConfigValue(text: string, name: string, pythonExpr: string): SetResult {
  if (!IDENTIFIER.test(name)) throw new Error(`not a Python identifier: ${name}`);
  const desired = expressionValue(name, pythonExpr);
  const statement = `${name} = ${pythonExpr}`;
  const all = findAssignments(text, name);
  const active = all.filter((a) => a.topLevel);
  const untouched = all.filter((a) => !a.topLevel).map((a) => a.line);
  const eol = lineEndingOf(text);

  const first = active[0];
  if (first === undefined) {
    const body = text.slice(bomLength(text));
    const needsBreak = body.length > 0 && !/[\r\n]$/.test(body);
    const newText = `${text}${needsBreak ? eol : ''}${statement}${eol}`;
    return { newText, changed: true, line: countLines(newText) - 1, disabled: [], untouched };
  }

  const edits: { start: number; end: number; text: string }[] = [];
  if (desired === undefined || first.value !== desired) {
    edits.push({ start: first.start, end: first.end, text: statement });
  }
  for (const dup of active.slice(1)) {
    if (dup.ownsLines) {
      edits.push({ start: dup.cutStart, end: dup.cutEnd, text: commentOut(text.slice(dup.cutStart, dup.cutEnd)) });
    } else {
      edits.push({ start: dup.cutStart, end: dup.cutEnd, text: '' });
    }
  }
  let newText = text;
  for (const e of edits.sort((x, y) => y.start - x.start)) {
    newText = newText.slice(0, e.start) + e.text + newText.slice(e.end);
  }
  return { newText, changed: newText !== text, line: first.line, disabled: active.slice(1).map((a) => a.line), untouched };
}

/**
 * The string Python would bind to `name` when the file runs, for drift checks: the last
 * top-level assignment's value if it is a plain string literal, else undefined (no assignment,
 * a computed value, or a later assignment inside a block or an augmented one we cannot follow).
 */
export function readConfigValue(text: string, name: string): string | undefined {
  const last = findAssignments(text, name).at(-1);
  return last?.topLevel ? last.value : undefined;
}

/** The file's line ending: that of its first line break; `\n` when it has none. */
export function lineEndingOf(text: string): string {
  const m = /\r\n|\n|\r/.exec(text);
  return m ? m[0] : '\n';
}

function countLines(text: string): number {
  return text.split(/\r\n|\n|\r/).length;
}

function startOfLine(text: string, offset: number): number {
  const floor = bomLength(text);
  let i = offset;
  while (i > floor && text[i - 1] !== '\n' && text[i - 1] !== '\r') i--;
  return i;
}

/** `# ` before every non-empty physical line: inert, still readable, line endings untouched. */
function commentOut(lines: string): string {
  return lines
    .split(/(?<=\r\n|\n|\r(?!\n))/)
    .map((l) => (/^(\r\n|\n|\r)?$/.test(l) ? l : `# ${l}`))
    .join('');
}

function endLineOf(tok: Token): number {
  return tok.line + (tok.text.match(/\r\n|\n|\r/g)?.length ?? 0);
}

function logicalLines(tokens: Token[]): Token[][] {
  const lines: Token[][] = [];
  let current: Token[] = [];
  for (const t of tokens) {
    current.push(t);
    if (t.kind === 'newline') {
      lines.push(current);
      current = [];
    }
  }
  if (current.length > 0) lines.push(current);
  return lines;
}

function splitStatements(code: Token[]): { tokens: Token[]; separator?: Token }[] {
  const out: { tokens: Token[]; separator?: Token }[] = [{ tokens: [] }];
  for (const t of code) {
    if (t.kind === 'op' && t.text === ';' && t.depth === 0) {
      out[out.length - 1]!.separator = t;
      out.push({ tokens: [] });
    } else {
      out[out.length - 1]!.tokens.push(t);
    }
  }
  return out;
}

function assignmentOf(tokens: Token[], name: string): { kind: Assignment['kind']; value: string | undefined } | undefined {
  const [target, op] = tokens;
  if (target?.kind !== 'name' || target.text !== name || op?.kind !== 'op') return undefined;
  if (op.text === '=') return { kind: 'assign', value: stringValue(tokens.slice(2)) };
  if (AUGMENTED.has(op.text)) return { kind: 'augmented', value: undefined };
  if (op.text === ':') {
    // Annotated: NAME: T = value (without `= value` it binds nothing).
    const eq = tokens.findIndex((t, i) => i > 1 && t.kind === 'op' && t.text === '=' && t.depth === 0);
    return eq < 0 ? undefined : { kind: 'assign', value: stringValue(tokens.slice(eq + 1)) };
  }
  return undefined;
}

/** Value of an expression made only of adjacent str literals, optionally in one pair of parens. */
function stringValue(tokens: Token[]): string | undefined {
  let inner = tokens;
  const open = tokens[0];
  const close = tokens[tokens.length - 1];
  const wrapped = open?.text === '(' && close?.text === ')' && tokens.slice(1, -1).every((t) => t.depth > open.depth);
  if (wrapped) inner = tokens.slice(1, -1);
  if (inner.length === 0 || inner.some((t) => t.kind !== 'string')) return undefined;
  let value = '';
  for (const t of inner) {
    const part = decodePythonString(t.text);
    if (part === undefined) return undefined;
    value += part;
  }
  return value;
}

/** The value of the expression to write, checking it is one line of Python with nothing after. */
function expressionValue(name: string, pythonExpr: string): string | undefined {
  let tokens: Token[];
  try {
    tokens = tokenize(`${name} = ${pythonExpr}\n`);
  } catch (e) {
    if (e instanceof ConfigParseError) throw new Error(`not a one-line Python expression: ${e.reason}`);
    throw e;
  }
  const bad = tokens.some((t) => t.kind === 'comment' || t.kind === 'nl' || (t.kind === 'op' && t.text === ';' && t.depth === 0));
  if (bad || tokens.filter((t) => t.kind === 'newline').length !== 1 || tokens.length < 4) {
    throw new Error('not a one-line Python expression');
  }
  return stringValue(tokens.slice(2, -1));
}
