// Rolling back config_local.py on a web host (SPEC 6): restore the backup when the file is
// still exactly what the run wrote; remove a file the run created; refuse when someone edited
// the file since (nobody's later edit is lost), unless --force — and even then the edited file
// is kept beside it. The restore is deploy's own writer (files/config-local.ts): the same guard,
// cleanup, syntax check and readability check.

import type { Change } from '../../src/change.ts';
import type { Connection } from '../../src/connection.ts';
import { HostError } from '../../src/errors.ts';
import { runOp, type RemoteOp } from '../../src/remote/op.ts';
import { readFiles, type FileFact } from '../../src/remote/read-files.ts';
import { removeFile, replaceFile } from '../../src/remote/replace-file.ts';
import type { HostPlan } from '../../src/runner.ts';
import { maskConfigSecrets } from '../config-local/mask.ts';
import type { WebFileRecord } from '../deploy/web.ts';
import { writeConfigLocal, type ConfigWrite } from '../files/config-local.ts';
import { displayText } from '../files/text.ts';
import { restartWebApp } from '../restart.ts';
import type { WebSettings } from '../settings.ts';
import { STEP } from '../steps.ts';

export interface WebRollbackFacts {
  current: FileFact;
  backup?: FileFact;
}

export function webRollbackFactsOp(r: WebFileRecord): RemoteOp<WebRollbackFacts> {
  const op = readFiles([{ path: r.file }, ...(r.backup ? [{ path: r.backup }] : [])]);
  return {
    script: op.script,
    read(out) {
      const [current, backup] = op.read(out);
      return { current: current!, ...(backup ? { backup } : {}) };
    },
  };
}

export interface WebRollbackPlan {
  /** config_local.py, or the password file (restored the same way, without the Python check). */
  kind: 'config' | 'passfile';
  file: Change;
  /** Restore the backup's bytes in place of the current file. */
  restore?: ConfigWrite;
  /** Remove the file the run created. */
  remove?: { sha256: string; target: string };
  /** --force on an edited file: where the edited file is kept. */
  keepEditedAs?: string;
  restart?: Change;
}

/** Pure: the run's record and what the host shows now in, what to do out (or a refusal). */
export function planWebRollback(host: string, r: WebFileRecord, facts: WebRollbackFacts,
  o: { force: boolean; runId: string; restart?: string; webUser?: string; kind?: 'config' | 'passfile' }): WebRollbackPlan {
  const kind = o.kind ?? 'config';
  const base = { host, stage: 'web', id: kind === 'config' ? STEP.webFile : STEP.webPassfile, step: kind === 'config' ? 'config_local.py' : 'password file', target: r.file };
  const shown = (bytes: Buffer) => (kind === 'config' ? maskConfigSecrets(displayText(bytes)) : '(a password file; its content is not shown)\n');
  const cur = facts.current.state === 'present' ? facts.current : undefined;
  const untouchedSince = cur?.sha256 === r.sha256After;
  const keepEditedAs = untouchedSince ? undefined : `${cur?.target ?? r.file}.pem-settings-rollback-${o.runId}.bak`;
  const forced = untouchedSince ? '' : ' (--force: edited since; kept as a .bak)';
  let plan: WebRollbackPlan;
  if (r.created ? facts.current.state === 'absent' : cur?.sha256 === r.sha256Before) {
    plan = { kind, file: { ...base, changed: false, summary: r.created ? 'the file the run created is gone already' : 'already as before the run' } };
  } else if (!untouchedSince && !o.force) {
    throw new HostError(host, 'config_local.py',
      `${r.file} was changed after the run (sha256 now ${cur?.sha256 ?? facts.current.state}, the run wrote ${r.sha256After}); left untouched` +
      (r.backup ? `; the backup is ${r.backup}` : ''), 'restore it by hand, or run rollback with --force (the edited file is kept beside it)');
  } else if (r.created) {
    plan = {
      kind, file: { ...base, changed: true, summary: `remove ${r.file}, which the run created${forced}`, ...(cur ? { diff: { path: r.file, before: shown(cur.bytes), after: '' } } : {}) },
      ...(cur ? { remove: { sha256: cur.sha256, target: cur.target } } : {}), ...(keepEditedAs ? { keepEditedAs } : {}),
    };
  } else {
    const backup = facts.backup?.state === 'present' ? facts.backup : undefined;
    if (!backup || backup.sha256 !== r.sha256Before || !cur) {
      throw new HostError(host, 'config_local.py', `the backup ${r.backup} is ${backup ? 'not the file as it was before the run' : 'missing'}; nothing restored`);
    }
    plan = {
      kind, file: { ...base, changed: true, summary: `restore ${r.file} from ${r.backup}${forced}`, diff: { path: r.file, before: shown(cur.bytes), after: shown(backup.bytes) } },
      restore: { path: r.file, expect: { sha256: cur.sha256, target: cur.target }, bytes: backup.bytes, ...(o.webUser ? { webUser: o.webUser } : {}) },
      ...(keepEditedAs ? { keepEditedAs } : {}),
    };
  }
  if (o.restart && kind === 'config') {
    plan.restart = { host, stage: 'web', id: STEP.webRestart, step: 'restart web app', target: o.restart, changed: plan.file.changed,
      summary: plan.file.changed ? `run pem_web_restart: ${o.restart}` : 'nothing changed: no restart' };
  }
  return plan;
}

/**
 * config_local.py first (it stops naming the password file), then the password file, then the
 * restart. Files go through `files` (the host's locked session), the restart through `restart`.
 */
export function webRollbackHostPlan(conns: { files: Connection; restart: Connection }, plans: WebRollbackPlan[], w: WebSettings, user: string | undefined,
  runId: string): HostPlan {
  const as = user ? { user } : {};
  const restart = plans.find((p) => p.restart)?.restart;
  return {
    changes: [...plans.map((p) => p.file), ...(restart ? [restart] : [])],
    async apply(changed, log) {
      let restored = false;
      for (const plan of plans.filter((p) => changed.includes(p.file))) {
        await undoFile(conns.files, plan, as, runId);
        log.done(plan.file.id, {
          record: { file: plan.file.target, action: plan.remove ? 'remove' : 'restore', sha256Before: plan.remove?.sha256 ?? (plan.restore?.expect !== 'absent' ? plan.restore?.expect.sha256 ?? null : null),
            ...(plan.keepEditedAs ? { keptEdited: plan.keepEditedAs } : {}) },
        });
        if (plan.kind === 'config') restored = true;
      }
      if (restored && restart && w.webRestart && changed.includes(restart)) {
        await restartWebApp(conns.restart, w.webRestart, { ...as, timeoutSec: w.webRestartTimeoutSec, step: restart.step, fileState: 'the file was restored' });
        log.done(restart.id, { record: { exitCode: 0 } });
      }
    },
  };
}

async function undoFile(conn: Connection, plan: WebRollbackPlan, as: { user?: string }, runId: string): Promise<void> {
  const path = plan.file.target;
  if (plan.remove) {
    await runOp(conn, removeFile({ path, expect: plan.remove, ...(plan.keepEditedAs ? { keepAs: plan.keepEditedAs } : {}) }), { ...as, step: plan.file.step });
    return;
  }
  if (!plan.restore) return;
  // The replaced (edited) file's copy is the backup of this write: kept only with --force.
  const suffix = plan.keepEditedAs ? `.pem-settings-rollback-${runId}.bak` : undefined;
  if (plan.kind === 'config') await writeConfigLocal(conn, plan.restore, { ...as, step: plan.file.step, ...(suffix ? { backupSuffix: suffix } : {}) });
  else await runOp(conn, replaceFile({ path, expect: plan.restore.expect, bytes: plan.restore.bytes, tempStem: '.pgpass', ...(suffix ? { backupSuffix: suffix } : {}) }), { ...as, step: plan.file.step });
}
