// Which groups a host is in and which value each variable takes, with Ansible's precedence:
// `all` < parent group < child group < host. Groups are ordered by depth below `all`, then
// `ansible_group_priority`, then name, later winning — as Ansible's sort_groups and
// combine_vars do. Each value keeps where it was set, so an error about it can name that line.

import type { Inventory } from './model.ts';
import { comparePy } from './pytext.ts';
import { parentMap } from './reconcile.ts';
import { emptyVars, type Vars } from './values.ts';

/** Where a variable's value was set: the line of `key=value` in [group:vars], or of the host's line. */
export interface VarSource {
  file: string;
  line: number;
  /** The group whose [group:vars] set it; absent for a host's own variable. */
  group?: string;
}

export interface ResolvedHost {
  name: string;
  /** Every group the host is in, directly or through :children, `all` included, sorted by name. */
  groups: string[];
  vars: Vars;
  /** Where each of vars was set (always filled by resolveHost). */
  sources?: Record<string, VarSource>;
}

/** Depth of each group below `all` (longest path), as Ansible computes it. */
export function groupDepths(inv: Inventory): Map<string, number> {
  const depth = new Map<string, number>([['all', 0]]);
  const walk = (name: string, d: number) => {
    if ((depth.get(name) ?? -1) >= d && name !== 'all') return;
    depth.set(name, d);
    for (const child of inv.groups.get(name)?.children ?? []) walk(child, d + 1);
  };
  walk('all', 0);
  return depth;
}

/** What resolving needs about the whole inventory, computed once for all hosts. */
interface Index {
  depths: Map<string, number>;
  parents: Map<string, string[]>;
  /** Groups each host is directly in. */
  direct: Map<string, string[]>;
}

function indexOf(inv: Inventory): Index {
  const direct = new Map<string, string[]>();
  for (const g of inv.groups.values()) for (const h of g.hosts) direct.set(h, [...(direct.get(h) ?? []), g.name]);
  return { depths: groupDepths(inv), parents: parentMap(inv), direct };
}

/** Groups that contain the host, directly or through children, including `all`, sorted by name. */
export function groupsOfHost(inv: Inventory, host: string, index = indexOf(inv)): string[] {
  const found = new Set<string>();
  const climb = (name: string) => {
    if (found.has(name)) return;
    found.add(name);
    for (const p of index.parents.get(name) ?? []) climb(p);
  };
  for (const g of index.direct.get(host) ?? []) climb(g);
  found.add('all');
  return [...found].sort(comparePy);
}

export function resolveHost(inv: Inventory, host: string, index = indexOf(inv)): ResolvedHost {
  const h = inv.hosts.get(host);
  if (!h) throw new Error(`unknown host ${host}`);
  const groups = groupsOfHost(inv, host, index);
  const priority = (name: string) => inv.groups.get(name)?.priority ?? 1;
  const depth = (name: string) => index.depths.get(name) ?? 0;
  const ordered = [...groups].sort((a, b) => depth(a) - depth(b) || priority(a) - priority(b) || comparePy(a, b));
  const vars = emptyVars();
  const sources: Record<string, VarSource> = Object.create(null) as Record<string, VarSource>;
  for (const name of ordered) {
    const g = inv.groups.get(name)!;
    for (const key of Object.keys(g.vars)) {
      vars[key] = g.vars[key]!;
      sources[key] = { file: inv.file, line: g.varLines[key]!, group: name };
    }
  }
  for (const key of Object.keys(h.vars)) {
    vars[key] = h.vars[key]!;
    sources[key] = { file: inv.file, line: h.varLines[key]! };
  }
  return { name: host, groups, vars, sources };
}

export function resolveAll(inv: Inventory): ResolvedHost[] {
  const index = indexOf(inv);
  return [...inv.hosts.keys()].map((h) => resolveHost(inv, h, index));
}
