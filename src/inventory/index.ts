// The inventory as the rest of the tool sees it: load a file, resolve hosts and variables.
import { readFileSync } from 'node:fs';
import { InventoryError } from '../errors.ts';
import { parseInventory, type Inventory } from './parse.ts';
import { decodeInventory } from './pytext.ts';

export { parseInventory, type Inventory, type InventoryHost, type InventoryGroup, type Vars } from './parse.ts';
export { resolveHost, resolveAll, groupsOfHost, type ResolvedHost, type VarSource } from './resolve.ts';
export { selectHosts, hostsOfGroup, splitPattern } from './patterns.ts';
export { asBoolean, type VarValue } from './values.ts';

export function loadInventory(path: string): Inventory {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new InventoryError(path, undefined, `cannot read the inventory: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  return parseInventory(decodeInventory(bytes, path), path);
}
