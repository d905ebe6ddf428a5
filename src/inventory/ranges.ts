// Ansible's expand_hostname_range, step for step: the first `[` and the first `]` split the name
// into head, range and tail; `beg:end[:step]` is a slice of string.ascii_letters (a–z then A–Z,
// found by substring search, as Python's str.index does) or else a Python range() of ints;
// a start with a leading zero fixes the width and must be as long as the end; the result is
// expanded again while it still holds a `[`.
// Two differences, both refusals: a range that yields no host (`[5:1]`, which Python's range
// quietly makes empty) and one that yields more than MAX_HOSTS names.

export class HostRangeError extends Error {}

const ASCII_LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
export const MAX_HOSTS = 100_000;

export function expandHostRange(pattern: string): string[] {
  const out: string[] = [];
  expandInto(pattern, out);
  return out;
}

function expandInto(line: string, out: string[]): void {
  const parts = line.replace('[', '|').replace(']', '|').split('|');
  if (parts.length !== 3) {
    throw new HostRangeError(line.includes('[') && !line.includes(']')
      ? `"${line}" opens a host range with "[" but never closes it with "]"`
      : `"${line}" is not of the form head[begin:end]tail`);
  }
  const [head, nrange, tail] = parts as [string, string, string];
  const bounds = nrange.split(':');
  if (bounds.length !== 2 && bounds.length !== 3) {
    throw new HostRangeError(`invalid host range [${nrange}]: expected [start:end] or [start:end:step]`);
  }
  const beg = bounds[0] || '0';
  const end = bounds[1]!;
  const step = bounds[2] ?? '1';
  if (!end) throw new HostRangeError(`invalid host range [${nrange}]: the end of the range is missing`);
  let width = 0;
  if (beg[0] === '0' && beg.length > 1) {
    if (beg.length !== end.length) {
      throw new HostRangeError(`invalid host range [${nrange}]: a start with leading zeros must be as long as the end (Ansible pads every name to its width)`);
    }
    width = beg.length;
  }
  const items = letterSequence(beg, end, step, nrange) ?? numberSequence(beg, end, step, nrange);
  if (items.length === 0) {
    throw new HostRangeError(`invalid host range [${nrange}]: it is empty (start is after end, or the step goes the other way), so Ansible would define no host`);
  }
  for (const item of items) {
    const name = head + (width ? zfill(item, width) : item) + tail;
    if (name.includes('[')) expandInto(name, out);
    else out.push(name);
    if (out.length > MAX_HOSTS) throw new HostRangeError(`host range expands to more than ${MAX_HOSTS} hosts`);
  }
}

/** The `try` branch: letters, or undefined where Python's str.index raises ValueError. */
function letterSequence(beg: string, end: string, stepText: string, nrange: string): string[] | undefined {
  const from = ASCII_LETTERS.indexOf(beg);
  const to = ASCII_LETTERS.indexOf(end);
  if (from < 0 || to < 0) return undefined;
  if (from > to) {
    throw new HostRangeError(`invalid host range [${nrange}]: start is after end (letters run a–z then A–Z, as Python's string.ascii_letters)`);
  }
  const step = pyInt(stepText);
  // int(step) raising, or a zero step, is a ValueError: Python falls back to int(beg), which fails too.
  if (step === undefined || step === 0) return undefined;
  if (step < 0) return [];
  const items: string[] = [];
  for (let i = from; i <= to; i += step) items.push(ASCII_LETTERS[i]!);
  return items;
}

function numberSequence(beg: string, end: string, stepText: string, nrange: string): string[] {
  const from = pyInt(beg);
  const to = pyInt(end);
  const step = pyInt(stepText);
  if (from === undefined || to === undefined) {
    throw new HostRangeError(`invalid host range [${nrange}]: bounds must both be numbers or both single letters`);
  }
  if (step === undefined || step === 0) throw new HostRangeError(`invalid host range [${nrange}]: step must be a positive integer`);
  const items: string[] = [];
  for (let n = from; step > 0 ? n <= to : n >= to + 2; n += step) {
    items.push(String(n));
    if (items.length > MAX_HOSTS) throw new HostRangeError(`host range expands to more than ${MAX_HOSTS} hosts`);
  }
  return items;
}

/** Python's int() on the text of a bound: optional blanks and sign, digits with single underscores. */
function pyInt(text: string): number | undefined {
  const m = /^[ \t\n\v\f\r]*([+-]?[0-9](?:_?[0-9])*)[ \t\n\v\f\r]*$/.exec(text);
  if (!m) return undefined;
  const n = Number(m[1]!.replace(/_/g, ''));
  return Number.isSafeInteger(n) ? n : undefined;
}

/** str.zfill: pad with zeros after any sign. */
function zfill(s: string, width: number): string {
  const sign = s[0] === '-' || s[0] === '+' ? s[0] : '';
  return sign + s.slice(sign.length).padStart(width - sign.length, '0');
}
