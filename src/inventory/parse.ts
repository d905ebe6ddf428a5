// Ansible's INI inventory, read the way Ansible's `ini` inventory plugin reads it: sections
// `[group]`, `[group:vars]`, `[group:children]`, host lines with ranges and inline vars,
// `#`/`;` comment lines, implicit `all` and `ungrouped`. Every problem carries its line number,
// and all of them are reported together.

import { InventoryError, ProblemsError } from '../errors.ts';
import { expandHostRange, HostRangeError, splitHostPort } from './ranges.ts';
import { shlexSplit, ShlexError } from './shlex.ts';
import { parseValue, type VarValue } from './values.ts';

export type Vars = Record<string, VarValue>;

export interface InventoryHost {
  name: string;
  /** Line of the first definition. */
  line: number;
  vars: Vars;
  /** Line where each host var was set, for error messages. */
  varLines: Record<string, number>;
}

export interface InventoryGroup {
  name: string;
  line?: number;
  hosts: string[];
  children: string[];
  vars: Vars;
  varLines: Record<string, number>;
}

export interface Inventory {
  file: string;
  /** In inventory order: the order hosts first appear in the file. */
  hosts: Map<string, InventoryHost>;
  groups: Map<string, InventoryGroup>;
}

const SECTION = /^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:[#;].*)?$/;
const GROUP_NAME = /^([^:\]\s]+)\s*(?:[#;].*)?$/;

export function parseInventory(text: string, file: string): Inventory {
  const problems: InventoryError[] = [];
  const fail = (line: number | undefined, reason: string) => problems.push(new InventoryError(file, line, reason));
  const hosts = new Map<string, InventoryHost>();
  const groups = new Map<string, InventoryGroup>();
  const group = (name: string, line?: number): InventoryGroup => {
    let g = groups.get(name);
    if (!g) {
      g = { name, line, hosts: [], children: [], vars: {}, varLines: {} };
      groups.set(name, g);
    } else if (g.line === undefined) g.line = line;
    return g;
  };
  group('all');
  group('ungrouped');
  // Groups named in [x:children] or [x:vars] must be declared somewhere (Ansible's rule).
  const declared = new Set<string>(['all', 'ungrouped']);
  const referenced: { name: string; line: number; what: string }[] = [];

  let current = 'ungrouped';
  let state: 'hosts' | 'vars' | 'children' = 'hosts';
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((rawLine, index) => {
    const lineNo = index + 1;
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;

    const section = SECTION.exec(line);
    if (section) {
      current = section[1]!;
      const kind = section[2] ?? 'hosts';
      if (kind !== 'hosts' && kind !== 'vars' && kind !== 'children') {
        fail(lineNo, `section [${current}:${kind}] has unknown type "${kind}" (expected hosts, vars or children)`);
        state = 'hosts';
        return;
      }
      state = kind;
      group(current, lineNo);
      if (kind === 'vars') referenced.push({ name: current, line: lineNo, what: `section [${current}:vars]` });
      else declared.add(current);
      return;
    }
    if (line.startsWith('[') && line.endsWith(']')) {
      fail(lineNo, `invalid section header "${line}": no spaces allowed, and the form is [group], [group:vars] or [group:children]`);
      return;
    }

    if (state === 'vars') {
      const eq = line.indexOf('=');
      if (eq <= 0) return void fail(lineNo, `expected key=value in [${current}:vars], got "${line}"`);
      const key = line.slice(0, eq).trim();
      const g = group(current);
      g.vars[key] = parseValue(line.slice(eq + 1));
      g.varLines[key] = lineNo;
      return;
    }
    if (state === 'children') {
      const m = GROUP_NAME.exec(line);
      if (!m) return void fail(lineNo, `expected a group name in [${current}:children], got "${line}"`);
      const child = m[1]!;
      const parent = group(current);
      if (!parent.children.includes(child)) parent.children.push(child);
      group(child);
      referenced.push({ name: child, line: lineNo, what: `[${current}:children]` });
      return;
    }
    parseHostLine(line, lineNo);
  });

  function parseHostLine(line: string, lineNo: number): void {
    let tokens: string[];
    try {
      tokens = shlexSplit(line);
    } catch (e) {
      if (e instanceof ShlexError) return void fail(lineNo, `cannot parse host line: ${e.message}`);
      throw e;
    }
    if (tokens.length === 0) return;
    let names: string[];
    let port: number | undefined;
    try {
      const split = splitHostPort(tokens[0]!);
      port = split.port;
      names = expandHostRange(split.pattern);
    } catch (e) {
      if (e instanceof HostRangeError) return void fail(lineNo, e.message);
      throw e;
    }
    const vars: Vars = {};
    for (const token of tokens.slice(1)) {
      const eq = token.indexOf('=');
      if (eq <= 0) return void fail(lineNo, `expected key=value host variable, got "${token}"`);
      vars[token.slice(0, eq)] = parseValue(token.slice(eq + 1));
    }
    if (port !== undefined) vars['ansible_port'] = port;
    const g = group(current);
    for (const name of names) {
      let host = hosts.get(name);
      if (!host) {
        host = { name, line: lineNo, vars: {}, varLines: {} };
        hosts.set(name, host);
      }
      for (const [key, value] of Object.entries(vars)) {
        const before = host.varLines[key];
        if (before !== undefined && host.vars[key] !== value) {
          fail(lineNo, `host ${name} is defined again with ${key}=${String(value)}, ` +
            `conflicting with ${key}=${String(host.vars[key])} on line ${before}`);
          continue;
        }
        host.vars[key] = value;
        host.varLines[key] = lineNo;
      }
      if (!g.hosts.includes(name)) g.hosts.push(name);
    }
  }

  for (const ref of referenced) {
    if (!declared.has(ref.name)) {
      fail(ref.line, ref.what.startsWith('section')
        ? `${ref.what} is for group "${ref.name}", which is not defined anywhere`
        : `${ref.what} includes group "${ref.name}", which is not defined anywhere`);
    }
  }
  const cycle = findCycle(groups);
  if (cycle) {
    const at = groups.get(cycle[0]!)?.line;
    fail(at, `group cycle: ${cycle.join(' -> ')}`);
  }
  if (problems.length === 1) throw problems[0]!;
  if (problems.length > 1) throw new ProblemsError(problems);

  // Implicit structure: top-level groups are children of `all`; hosts in no group are in `ungrouped`.
  const all = groups.get('all')!;
  const hasParent = new Set([...groups.values()].flatMap((g) => g.children));
  for (const g of groups.values()) {
    if (g.name !== 'all' && !hasParent.has(g.name) && !all.children.includes(g.name)) all.children.push(g.name);
  }
  const grouped = new Set([...groups.values()].filter((g) => g.name !== 'ungrouped').flatMap((g) => g.hosts));
  const ungrouped = groups.get('ungrouped')!;
  ungrouped.hosts = ungrouped.hosts.filter((h) => !grouped.has(h));
  return { file, hosts, groups };
}

function findCycle(groups: Map<string, InventoryGroup>): string[] | undefined {
  const state = new Map<string, 'visiting' | 'done'>();
  const path: string[] = [];
  const visit = (name: string): string[] | undefined => {
    if (state.get(name) === 'done') return undefined;
    if (state.get(name) === 'visiting') return [...path.slice(path.indexOf(name)), name];
    state.set(name, 'visiting');
    path.push(name);
    for (const child of groups.get(name)?.children ?? []) {
      const found = visit(child);
      if (found) return found;
    }
    path.pop();
    state.set(name, 'done');
    return undefined;
  };
  for (const name of groups.keys()) {
    const found = visit(name);
    if (found) return found;
  }
  return undefined;
}
