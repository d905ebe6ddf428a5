// The PEM job's rollback (SPEC 6): undo one recorded deploy, in reverse stage order — web hosts,
// then pg_hba.conf on the backends, then the database on the primary — from what the run record
// says each step did and what each host shows now.

import type { Change } from '../src/change.ts';
import type { Connections } from '../src/connections.ts';
import { HostError } from '../src/errors.ts';
import { stepRecords, type RunRecord } from '../src/records.ts';
import type { HostPlan, Stage } from '../src/runner.ts';
import { backendFactsFrom, backendFactsScript, type BackendFacts } from './backend-facts.ts';
import type { DbRecord } from './database/plan.ts';
import { maskHbaSecrets, removeRuleLine } from './pg-hba/plan.ts';
import { writeHbaFile } from './pg-hba-stage.ts';
import { databaseRollbackPlan, planDatabaseRollback } from './rollback/database.ts';
import { parseWebRollbackFacts, planWebRollback, webRollbackFactsScript, webRollbackPlan, type WebDeployRecord } from './rollback/web.ts';
import type { BackendSettings, JobSettings } from './settings.ts';

export interface RollbackContext {
  runId: string;
  record: RunRecord;
  settings: JobSettings;
  connections: Connections;
  selected: string[];
  force: boolean;
  purge: boolean;
  becomeUser(host: string): string | undefined;
}

export function rollbackStages(ctx: RollbackContext): Stage[] {
  const { record, settings, connections } = ctx;
  const inRecord = (stage: string) => ctx.selected.filter((h) => stepRecords(record, h, stage).size > 0);
  const backends = new Map(settings.backends.map((b) => [b.name, b]));
  const webs = new Map(settings.webhosts.map((w) => [w.name, w]));
  const target = { db: settings.db, user: settings.user, grantee: settings.grantee, revokeConnect: settings.revokeConnect };
  const facts = new Map<string, BackendFacts>();
  const become = (h: string) => (ctx.becomeUser(h) ? { becomeUser: ctx.becomeUser(h)! } : {});

  const webStage: Stage = {
    name: 'web',
    hosts: inRecord('web'),
    async plan(host): Promise<HostPlan> {
      const w = webs.get(host);
      if (!w) throw new HostError(host, 'web', 'this host is no longer in [webhosts] of the inventory');
      const r = stepRecords(record, host, 'web').get('config_local.py') as WebDeployRecord | undefined;
      if (!r) return { changes: [] };
      const conn = await connections.get(host);
      const out = await conn.run(webRollbackFactsScript(r), become(host));
      if (out.code !== 0) throw new HostError(host, 'facts', out.stderr.trim() || `the facts script exited with ${out.code}`);
      const changes = planWebRollback(host, r, parseWebRollbackFacts(out.stdout), ctx.force, w.webRestart);
      return webRollbackPlan(conn, changes, ctx.runId, ctx.becomeUser(host), w.webRestart);
    },
  };

  // Backends: read facts once (pg_hba.conf bytes; catalog on the primary) for both backend stages.
  const backendFacts = async (host: string): Promise<BackendFacts> => {
    let f = facts.get(host);
    if (!f) {
      const conn = await connections.get(host);
      const b = backendOf(backends, host);
      f = backendFactsFrom(host, await conn.run(backendFactsScript(b, target), { becomeUser: b.pgOsUser }));
      facts.set(host, f);
    }
    return f;
  };

  const hbaStage: Stage = {
    name: 'pg_hba',
    hosts: inRecord('pg_hba'),
    unreachableStopsRun: () => true,
    async plan(host): Promise<HostPlan> {
      const r = stepRecords(record, host, 'pg_hba').get('pg_hba.conf rule') as { file: string; added: string[] } | undefined;
      if (!r) return { changes: [] };
      const f = await backendFacts(host);
      if (f.hbaFile !== r.file) throw new HostError(host, 'pg_hba.conf rule', `the server's hba_file is now ${f.hbaFile}; the run changed ${r.file}`, 'remove the rule by hand');
      let text = f.hbaText;
      const removed: string[] = [];
      for (const line of r.added) {
        const result = removeRuleLine(text, line);
        if (result.removed) removed.push(line);
        text = result.newText;
      }
      const change: Change = {
        host, stage: 'pg_hba', step: 'pg_hba.conf rule', target: r.file, changed: removed.length > 0,
        summary: removed.length ? `remove ${removed.map((l) => `"${l}"`).join(', ')}; reload` : 'the rule the run added is gone already',
        ...(removed.length ? { diff: { path: r.file, before: maskHbaSecrets(f.hbaText), after: maskHbaSecrets(text) } } : {}),
      };
      const conn = await connections.get(host);
      return {
        changes: [change],
        apply: (_changed, rec) => writeHbaFile(conn, backendOf(backends, host),
          { hbaFile: r.file, beforeSha256: f.hbaSha256, newText: text, addedLines: [] }, ctx.runId, change.step, rec, { removed }),
      };
    },
  };

  const databaseStage: Stage = {
    name: 'database',
    hosts: inRecord('database'),
    async plan(host): Promise<HostPlan> {
      const records = [...stepRecords(record, host, 'database').values()] as unknown as DbRecord[];
      const f = await backendFacts(host);
      if (f.inRecovery || !f.db) throw new HostError(host, 'database', 'this backend is a standby now; roll back on the current primary', 'after a failover, fix the inventory first');
      const conn = await connections.get(host);
      return databaseRollbackPlan(conn, backendOf(backends, host), planDatabaseRollback(host, records, f.db, ctx.purge), ctx.runId);
    },
  };

  return [webStage, hbaStage, databaseStage];
}

function backendOf(backends: Map<string, BackendSettings>, host: string): BackendSettings {
  const b = backends.get(host);
  if (!b) throw new HostError(host, 'facts', 'this host is no longer in [backends] of the inventory');
  return b;
}
