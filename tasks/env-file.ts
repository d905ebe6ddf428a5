// The .env file beside the inventory, read line by line exactly as dotenv 17 reads it, so that
// its traps can be found before a password is cut short without a word (SPEC 3). dotenv itself
// only returns the values; this says where each came from and whether dotenv cut it.
//
// What dotenv 17 does (node_modules/dotenv/lib/main.js, `LINE` and `parse`): an unquoted value
// is `[^#\r\n]+`, so it ends at the first `#` wherever it is — `pw #x` and `pw#x` both give `pw`
// (the `#x` is read as a comment) — and its surrounding spaces are trimmed. A value in '', "" or
// `` keeps its `#`; a quote left open runs on over the following lines until the next such
// quote; in "" a `\n` or `\r` becomes a line break.

/** One `KEY=value` line of a .env file as dotenv reads it. */
export interface EnvAssignment {
  key: string;
  /** The value dotenv gives the key for this line. */
  value: string;
  /** 1-based line of the key. */
  line: number;
  /** The value is unquoted and dotenv stopped at a `#`: what follows was dropped as a comment. */
  cutAtHash: boolean;
}

// dotenv 17's LINE, with `d` for the positions of the key and the value. The unit tests check
// that the values read here are dotenv.parse's, so a dotenv upgrade that changes them is seen.
const LINE = /(?:^|^)\s*(?:export\s+)?([\w.-]+)(?:\s*=\s*?|:\s+?)(\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|\s*`(?:\\`|[^`])*`|[^#\r\n]+)?\s*(?:#.*)?(?:$|$)/dgm;
const QUOTED = /^\s*(?:'(?:\\'|[^'])*'|"(?:\\"|[^"])*"|`(?:\\`|[^`])*`)$/;

/** Every assignment in a .env file's text, in file order (for a key given twice, dotenv keeps the last). */
export function readEnvAssignments(source: string): EnvAssignment[] {
  const text = source.replace(/\r\n?/g, '\n');
  const found: EnvAssignment[] = [];
  LINE.lastIndex = 0;
  for (let m = LINE.exec(text); m; m = LINE.exec(text)) {
    const [keyStart, keyEnd] = m.indices![1]!;
    const raw = m[2];
    // The character after an unquoted value is the `#` that ended it, a line break, or the end.
    const next = raw === undefined ? /^[ \t]*[=:][ \t]*(#?)/.exec(text.slice(keyEnd))?.[1] : text[m.indices![2]![1]];
    found.push({
      key: m[1]!,
      value: dotenvValue(raw ?? ''),
      line: text.slice(0, keyStart).split('\n').length,
      cutAtHash: !(raw !== undefined && QUOTED.test(raw)) && next === '#',
    });
  }
  return found;
}

/** dotenv's own treatment of the matched text: trim, drop one pair of quotes, expand \n \r in "". */
function dotenvValue(raw: string): string {
  const v = raw.trim();
  const unquoted = v.replace(/^(['"`])([\s\S]*)\1$/gm, '$2');
  return v[0] === '"' ? unquoted.replace(/\\n/g, '\n').replace(/\\r/g, '\r') : unquoted;
}

/** The assignment dotenv takes for `key` (the last one), if any. */
export function effectiveAssignment(assignments: readonly EnvAssignment[], key: string): EnvAssignment | undefined {
  return assignments.filter((a) => a.key === key).at(-1);
}
