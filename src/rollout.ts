// Ansible's rolling updates, for a stage that asks for them: its hosts in batches (`--serial N`
// or `N%`), and after a batch with more failures than `--max-fail-percentage` allows, the rest
// are not touched (and go to the retry file). Pure: the batches and the verdict are values.

import { UsageError } from './errors.ts';

export interface Serial {
  /** Hosts per batch, or a percentage of all the stage's hosts (at least one). */
  size: number;
  percent: boolean;
}

/** `--serial`: N or N%; undefined: all at once. */
export function parseSerial(text: string | undefined): Serial | undefined {
  if (text === undefined) return undefined;
  const m = /^([1-9]\d*)(%?)$/.exec(text.trim());
  if (!m || (m[2] && Number(m[1]) > 100)) throw new UsageError(`--serial must be a number of hosts or a percentage (1% to 100%), got "${text}"`);
  return { size: Number(m[1]), percent: m[2] === '%' };
}

/** `--max-fail-percentage`: 0 to 100. */
export function parseMaxFail(text: string | undefined): number {
  if (text === undefined) return 0;
  if (!/^\d+$/.test(text) || Number(text) > 100) throw new UsageError(`--max-fail-percentage must be a whole number from 0 to 100, got "${text}"`);
  return Number(text);
}

/** The hosts in batches; a percentage is of all the hosts, rounded down, at least one (as Ansible). */
export function batchesOf(hosts: string[], serial: Serial | undefined): string[][] {
  if (!serial || hosts.length === 0) return hosts.length ? [hosts] : [];
  const size = serial.percent ? Math.max(1, Math.floor((hosts.length * serial.size) / 100)) : serial.size;
  const out: string[][] = [];
  for (let i = 0; i < hosts.length; i += size) out.push(hosts.slice(i, i + size));
  return out;
}

/** True when a batch's failures are more than the allowed percentage of it. */
export function tooManyFailures(failed: number, batchSize: number, maxFailPercentage: number): boolean {
  return batchSize > 0 && (failed * 100) / batchSize > maxFailPercentage;
}
