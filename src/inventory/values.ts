// What a variable's text becomes. Ansible's INI plugin passes every value through Python's
// ast.literal_eval and keeps the raw text when that raises ValueError or SyntaxError: `5432` is a
// number, `"x"` a string without its quotes, `True` a boolean, `[1, 2]` a list, `yes` the string
// "yes". A few results have no faithful form here (complex numbers, sets, `...`, integers past
// 2^53, bytes that are not UTF-8, dict keys that are not strings, `\N{…}` escapes): those are
// refused with the reason, rather than silently read differently from Ansible.

import { LiteralTypeError, literalEval, NotLiteral, type PyValue } from './pyliteral.ts';

export type VarValue = string | number | boolean | null | VarValue[] | { [key: string]: VarValue };
export type Vars = Record<string, VarValue>;

/** A value Ansible reads in a way we cannot reproduce exactly; the message says why. */
export class UnsupportedValue extends Error {}

/** Variables live in objects without a prototype, so a variable named `__proto__` is just a name. */
export function emptyVars(): Vars {
  return Object.create(null) as Vars;
}

export function parseValue(raw: string): VarValue {
  let value: PyValue;
  try {
    value = literalEval(raw);
  } catch (e) {
    if (e instanceof NotLiteral) return raw;
    if (e instanceof LiteralTypeError) throw new UnsupportedValue(`Python cannot read ${raw}: ${e.message}`);
    throw e;
  }
  // Ansible's to_text turns a top-level bytes value into text; nested bytes stay bytes.
  if (value.type === 'bytes') return utf8(value.value, raw);
  return toVarValue(value, raw);
}

function toVarValue(v: PyValue, raw: string): VarValue {
  const refuse = (what: string): never => {
    throw new UnsupportedValue(`Python reads ${raw} as ${what}, which pem-settings cannot keep as Ansible does; quote the value to keep it as text`);
  };
  switch (v.type) {
    case 'str':
      if (v.needsNames) refuse('a string with a \\N{name} escape');
      return v.value;
    case 'int':
      if (v.value > BigInt(Number.MAX_SAFE_INTEGER) || v.value < -BigInt(Number.MAX_SAFE_INTEGER)) refuse('an integer beyond 2^53');
      return Number(v.value);
    case 'float':
      if (!Number.isFinite(v.value)) refuse('an infinite float');
      return v.value;
    case 'bool': return v.value;
    case 'none': return null;
    case 'tuple': case 'list': return v.items.map((item) => toVarValue(item, raw));
    case 'dict': return dictOf(v.entries, raw, refuse);
    case 'complex': return refuse('a complex number');
    case 'set': return refuse('a set');
    case 'ellipsis': return refuse('Ellipsis (...)');
    case 'bytes': return refuse('bytes inside a container');
  }
}

function dictOf(entries: [PyValue, PyValue][], raw: string, refuse: (what: string) => never): VarValue {
  const out = emptyVars();
  for (const [key, value] of entries) {
    if (key.type !== 'str' || key.needsNames) refuse(`a dict with a ${key.type} key`);
    out[(key as { value: string }).value] = toVarValue(value, raw);
  }
  return out;
}

function utf8(bytes: number[], raw: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(Uint8Array.from(bytes));
  } catch {
    throw new UnsupportedValue(`Python reads ${raw} as bytes that are not UTF-8; Ansible would turn them into lone surrogates`);
  }
}

/** Deep equality of two values, for "is this host defined again with the same variables". */
export function sameValue(a: VarValue | undefined, b: VarValue | undefined): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
  }
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && sameValue(a[k], b[k]));
}

/** Python's int(value), as Group.set_priority applies it to ansible_group_priority; undefined where it raises. */
export function pyInt(value: VarValue): number | undefined {
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'number') return Number.isFinite(value) ? Math.trunc(value) : undefined;
  if (typeof value !== 'string') return undefined;
  const m = /^[ \t\n\v\f\r]*([+-]?)([0-9](?:_?[0-9])*)[ \t\n\v\f\r]*$/.exec(value);
  return m ? Number(m[1]! + m[2]!.replace(/_/g, '')) : undefined;
}

/** Ansible's boolean filter for connection flags like ansible_become (true/yes/on/1 …). */
export function asBoolean(value: VarValue | undefined): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return value === 1 ? true : value === 0 ? false : undefined;
  if (typeof value !== 'string') return undefined;
  const s = value.trim().toLowerCase();
  if (['true', 'yes', 'on', '1', 'y', 't'].includes(s)) return true;
  if (['false', 'no', 'off', '0', 'n', 'f', ''].includes(s)) return false;
  return undefined;
}
