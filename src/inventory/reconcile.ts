// After the last line: what Ansible checks and adds once the whole file is read
// (the end of ini.py's _parse, then InventoryData.reconcile_inventory).

import { fail, type Inventory, type ParseState } from './model.ts';

export function finishInventory(st: ParseState): void {
  reportPending(st);
  adoptTopLevelGroups(st.inv);
  settleUngrouped(st.inv);
  refuseNameClashes(st);
}

/** A group named in [x:children] or given [x:vars] but never declared by [x] or [x:children]. */
function reportPending(st: ParseState): void {
  for (const [name, p] of st.pending) {
    fail(st, p.line, p.state === 'vars'
      ? `section [${name}:vars] is for group "${name}", which is not defined anywhere`
      : `[${p.parents[p.parents.length - 1]}:children] includes group "${name}", which is not defined anywhere`);
  }
}

/** Every group without a parent becomes a child of `all`, in the order the groups were created. */
function adoptTopLevelGroups(inv: Inventory): void {
  const hasParent = new Set([...inv.groups.values()].flatMap((g) => g.children));
  const all = inv.groups.get('all')!;
  for (const g of inv.groups.values()) {
    if (g.name !== 'all' && !hasParent.has(g.name)) all.children.push(g.name);
  }
}

/**
 * A host in `ungrouped` and in some other group leaves `ungrouped`; a host in no group but `all`
 * (listed before any section, or under [all]) joins it.
 */
function settleUngrouped(inv: Inventory): void {
  const ungrouped = inv.groups.get('ungrouped')!;
  const ancestors = ancestorsOf(inv);
  const direct = new Map<string, string[]>();
  for (const g of inv.groups.values()) for (const h of g.hosts) direct.set(h, [...(direct.get(h) ?? []), g.name]);
  const leaving = new Set<string>();
  for (const host of inv.hosts.keys()) {
    const groups = new Set((direct.get(host) ?? []).flatMap((g) => [g, ...ancestors(g)]));
    const others = [...groups].filter((g) => g !== 'all' && g !== 'ungrouped');
    if (groups.has('ungrouped')) {
      if (others.length > 0) leaving.add(host);
    } else if (others.length === 0) {
      ungrouped.hosts.push(host);
    }
  }
  ungrouped.hosts = ungrouped.hosts.filter((h) => !leaving.has(h));
}

/** Every group above a group, through :children (memoised: a range can define many hosts). */
function ancestorsOf(inv: Inventory): (group: string) => string[] {
  const parents = parentMap(inv);
  const memo = new Map<string, string[]>();
  const up = (g: string, seen: Set<string>): string[] => {
    const known = memo.get(g);
    if (known) return known;
    seen.add(g);
    const found = new Set<string>();
    for (const p of parents.get(g) ?? []) {
      if (seen.has(p)) continue;
      found.add(p);
      for (const a of up(p, seen)) found.add(a);
    }
    memo.set(g, [...found]);
    return memo.get(g)!;
  };
  return (group) => up(group, new Set());
}

export function parentMap(inv: Inventory): Map<string, string[]> {
  const parents = new Map<string, string[]>();
  for (const g of inv.groups.values()) {
    for (const c of g.children) parents.set(c, [...(parents.get(c) ?? []), g.name]);
  }
  return parents;
}

/**
 * Ansible only warns when a host and a group share a name, and then sets that host's inline
 * variables on the group (InventoryData.set_variable looks for a group first): refused here.
 */
function refuseNameClashes(st: ParseState): void {
  for (const host of st.inv.hosts.values()) {
    if (st.inv.groups.has(host.name)) {
      fail(st, host.line, `host "${host.name}" has the same name as a group; Ansible would give this host's variables to the group: rename one of them`);
    }
  }
}
