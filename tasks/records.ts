// Reading this job's step records back (for rollback and the restart a run owes): each kind of
// record is checked field by field, so an old, foreign or hand-edited record is refused with a
// message instead of being trusted.

import type { StepRecord } from '../src/change.ts';
import type { RunRecord } from '../src/records.ts';
import type { DbRecord } from './database/plan.ts';
import type { HbaRecord } from './deploy/pg-hba.ts';
import type { WebFileRecord } from './deploy/web.ts';
import { stepIdOf } from './steps.ts';

const str = (v: unknown): v is string => typeof v === 'string';
const strOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string';

/** The record of the step with this id on this host, if the run has one. */
export function recordOf(run: RunRecord, host: string, id: string): StepRecord | undefined {
  return run.hosts[host]?.steps.find((s) => stepIdOf(s) === id && s.record)?.record;
}

export function asWebFileRecord(r: StepRecord | undefined): WebFileRecord | undefined {
  if (!r || !str(r['file']) || typeof r['created'] !== 'boolean' || !strOrNull(r['backup']) || !strOrNull(r['sha256Before']) || !str(r['sha256After'])) return undefined;
  return {
    file: r['file'], target: str(r['target']) ? r['target'] : r['file'], created: r['created'], backup: r['backup'],
    sha256Before: r['sha256Before'], sha256After: r['sha256After'], owner: str(r['owner']) ? r['owner'] : '', mode: str(r['mode']) ? r['mode'] : '',
  };
}

export function asHbaRecord(r: StepRecord | undefined): HbaRecord | undefined {
  const added = r?.['added'];
  if (!r || !str(r['file']) || !Array.isArray(added) || !added.every(str)) return undefined;
  return {
    file: r['file'], target: str(r['target']) ? r['target'] : r['file'], backup: strOrNull(r['backup']) ? r['backup'] : null,
    sha256Before: str(r['sha256Before']) ? r['sha256Before'] : '', sha256After: str(r['sha256After']) ? r['sha256After'] : '', added,
  };
}

const DB_KINDS = new Set(['role', 'database', 'connect', 'revoke-connect', 'schema-grant', 'default-privileges']);

/** The database records of a host, in the order the run made them. */
export function dbRecordsOf(run: RunRecord, host: string): DbRecord[] {
  const out: DbRecord[] = [];
  for (const s of run.hosts[host]?.steps ?? []) {
    const r = s.record;
    if (s.stage !== 'database' || !r || !str(r['kind']) || !DB_KINDS.has(r['kind'])) continue;
    out.push(toDbRecord(r));
  }
  return out;
}

function toDbRecord(r: StepRecord): DbRecord {
  // The fields are the ones planDatabase wrote for each kind; a missing one reads as its neutral value.
  const s = (k: string) => (str(r[k]) ? r[k] : '');
  const list = (k: string) => (Array.isArray(r[k]) ? (r[k] as unknown[]).filter(str) : []);
  switch (r['kind']) {
    case 'role': return { kind: 'role', role: s('role'), created: r['created'] === true, loginGranted: r['loginGranted'] === true, passwordChanged: r['passwordChanged'] === true };
    case 'database': return { kind: 'database', database: s('database'), created: true };
    case 'connect': return { kind: 'connect', database: s('database'), revokedFrom: r['revokedFrom'] === 'PUBLIC' ? 'PUBLIC' : null, grantedTo: str(r['grantedTo']) ? r['grantedTo'] : null };
    case 'revoke-connect': return { kind: 'revoke-connect', database: s('database'), from: 'PUBLIC' };
    case 'schema-grant': return { kind: 'schema-grant', database: s('database'), schema: 'public', role: s('role'), privileges: list('privileges') };
    default: return {
      kind: 'default-privileges', database: s('database'), forRole: s('forRole'), grantee: s('grantee'),
      objectType: r['objectType'] === 'sequences' ? 'sequences' : 'tables', privileges: list('privileges'),
    };
  }
}
