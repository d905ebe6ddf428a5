// Rolling back config_local.py on a web host (SPEC 6): restore the backup when the file is
// still exactly what the run wrote; remove a file the run created; refuse when someone edited
// the file since (nobody's later edit is lost), unless --force — and even then the edited file
// is kept beside it.

import { sameAsRead } from '../backups.ts';
import type { Change } from '../../src/change.ts';
import { shellQuote, type Connection } from '../../src/connection.ts';
import { HostError, UnreachableError } from '../../src/errors.ts';
import { runWebRestart } from '../config-local-stage.ts';
import type { HostPlan } from '../../src/runner.ts';
import { sha256 } from '../backend-facts.ts';
import { maskConfigSecrets } from '../config-local/mask.ts';

/** What deploy recorded for config_local.py (see config-local-stage.ts). */
export interface WebDeployRecord {
  file: string;
  created: boolean;
  backup: string | null;
  sha256Before: string | null;
  sha256After: string;
}

export interface WebRollbackFacts {
  current?: { sha256: string; text: string };
  backup?: { sha256: string; text: string };
}

export function webRollbackFactsScript(r: WebDeployRecord): string {
  const show = (label: string, path: string) =>
    `if [ -f ${shellQuote(path)} ]; then echo "#${label} present"; base64 -w0 < ${shellQuote(path)} || exit 5; echo; else echo "#${label} absent"; fi`;
  return ['set -u', show('file', r.file), ...(r.backup ? [show('backup', r.backup)] : ['echo "#backup absent"'])].join('\n');
}

export function parseWebRollbackFacts(stdout: string): WebRollbackFacts {
  const lines = stdout.split('\n');
  const read = (label: string) => {
    const at = lines.indexOf(`#${label} present`);
    if (at < 0) return undefined;
    const text = Buffer.from(lines[at + 1] ?? '', 'base64').toString('utf8');
    return { sha256: sha256(text), text };
  };
  const current = read('file');
  const backup = read('backup');
  return { ...(current ? { current } : {}), ...(backup ? { backup } : {}) };
}

export interface WebRollbackChange extends Change {
  action: 'restore' | 'remove' | 'none';
  record: WebDeployRecord;
  facts: WebRollbackFacts;
  /** Keep the current (edited) file before replacing it: only with --force on an edited file. */
  keepEdited: boolean;
}

export function planWebRollback(host: string, r: WebDeployRecord, facts: WebRollbackFacts, force: boolean, restart?: string): Change[] {
  const base = { host, stage: 'web', step: 'config_local.py', target: r.file, record: r, facts };
  const current = facts.current?.sha256;
  const untouchedSince = current === r.sha256After;
  const mk = (c: Omit<WebRollbackChange, keyof typeof base>): WebRollbackChange => ({ ...base, ...c });
  let change: WebRollbackChange;
  if (r.created ? current === undefined : current === r.sha256Before) {
    change = mk({ action: 'none', changed: false, summary: r.created ? 'the file the run created is gone already' : 'already as before the run', keepEdited: false });
  } else if (!untouchedSince && !force) {
    throw new HostError(host, 'config_local.py',
      `${r.file} was changed after the run (sha256 now ${current ?? 'absent'}, the run wrote ${r.sha256After}); left untouched` +
      (r.backup ? `; the backup is ${r.backup}` : ''), 'restore it by hand, or run rollback with --force (the edited file is kept beside it)');
  } else if (r.created) {
    change = mk({ action: 'remove', changed: true, summary: `remove ${r.file}, which the run created${untouchedSince ? '' : ' (--force: edited since; kept as a .bak)'}`, keepEdited: !untouchedSince,
      ...(facts.current ? { diff: { path: r.file, before: maskConfigSecrets(facts.current.text), after: '' } } : {}) });
  } else {
    if (!facts.backup || facts.backup.sha256 !== r.sha256Before) {
      throw new HostError(host, 'config_local.py', `the backup ${r.backup} is ${facts.backup ? 'not the file as it was before the run' : 'missing'}; nothing restored`);
    }
    change = mk({ action: 'restore', changed: true, summary: `restore ${r.file} from ${r.backup}${untouchedSince ? '' : ' (--force: edited since; kept as a .bak)'}`, keepEdited: !untouchedSince,
      diff: { path: r.file, before: maskConfigSecrets(facts.current?.text ?? ''), after: maskConfigSecrets(facts.backup.text) } });
  }
  const changes: Change[] = [change];
  if (restart) changes.push({ host, stage: 'web', step: 'restart web app', target: restart, changed: change.changed, summary: change.changed ? `run pem_web_restart: ${restart}` : 'nothing changed: no restart' });
  return changes;
}

function rollbackScript(c: WebRollbackChange, runId: string): string {
  const f = shellQuote(c.record.file);
  const expected = c.facts.current?.sha256;
  return [
    'set -u',
    expected
      ? sameAsRead(f, expected)
      : `[ ! -e ${f} ] || { echo "${c.record.file} appeared since it was read; run again" >&2; exit 10; }`,
    ...(c.keepEdited ? [`cp -p ${f} ${shellQuote(`${c.record.file}.pem-settings-rollback-${runId}.bak`)} || exit 11`] : []),
    ...(c.action === 'remove'
      ? [`rm -f ${f} || exit 13`]
      : [
        `tmp=$(mktemp ${shellQuote(c.record.file.replace(/\/[^/]*$/, ''))}/.config_local.pem-settings.XXXXXX) || exit 12`,
        `cp -p ${shellQuote(c.record.backup!)} "$tmp" && mv -f "$tmp" ${f} || { rm -f "$tmp"; echo "cannot restore ${c.record.file}" >&2; exit 13; }`,
      ]),
  ].join('\n');
}

export function webRollbackPlan(conn: Connection, changes: Change[], runId: string, becomeUser: string | undefined, restart?: string): HostPlan {
  const become = becomeUser ? { becomeUser } : {};
  return {
    changes,
    async apply(changed, record) {
      const file = changed.find((c) => c.step === 'config_local.py') as WebRollbackChange | undefined;
      if (file) {
        const r = await conn.run(rollbackScript(file, runId), become);
        if (r.lost) {
          throw new UnreachableError(conn.host, 'config_local.py', `the SSH connection dropped while ${file.record.file} was being restored: it holds either its content before or after (one rename)`,
            'run rollback again once the host is reachable');
        }
        if (r.code !== 0) throw new HostError(conn.host, 'config_local.py', r.stderr.trim() || `the rollback script exited with ${r.code}`);
        record(file.step, { file: file.record.file, action: file.action, sha256Before: file.facts.current?.sha256 ?? null,
          sha256After: file.action === 'remove' ? null : file.record.sha256Before, ...(file.keepEdited ? { keptEdited: `${file.record.file}.pem-settings-rollback-${runId}.bak` } : {}) });
      }
      if (file && restart && changed.some((c) => c.step === 'restart web app')) {
        await runWebRestart(conn, restart, becomeUser, record, 'the file was restored');
      }
    },
  };
}
