// Which groups a host is in and which value each variable takes, with Ansible's precedence:
// `all` < parent group < child group < host. Groups at the same depth are ordered by
// `ansible_group_priority`, then by name, later winning — as Ansible's combine_vars does.

import type { Inventory, Vars } from './parse.ts';

export interface ResolvedHost {
  name: string;
  /** Every group the host is in, directly or through :children, `all` included, sorted by name. */
  groups: string[];
  vars: Vars;
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

/** Groups that contain the host, directly or through children, including `all`. */
export function groupsOfHost(inv: Inventory, host: string): string[] {
  const parents = new Map<string, string[]>();
  for (const g of inv.groups.values()) {
    for (const c of g.children) parents.set(c, [...(parents.get(c) ?? []), g.name]);
  }
  const found = new Set<string>();
  const climb = (name: string) => {
    if (found.has(name)) return;
    found.add(name);
    for (const p of parents.get(name) ?? []) climb(p);
  };
  for (const g of inv.groups.values()) if (g.hosts.includes(host)) climb(g.name);
  found.add('all');
  return [...found].sort();
}

export function resolveHost(inv: Inventory, host: string, depths = groupDepths(inv)): ResolvedHost {
  const h = inv.hosts.get(host);
  if (!h) throw new Error(`unknown host ${host}`);
  const groups = groupsOfHost(inv, host);
  const priority = (name: string) => Number(inv.groups.get(name)?.vars['ansible_group_priority'] ?? 1);
  const ordered = [...groups].sort((a, b) =>
    (depths.get(a) ?? 0) - (depths.get(b) ?? 0) || priority(a) - priority(b) || (a < b ? -1 : a > b ? 1 : 0));
  const vars: Vars = {};
  for (const g of ordered) Object.assign(vars, inv.groups.get(g)!.vars);
  Object.assign(vars, h.vars);
  delete vars['ansible_group_priority'];
  return { name: host, groups, vars };
}

export function resolveAll(inv: Inventory): ResolvedHost[] {
  const depths = groupDepths(inv);
  return [...inv.hosts.keys()].map((h) => resolveHost(inv, h, depths));
}
