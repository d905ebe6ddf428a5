// Ansible's INI inventory, read the way Ansible's `ini` inventory plugin reads it
// (lib/ansible/plugins/inventory/ini.py): lines split and trimmed as Python does, `#`/`;`
// comment lines, section headers `[group]`, `[group:vars]`, `[group:children]`, a group named in
// :children before it is declared kept pending until its own section, implicit `all` and
// `ungrouped`. Every problem carries its line number, and all of them are reported together.

import { ProblemsError } from '../errors.ts';
import { parseHostLine } from './host-line.ts';
import { addGroup, fail, newState, type Inventory, type ParseState } from './model.ts';
import { PY_SPACE, PY_WORD, pyStrip, splitPyLines } from './pytext.ts';
import { finishInventory } from './reconcile.ts';
import { parseValue, pyInt, UnsupportedValue } from './values.ts';

export type { Inventory, InventoryGroup, InventoryHost, Vars } from './model.ts';

// Ansible's patterns, with Python's \s and \w; a comment after a header starts with `#` only.
const SECTION = new RegExp(`^\\[([^:\\]${PY_SPACE}]+)(?::([${PY_WORD}]+))?\\][${PY_SPACE}]*(?:#.*)?$`, 'su');
const GROUP_NAME = new RegExp(`^([^:\\]${PY_SPACE}]+)[${PY_SPACE}]*(?:#.*)?$`, 'su');

export function parseInventory(text: string, file: string): Inventory {
  const st = newState(file);
  let body = text;
  if (body.startsWith('\uFEFF')) {
    // Ansible keeps the mark as part of the first line: `[group]` becomes a bad host range.
    fail(st, 1, 'the file starts with a byte-order mark, which Ansible reads as part of the first line: save it as UTF-8 without BOM');
    body = body.slice(1);
  }
  splitPyLines(body).forEach((raw, index) => parseLine(st, pyStrip(raw), index + 1));
  finishInventory(st);
  if (st.problems.length === 1) throw st.problems[0]!;
  if (st.problems.length > 1) throw new ProblemsError(st.problems);
  return st.inv;
}

function parseLine(st: ParseState, line: string, lineNo: number): void {
  if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
  if (parseSectionHeader(st, line, lineNo)) return;
  if (line.startsWith('[') && line.endsWith(']')) {
    st.section = 'skip';
    return fail(st, lineNo, `invalid section header "${line}": no spaces allowed, and the form is [group], [group:vars] or [group:children]`);
  }
  switch (st.section) {
    case 'hosts': return parseHostLine(st, line, lineNo);
    case 'vars': return parseGroupVarLine(st, line, lineNo);
    case 'children': return parseChildLine(st, line, lineNo);
    case 'skip': return;
  }
}

/** A `[group]`, `[group:vars]` or `[group:children]` line; false if the line is none of them. */
function parseSectionHeader(st: ParseState, line: string, lineNo: number): boolean {
  const m = SECTION.exec(line);
  if (!m) return false;
  const name = m[1]!;
  const kind = m[2] ?? 'hosts';
  if (kind !== 'hosts' && kind !== 'vars' && kind !== 'children') {
    st.section = 'skip';
    fail(st, lineNo, `section [${name}:${kind}] has unknown type "${kind}" (expected hosts, vars or children)`);
    return true;
  }
  st.group = name;
  st.section = kind;
  if (!st.inv.groups.has(name)) {
    // [x:vars] alone does not declare x: it must be declared by [x] or [x:children] somewhere.
    if (kind === 'vars' && !st.pending.has(name)) st.pending.set(name, { line: lineNo, state: 'vars', parents: [] });
    addGroup(st.inv, name, lineNo);
  }
  const pending = st.pending.get(name);
  if (pending && kind !== 'vars') {
    if (pending.state === 'children') addPendingChildren(st, name);
    else st.pending.delete(name);
  }
  return true;
}

/** x is now declared: add it to every [parent:children] that named it earlier. */
function addPendingChildren(st: ParseState, name: string): void {
  const pending = st.pending.get(name)!;
  for (const parent of pending.parents) {
    addChild(st, parent, name, pending.line);
    if (st.pending.get(parent)?.state === 'children') addPendingChildren(st, parent);
  }
  st.pending.delete(name);
}

function parseGroupVarLine(st: ParseState, line: string, lineNo: number): void {
  const eq = line.indexOf('=');
  if (eq < 0) return fail(st, lineNo, `expected key=value in [${st.group}:vars], got "${line}"`);
  const key = pyStrip(line.slice(0, eq));
  let value;
  try {
    value = parseValue(pyStrip(line.slice(eq + 1)));
  } catch (e) {
    if (!(e instanceof UnsupportedValue)) throw e;
    return fail(st, lineNo, `variable ${key}: ${e.message}`);
  }
  const group = st.inv.groups.get(st.group)!;
  if (key === 'ansible_group_priority') {
    // Group.set_priority(int(value)): kept on the group, and an error where int() raises.
    const priority = pyInt(value);
    if (priority === undefined) return fail(st, lineNo, `ansible_group_priority must be an integer, got ${JSON.stringify(value)}`);
    group.priority = priority;
    return;
  }
  group.vars[key] = value;
  group.varLines[key] = lineNo;
}

function parseChildLine(st: ParseState, line: string, lineNo: number): void {
  const m = GROUP_NAME.exec(line);
  if (!m) return fail(st, lineNo, `expected a group name in [${st.group}:children], got "${line}"`);
  const child = m[1]!;
  if (st.inv.groups.has(child)) return addChild(st, st.group, child, lineNo);
  const pending = st.pending.get(child);
  if (pending) pending.parents.push(st.group);
  else st.pending.set(child, { line: lineNo, state: 'children', parents: [st.group] });
}

/** Group.add_child_group: no group may become its own ancestor (Ansible refuses the same). */
function addChild(st: ParseState, parent: string, child: string, lineNo: number): void {
  const group = st.inv.groups.get(parent)!;
  if (group.children.includes(child)) return;
  // Every group is below `all`, so `all` under any group is a cycle too (Ansible finds it later).
  const below = pathDown(st.inv, child, parent) ?? (child === 'all' ? ['all', parent] : undefined);
  if (below) return fail(st, lineNo, `group cycle: ${[parent, ...below].join(' -> ')}`);
  group.children.push(child);
}

/** Groups from `from` down to `to` through :children, if `to` is below (or is) `from`. */
function pathDown(inv: Inventory, from: string, to: string, seen = new Set<string>()): string[] | undefined {
  if (from === to) return [from];
  if (seen.has(from)) return undefined;
  seen.add(from);
  for (const child of inv.groups.get(from)?.children ?? []) {
    const rest = pathDown(inv, child, to, seen);
    if (rest) return [from, ...rest];
  }
  return undefined;
}
