// Stage 3 (SPEC 4): the web hosts' rule in pg_hba.conf on every backend. Planning is pure
// (pg-hba/plan.ts); applying is one script run as the cluster's OS user that checks the file is
// still what we read, keeps a backup, writes atomically with the same owner and mode, validates
// through pg_hba_file_rules (restoring the backup on error), reloads and confirms the reload.

import { backupPath, sameAsRead } from './backups.ts';
import type { Change } from '../src/change.ts';
import { heredoc, shellQuote, type Connection } from '../src/connection.ts';
import { HostError, UnreachableError } from '../src/errors.ts';
import type { HostPlan } from '../src/runner.ts';
import { findPsql, psqlCommand, sha256, type BackendFacts } from './backend-facts.ts';
import { HbaParseError } from './pg-hba/parse.ts';
import { desiredHbaRules, maskHbaSecrets, planHbaRules, type HbaRulesPlan } from './pg-hba/plan.ts';
import type { BackendSettings } from './settings.ts';

export interface HbaChange extends Change {
  plan: HbaRulesPlan;
  hbaFile: string;
  beforeSha256: string;
  /** 1-based line numbers of the added rules in the new file. */
  addedLines: number[];
}

export function planHbaStage(host: string, facts: BackendFacts, backend: BackendSettings, db: string, user: string): HbaChange {
  let plan: HbaRulesPlan;
  try {
    plan = planHbaRules(facts.hbaText, desiredHbaRules(db, user, backend.webSubnets), { serverMajor: Math.floor(facts.serverVersionNum / 10000) });
  } catch (e) {
    if (e instanceof HbaParseError) throw new HostError(host, 'pg_hba.conf', `${facts.hbaFile}: ${e.message}`, 'fix the file first: Postgres would not load it either');
    throw e;
  }
  const changed = plan.added.length > 0;
  const lines = plan.newText.split('\n').map((l) => l.replace(/\r$/, ''));
  const addedLines = plan.added.map((a) => lines.indexOf(a) + 1);
  const summary = changed
    ? plan.plans.map((p) => (p.status === 'insert' ? `insert "${p.addedLine}" (${p.reason})` : `rule already effective at line ${p.line}`)).join('; ') + '; reload'
    : `rule already effective at line ${plan.present.join(', ')}`;
  return {
    host, stage: 'pg_hba', step: 'pg_hba.conf rule', target: facts.hbaFile, changed, summary,
    ...(changed ? { diff: { path: facts.hbaFile, before: maskHbaSecrets(facts.hbaText), after: maskHbaSecrets(plan.newText) } } : {}),
    plan, hbaFile: facts.hbaFile, beforeSha256: facts.hbaSha256, addedLines,
  };
}

/** A new pg_hba.conf to put in place: deploy's with the rule added, rollback's with it removed. */
export interface HbaWrite {
  hbaFile: string;
  /** What the facts read: the file must still be this when it is replaced. */
  beforeSha256: string;
  newText: string;
  /** 1-based lines of the new file that must be among the server's rules after the reload. */
  addedLines: number[];
}

/** The write-validate-reload script. */
export function hbaApplyScript(c: HbaWrite, backend: BackendSettings, runId: string): string {
  const content = heredoc(Buffer.from(c.newText, 'utf8').toString('base64').replace(/(.{76})/g, '$1\n'));
  // One session checks the new file and reloads only when the server finds no error in it.
  const checkAndReload = heredoc(`SELECT pg_conf_load_time();
DO $pems$ DECLARE e text; BEGIN
  SELECT string_agg(line_number || ': ' || error, '; ' ORDER BY line_number) INTO e FROM pg_hba_file_rules WHERE error IS NOT NULL;
  IF e IS NOT NULL THEN RAISE EXCEPTION 'pem-settings: invalid pg_hba.conf: %', e; END IF;
  PERFORM pg_reload_conf();
END $pems$;`);
  // A new session sees the new load time once the server has reloaded; it also sees the rules.
  const lines = c.addedLines.length ? c.addedLines.join(', ') : '0';
  const poll = heredoc(`SELECT (pg_conf_load_time() > :'before'::timestamptz)::text || ' ' || (SELECT count(*) FROM pg_hba_file_rules WHERE error IS NULL AND type = 'hostssl' AND line_number IN (${lines}));`);
  const psql = psqlCommand(backend);
  return [
    'set -u',
    findPsql(backend),
    `f=${shellQuote(c.hbaFile)}`,
    `backup=${shellQuote(backupPath(c.hbaFile, runId))}`,
    sameAsRead('"$f"', c.beforeSha256),
    // Until the new file is in place nothing has changed, and a way out leaves no backup behind.
    'cp -p "$f" "$backup" || { rm -f "$backup"; echo "cannot write the backup $backup (disk full or read-only?); nothing was changed" >&2; exit 11; }',
    'tmp=$(mktemp "${f%/*}/.pg_hba.pem-settings.XXXXXX") || { rm -f "$backup"; echo "cannot create a temporary file beside $f; nothing was changed" >&2; exit 12; }',
    // A write cut short (disk full) must never be renamed into place: it could be a valid but shorter file.
    `base64 -d > "$tmp" ${content.open} || { rm -f "$tmp" "$backup"; echo "cannot write $tmp (disk full or read-only?); nothing was changed" >&2; exit 12; }`,
    content.body.trimEnd(),
    'chmod --reference="$f" "$tmp" && chown --reference="$f" "$tmp" 2>/dev/null; chmod --reference="$f" "$tmp"',
    'mv -f "$tmp" "$f" || { rm -f "$tmp" "$backup"; echo "cannot replace $f; nothing was changed" >&2; exit 13; }',
    `out=$(${psql} 2>&1 ${checkAndReload.open}`,
    `${checkAndReload.body})`,
    'if [ $? -ne 0 ]; then',
    // Put back as it was, and then nothing changed: no backup stays behind either.
    '  tmp=$(mktemp "${f%/*}/.pg_hba.pem-settings.XXXXXX") && cp -p "$backup" "$tmp" && mv -f "$tmp" "$f" && rm -f "$backup"',
    '  case "$out" in *"invalid pg_hba.conf: "*) why=$(printf "%s\\n" "${out#*invalid pg_hba.conf: }" | head -n 1);; *) why="the server could not check it: $out";; esac',
    '  echo "the new pg_hba.conf is invalid, the backup was restored and nothing reloaded: $why" >&2; exit 20',
    'fi',
    'before=$(printf "%s\\n" "$out" | head -n 1)',
    'i=0; now=',
    'while [ $i -lt 500 ]; do',
    `  now=$(${psql} -v before="$before" ${poll.open}`,
    `${poll.body})`,
    '  case "$now" in true*) break;; esac; i=$((i+1)); sleep 0.01',
    'done',
    'case "$now" in true*) ;; *) echo "the server did not reload within 5 seconds" >&2; exit 22;; esac',
    ...(c.addedLines.length ? [
      `[ "\${now#true }" = ${c.addedLines.length} ] || { echo "the rule is not among the server's rules after the reload" >&2; exit 23; }`,
    ] : []),
    'echo "backup $backup"',
  ].join('\n');
}

/**
 * Puts a new pg_hba.conf in place and reloads (deploy and rollback alike). Records the step as
 * soon as the new file is in place and valid, whatever the reload then did.
 */
export async function writeHbaFile(conn: Connection, backend: BackendSettings, w: HbaWrite, runId: string, step: string,
  record: (step: string, data: Record<string, unknown>) => void, details: Record<string, unknown>): Promise<void> {
  const result = await conn.run(hbaApplyScript(w, backend, runId), { becomeUser: backend.pgOsUser });
  if (result.lost) {
    throw new UnreachableError(conn.host, step, `the SSH connection dropped while ${w.hbaFile} was being updated: it holds either its old or its new content (one rename), and the server may not have reloaded it`,
      'run again once the host is reachable');
  }
  // Exits 21-23: the new file is in place and valid: it changed, whatever the reload did.
  if (result.code === 0 || (result.code >= 21 && result.code <= 23)) {
    record(step, { file: w.hbaFile, backup: backupPath(w.hbaFile, runId), sha256Before: w.beforeSha256, sha256After: sha256(w.newText), ...details });
  }
  if (result.code !== 0) throw new HostError(conn.host, step, result.stderr.trim() || `the update script exited with ${result.code}`);
}

export function hbaHostPlan(conn: Connection, backend: BackendSettings, change: HbaChange, runId: string): HostPlan {
  return {
    changes: [change],
    apply: (_changed, record) => writeHbaFile(conn, backend,
      { hbaFile: change.hbaFile, beforeSha256: change.beforeSha256, newText: change.plan.newText, addedLines: change.addedLines },
      runId, change.step, record, { added: change.plan.added }),
  };
}
