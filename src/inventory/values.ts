// Ansible's INI plugin passes every value through Python's ast.literal_eval and keeps the raw
// string when that fails. We mirror the subset that matters for inventories: numbers, quoted
// strings, True/False/None. Anything else (lists, dicts, expressions) stays a string, which is
// also what Ansible does for the values our variables take.

export type VarValue = string | number | boolean | null;

const INT = /^[-+]?(?:0|[1-9](?:_?\d)*)$/;
const HEX_OCT_BIN = /^[-+]?0(?:[xX](?:_?[0-9a-fA-F])+|[oO](?:_?[0-7])+|[bB](?:_?[01])+)$/;
const FLOAT = /^[-+]?(?:(?:\d(?:_?\d)*)?\.\d(?:_?\d)*|\d(?:_?\d)*\.?)(?:[eE][-+]?\d(?:_?\d)*)?$/;

export function parseValue(raw: string): VarValue {
  const v = raw.trim();
  if (v === 'True') return true;
  if (v === 'False') return false;
  if (v === 'None') return null;
  if (INT.test(v)) return Number(v.replace(/_/g, ''));
  if (HEX_OCT_BIN.test(v)) {
    const neg = v.startsWith('-');
    const body = v.replace(/^[-+]/, '').replace(/_/g, '');
    const n = Number(body);
    return neg ? -n : n;
  }
  if (/\d/.test(v) && /[.eE]/.test(v) && FLOAT.test(v)) return Number(v.replace(/_/g, ''));
  const str = pythonStringLiteral(v);
  return str ?? raw.trim();
}

/** The value of a single (or adjacent) Python string literal, or undefined if v is not one. */
function pythonStringLiteral(v: string): string | undefined {
  let i = 0;
  let out = '';
  let sawOne = false;
  while (i < v.length) {
    while (i < v.length && /\s/.test(v[i]!)) i++;
    if (i >= v.length) break;
    const m = /^([rRuU]?)('''|"""|'|")/.exec(v.slice(i));
    if (!m) return undefined;
    const raw = m[1]!.toLowerCase() === 'r';
    const quote = m[2]!;
    i += m[0].length;
    let closed = false;
    while (i < v.length) {
      if (v.startsWith(quote, i)) {
        i += quote.length;
        closed = true;
        break;
      }
      const c = v[i]!;
      if (c === '\n' && quote.length === 1) return undefined;
      if (c === '\\' && i + 1 < v.length) {
        const next = v[i + 1]!;
        if (raw) {
          out += c + next;
          i += 2;
          continue;
        }
        const esc = ESCAPES[next];
        if (esc !== undefined) {
          out += esc;
          i += 2;
          continue;
        }
        out += c;
        i += 1;
        continue;
      }
      out += c;
      i += 1;
    }
    if (!closed) return undefined;
    sawOne = true;
  }
  return sawOne ? out : undefined;
}

const ESCAPES: Record<string, string> = {
  '\\': '\\', "'": "'", '"': '"', n: '\n', t: '\t', r: '\r', a: '\x07', b: '\b', f: '\f', v: '\v', '0': '\0', '\n': '',
};

/** Ansible's boolean filter for connection flags like ansible_become (true/yes/on/1 …). */
export function asBoolean(value: VarValue | undefined): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return value === 1 ? true : value === 0 ? false : undefined;
  const s = value.trim().toLowerCase();
  if (['true', 'yes', 'on', '1', 'y', 't'].includes(s)) return true;
  if (['false', 'no', 'off', '0', 'n', 'f', ''].includes(s)) return false;
  return undefined;
}
