// Parity with Ansible itself: every inventory in test/fixtures/inventory/parity was given to
// Debian's ansible-inventory (record.sh there), and its answer recorded beside it. Here our
// parser reads the same file and must give the same hosts, groups (members and children, in
// Ansible's order), ports and variables — or reject it where Ansible does. Files named
// stricter-* are ones Ansible accepts and we refuse on purpose (README, "Inputs we refuse").
// Ansible is not needed to run this test.

import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InventoryError, ProblemsError } from '../../src/errors.ts';
import { loadInventory, resolveAll, type Inventory, type Vars } from '../../src/inventory/index.ts';

const DIR = 'test/fixtures/inventory/parity';

interface AnsibleGroup { hosts?: string[]; children?: string[]; vars?: Vars }
type AnsibleList = Record<string, AnsibleGroup> & { _meta: { hostvars: Record<string, Vars> } };
interface Recording { ansible_core: string; list?: AnsibleList; export?: AnsibleList; error?: string }

/** What `ansible-inventory --list [--export]` would print for our parse (its json_inventory). */
function listOf(inv: Inventory, exported: boolean): AnsibleList {
  const out: Record<string, AnsibleGroup> = {};
  const seen = new Set<string>();
  const format = (name: string) => {
    const g = inv.groups.get(name)!;
    const entry: AnsibleGroup = {};
    if (name !== 'all' && g.hosts.length) entry.hosts = [...g.hosts];
    if (g.children.length) entry.children = [...g.children];
    out[name] = entry;
    for (const child of g.children) {
      if (!seen.has(child)) format(child);
      seen.add(child);
    }
    const vars = { ...g.vars, ...(g.priority !== 1 ? { ansible_group_priority: g.priority } : {}) };
    if (exported && Object.keys(vars).length) entry.vars = vars;
    if (Object.keys(entry).length === 0) delete out[name];
  };
  format('all');
  const hostvars: Record<string, Vars> = {};
  const resolved = exported ? [...inv.hosts.values()] : resolveAll(inv);
  for (const h of resolved) if (Object.keys(h.vars).length) hostvars[h.name] = { ...h.vars };
  return { ...out, _meta: { hostvars } } as AnsibleList;
}

function problemsOf(path: string): InventoryError[] | undefined {
  try {
    loadInventory(path);
    return undefined;
  } catch (e) {
    if (e instanceof InventoryError) return [e];
    if (e instanceof ProblemsError) return e.problems as InventoryError[];
    throw e;
  }
}

const files = readdirSync(DIR).filter((f) => f.endsWith('.ini')).sort();

test('the corpus covers accepted, rejected and deliberately refused inventories', (t) => {
  for (const prefix of ['ok-', 'bad-', 'stricter-']) t.true(files.some((f) => f.startsWith(prefix)), prefix);
  t.true(files.every((f) => /^(ok|bad|stricter)-/.test(f)), 'every fixture says what is expected of it');
});

for (const file of files) {
  const path = join(DIR, file);
  const recorded = JSON.parse(readFileSync(path.replace(/\.ini$/, '.json'), 'utf8')) as Recording;

  if (file.startsWith('ok-')) {
    test(`${file}: hosts, groups, ports and variables as ansible-inventory --list gives them`, (t) => {
      t.truthy(recorded.list, `Ansible rejected it: ${recorded.error}`);
      const inv = loadInventory(path);
      t.deepEqual(listOf(inv, false), recorded.list!);
      t.deepEqual(listOf(inv, true), recorded.export!, '--export: each group\'s and host\'s own variables');
    });
  } else {
    test(`${file}: refused with the file and a line, as ${file.startsWith('bad-') ? 'Ansible refuses it' : 'documented'}`, (t) => {
      if (file.startsWith('bad-')) t.truthy(recorded.error, 'Ansible accepted it: it is no bad-* fixture');
      else t.truthy(recorded.list, 'Ansible rejected it: it is a bad-* fixture, not a stricter-* one');
      const problems = problemsOf(path);
      t.truthy(problems, 'our parser accepted it');
      for (const p of problems ?? []) {
        t.is(p.file, path);
        t.true(Number.isInteger(p.line), p.message);
      }
      const line = new RegExp(`${file.replace(/\./g, '\\.')}:(\\d+):`).exec(recorded.error ?? '')?.[1];
      if (line) t.true(problems!.some((p) => p.line === Number(line)), `Ansible names line ${line}; we said:\n${problems!.map((p) => p.message).join('\n')}`);
    });
  }
}
