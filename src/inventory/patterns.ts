// `--limit` with Ansible's host pattern syntax: names, groups, globs, `~regex`, `,`/`:` lists,
// `!exclude`, `&intersect`, `@retryfile`, `all`, and subscripts (`web[0]`, `web[1:3]`).
// Terms are applied as Ansible applies them: plain ones unioned, then intersections, then
// exclusions. Unlike Ansible (which warns), a term that matches nothing is an error that names
// the closest hosts and groups: a typo in a limit must never silently select nothing.

import { readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import picomatch from 'picomatch';
import { UsageError } from '../errors.ts';
import type { Inventory } from './parse.ts';

export interface PatternOptions {
  /** Directory that `@file` paths are relative to (the current directory by default). */
  cwd?: string;
  readFile?: (path: string) => string;
}

/** Host names selected by the pattern, in inventory order. */
export function selectHosts(inv: Inventory, pattern: string, options: PatternOptions = {}): string[] {
  const terms = expandRetryFiles(splitPattern(pattern), options);
  if (terms.length === 0) throw new UsageError(`--limit "${pattern}" has no host pattern in it`);
  const plain = terms.filter((t) => !t.startsWith('!') && !t.startsWith('&'));
  const intersect = terms.filter((t) => t.startsWith('&')).map((t) => t.slice(1));
  const exclude = terms.filter((t) => t.startsWith('!')).map((t) => t.slice(1));

  const selected = new Set<string>(plain.length === 0 ? inv.hosts.keys() : []);
  for (const term of plain) for (const h of matchTerm(inv, term)) selected.add(h);
  for (const term of intersect) {
    const keep = new Set(matchTerm(inv, term));
    for (const h of [...selected]) if (!keep.has(h)) selected.delete(h);
  }
  for (const term of exclude) for (const h of matchTerm(inv, term)) selected.delete(h);
  return [...inv.hosts.keys()].filter((h) => selected.has(h));
}

/** Ansible splits on `,` when there is one, else on `:` outside brackets and IPv6 addresses. */
export function splitPattern(pattern: string): string[] {
  const trimmed = pattern.trim();
  if (trimmed.includes(',')) return trimmed.split(',').map((t) => t.trim()).filter(Boolean);
  if (/^[!&]?[0-9a-fA-F]*:[0-9a-fA-F:]*:[0-9a-fA-F:]*$/.test(trimmed)) return [trimmed]; // a bare IPv6 address
  const terms: string[] = [];
  let term = '';
  let depth = 0;
  for (let i = 0; i < trimmed.length; i++) {
    const c = trimmed[i]!;
    if (c === '[') depth++;
    if (c === ']') depth = Math.max(0, depth - 1);
    // A `~regex` term may contain ':' (it is then the last term).
    if (c === ':' && depth === 0 && !term.startsWith('~')) {
      terms.push(term);
      term = '';
      continue;
    }
    term += c;
  }
  terms.push(term);
  return terms.map((t) => t.trim()).filter(Boolean);
}

function expandRetryFiles(terms: string[], options: PatternOptions): string[] {
  const read = options.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  return terms.flatMap((term) => {
    const m = /^([!&]?)@(.+)$/.exec(term);
    if (!m) return [term];
    const path = resolvePath(options.cwd ?? process.cwd(), m[2]!);
    let text: string;
    try {
      text = read(path);
    } catch (e) {
      throw new UsageError(`--limit @${m[2]}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    const names = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    if (names.length === 0) throw new UsageError(`--limit @${m[2]}: ${path} lists no hosts`);
    return names.map((n) => m[1] + n);
  });
}

function matchTerm(inv: Inventory, rawTerm: string): string[] {
  const { name, slice } = splitSubscript(rawTerm);
  let hosts: string[];
  if (name === 'all' || name === '*') hosts = [...inv.hosts.keys()];
  else if (inv.groups.has(name)) hosts = hostsOfGroup(inv, name);
  else if (inv.hosts.has(name)) hosts = [name];
  else {
    const test = name.startsWith('~') ? regexMatcher(name.slice(1), rawTerm) : picomatch(name, { dot: true });
    const fromGroups = [...inv.groups.keys()].filter((g) => test(g)).flatMap((g) => hostsOfGroup(inv, g));
    const set = new Set([...fromGroups, ...[...inv.hosts.keys()].filter((h) => test(h))]);
    hosts = [...inv.hosts.keys()].filter((h) => set.has(h));
  }
  if (slice) hosts = slice(hosts);
  if (hosts.length === 0) {
    const close = closestNames(inv, name);
    throw new UsageError(`--limit: "${rawTerm}" matches no host` +
      (close.length ? `; did you mean ${close.map((c) => `"${c}"`).join(', ')}?` : ''));
  }
  return hosts;
}

function regexMatcher(source: string, term: string): (s: string) => boolean {
  let re: RegExp;
  try {
    re = new RegExp(`^(?:${source})`);
  } catch (e) {
    throw new UsageError(`--limit: "${term}" is not a valid regular expression: ${(e as Error).message}`);
  }
  return (s) => re.test(s);
}

/** `web[0]`, `web[-1]`, `web[1:3]` (inclusive, as Ansible), `web[:2]`, `web[2:]`. */
function splitSubscript(term: string): { name: string; slice?: (hosts: string[]) => string[] } {
  const m = /^(.+?)\[(-?\d*)(?::(-?\d*))?\]$/.exec(term);
  if (!m || term.startsWith('~') || (m[2] === '' && m[3] === undefined)) return { name: term };
  const at = (n: number, len: number) => (n < 0 ? len + n : n);
  if (m[3] === undefined) {
    const i = Number(m[2]);
    return { name: m[1]!, slice: (hosts) => { const h = hosts[at(i, hosts.length)]; return h ? [h] : []; } };
  }
  const start = m[2] === '' ? 0 : Number(m[2]);
  const end = m[3] === '' ? undefined : Number(m[3]);
  return {
    name: m[1]!,
    slice: (hosts) => hosts.slice(at(start, hosts.length), end === undefined ? undefined : at(end, hosts.length) + 1),
  };
}

export function hostsOfGroup(inv: Inventory, group: string, seen = new Set<string>()): string[] {
  if (seen.has(group)) return [];
  seen.add(group);
  if (group === 'all') return [...inv.hosts.keys()];
  const g = inv.groups.get(group);
  if (!g) return [];
  const set = new Set([...g.hosts, ...g.children.flatMap((c) => hostsOfGroup(inv, c, seen))]);
  return [...inv.hosts.keys()].filter((h) => set.has(h));
}

function closestNames(inv: Inventory, term: string): string[] {
  const plain = term.replace(/^[~]/, '').replace(/[*?[\]]/g, '');
  const names = [...inv.hosts.keys(), ...inv.groups.keys()];
  return names
    .map((n) => ({ n, d: editDistance(plain.toLowerCase(), n.toLowerCase()) }))
    .filter(({ n, d }) => d <= Math.max(2, Math.floor(n.length / 3)))
    .sort((a, b) => a.d - b.d)
    .slice(0, 3)
    .map(({ n }) => n);
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    }
    prev = row;
  }
  return prev[b.length]!;
}
