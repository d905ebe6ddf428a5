// `pem-settings hosts`: what the inventory resolves to, so an operator can check a limit and
// the variables every host will run with before anything connects anywhere.

import type { Io } from '../io.ts';
import { loadInventory, resolveHost, selectHosts, type Vars } from '../inventory/index.ts';
import { maskVars } from '../secrets.ts';

export interface HostsOptions {
  inventory: string;
  limit?: string;
  json?: boolean;
}

export async function hostsCommand(opts: HostsOptions, io: Io): Promise<number> {
  const inventory = loadInventory(opts.inventory);
  const names = opts.limit ? selectHosts(inventory, opts.limit) : [...inventory.hosts.keys()];
  const hosts = names.map((name) => {
    const { groups, vars } = resolveHost(inventory, name);
    return { name, groups: groups.filter((g) => g !== 'all'), vars: maskVars(vars) };
  });
  if (opts.json) {
    io.stdout(JSON.stringify({ hosts }, null, 2) + '\n');
    return 0;
  }
  io.stdout(renderTable(hosts));
  return 0;
}

function renderTable(hosts: { name: string; groups: string[]; vars: Vars }[]): string {
  const rows = hosts.map((h) => [h.name, h.groups.join(','), formatVars(h.vars)]);
  const head = ['HOST', 'GROUPS', 'VARS'];
  const widths = head.map((title, i) => Math.max(title.length, ...rows.map((r) => r[i]!.split('\n')[0]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const out = [line(head)];
  for (const [name, groups, vars] of rows) {
    const [first = '', ...rest] = vars!.split('\n');
    out.push(line([name!, groups!, first]));
    for (const more of rest) out.push(line(['', '', more]));
  }
  return out.join('\n') + `\n${hosts.length} host${hosts.length === 1 ? '' : 's'}\n`;
}

function formatVars(vars: Vars): string {
  return Object.keys(vars).sort().map((k) => `${k}=${JSON.stringify(vars[k])}`).join('\n') || '-';
}
