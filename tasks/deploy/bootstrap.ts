// The web app creates its schema in an empty settings database at start, with no lock, and
// some of its migrations commit part-way (../shared/WEBAPP.md): several web hosts starting
// together on an empty database can fail or write duplicate rows. So when the database has no
// tables yet, one web host is restarted alone first, and the others only once its schema is
// there — tables exist and their number has stopped changing.

import type { Connection } from '../../src/connection.ts';
import { HostError } from '../../src/errors.ts';
import { runOp } from '../../src/remote/op.ts';
import { runPsql } from '../../src/remote/psql.ts';
import { quoteLiteral } from '../database/sql.ts';
import { psqlTarget, primaryOf } from '../facts/backend.ts';
import type { BackendSettings } from '../settings.ts';
import type { DeployContext } from './context.ts';

/** Whether the web app still has to create its schema: yes, no, or unknown (primary not selected). */
export function schemaAbsent(d: DeployContext): boolean | undefined {
  const primary = primaryOf(d.backendFacts).primary;
  const db = primary ? d.backendFacts.get(primary)?.db : undefined;
  if (!db) return undefined;
  return (db.settingsDb?.tables ?? 0) === 0;
}

const TABLES = (role: string) => `SELECT count(*) FROM pg_class c WHERE c.relkind IN ('r', 'p') AND pg_get_userbyid(c.relowner) = ${quoteLiteral(role)};`;

/** How long the number of tables must stay the same before the schema counts as created. */
const STABLE_SEC = 3;

/** Waits on the primary until the web app's tables exist and their number holds still. */
export async function waitForSchema(conn: Connection, b: BackendSettings, db: string, role: string, timeoutSec: number, on: { host: string; step: string }): Promise<number> {
  const step = on.step;
  const started = Date.now();
  let last = -1;
  let since = Date.now();
  while ((Date.now() - started) / 1000 < timeoutSec) {
    const out = await runOp(conn, runPsql(psqlTarget(b), TABLES(role), db), { user: b.pgOsUser, step });
    const count = Number(out.stdout.trim());
    if (count !== last) {
      last = count;
      since = Date.now();
    } else if (count > 0 && (Date.now() - since) / 1000 >= STABLE_SEC) return count;
    await new Promise((done) => setTimeout(done, 1000));
  }
  throw new HostError(on.host, step, `no schema appeared in ${db} within ${timeoutSec} s (pem_web_bootstrap_timeout)${last > 0 ? ` (${last} tables, still changing)` : ''}: the web app did not create its tables`,
    'look at this web app\'s log; no other web host was restarted');
}
