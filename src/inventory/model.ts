// The inventory as parsed: hosts and groups in the order Ansible creates them, each variable
// with the line that set it, so that an error about a value can point at that line.

import { InventoryError } from '../errors.ts';
import { emptyVars, type Vars } from './values.ts';

export type { Vars, VarValue } from './values.ts';

export interface InventoryHost {
  name: string;
  /** Line of the first definition. */
  line: number;
  vars: Vars;
  /** Line where each host var was set (for `host:port`, the host's line). */
  varLines: Record<string, number>;
}

export interface InventoryGroup {
  name: string;
  /** Line of the section that declared the group (none for the implicit `all` and `ungrouped`). */
  line?: number;
  /** Direct members, in the order they were added. */
  hosts: string[];
  /** Direct child groups, in the order Ansible adds them. */
  children: string[];
  vars: Vars;
  varLines: Record<string, number>;
  /** ansible_group_priority: Ansible keeps it on the group, not among its variables. */
  priority: number;
}

export interface Inventory {
  file: string;
  /** In inventory order: the order hosts first appear in the file. */
  hosts: Map<string, InventoryHost>;
  /** In the order Ansible creates them: `all`, `ungrouped`, then by section header. */
  groups: Map<string, InventoryGroup>;
}

/** A group named in [x:children] (or given [x:vars]) before any [x] or [x:children] declares it. */
export interface PendingGroup {
  line: number;
  state: 'vars' | 'children';
  parents: string[];
}

/** Where the parser is, and what it has found so far. */
export interface ParseState {
  inv: Inventory;
  problems: InventoryError[];
  group: string;
  /** `skip` after a bad section header: its lines belong to nothing. */
  section: 'hosts' | 'vars' | 'children' | 'skip';
  pending: Map<string, PendingGroup>;
}

export function newState(file: string): ParseState {
  const inv: Inventory = { file, hosts: new Map(), groups: new Map() };
  addGroup(inv, 'all');
  addGroup(inv, 'ungrouped');
  inv.groups.get('all')!.children.push('ungrouped');
  return { inv, problems: [], group: 'ungrouped', section: 'hosts', pending: new Map() };
}

export function addGroup(inv: Inventory, name: string, line?: number): InventoryGroup {
  let g = inv.groups.get(name);
  if (!g) {
    g = { name, hosts: [], children: [], vars: emptyVars(), varLines: {}, priority: 1, ...(line !== undefined ? { line } : {}) };
    inv.groups.set(name, g);
  } else if (g.line === undefined && line !== undefined) g.line = line;
  return g;
}

export function fail(st: ParseState, line: number | undefined, reason: string): void {
  st.problems.push(new InventoryError(st.inv.file, line, reason));
}
