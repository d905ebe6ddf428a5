// The PEM job's rollback (SPEC 6): undo one recorded deploy, in reverse stage order — web hosts,
// then pg_hba.conf on the backends, then the database on the primary — from what the run record
// says each step did and what each host shows now (read by the locked session of each role).

import type { Opening } from '../../src/connections.ts';
import { HostError } from '../../src/errors.ts';
import type { Plan, RollbackRequest, RunContext } from '../../src/job.ts';
import type { HostPlan, Stage } from '../../src/runner.ts';
import { backendFactsOp, readBackendFacts, type BackendFacts } from '../facts/backend.ts';
import { writeHbaFile } from '../files/hba.ts';
import { asHbaRecord, asWebFileRecord, dbRecordsOf, recordOf } from '../records.ts';
import { dbTarget, opening } from '../site.ts';
import type { BackendSettings, JobSettings, WebSettings } from '../settings.ts';
import { STEP } from '../steps.ts';
import { databaseRollbackPlan, planDatabaseRollback } from './database.ts';
import { planHbaRollback } from './pg-hba.ts';
import { planWebRollback, webRollbackFactsOp, webRollbackHostPlan } from './web.ts';

export function rollbackPlan(run: RunContext, settings: JobSettings, req: RollbackRequest): Plan<Stage> {
  const { record } = req;
  const backends = new Map(settings.backends.map((b) => [b.name, b]));
  const webs = new Map(settings.webhosts.map((w) => [w.name, w]));
  const webRecord = (h: string) => asWebFileRecord(recordOf(record, h, STEP.webFile));
  const webHosts = run.selected.filter((h) => webRecord(h));
  const hbaHosts = run.selected.filter((h) => asHbaRecord(recordOf(record, h, STEP.hbaRule)));
  const dbHosts = run.selected.filter((h) => dbRecordsOf(record, h).length > 0);
  const backendHosts = run.selected.filter((h) => hbaHosts.includes(h) || dbHosts.includes(h));
  const target = dbTarget(settings);
  const openings: Opening[] = [
    ...webHosts.filter((h) => webs.has(h)).map((host) => {
      const become = run.login(host).becomeUser;
      return { id: opening.web(host), host, ...(become ? { user: become } : {}), script: webRollbackFactsOp(webRecord(host)!).script };
    }),
    ...backendHosts.filter((h) => backends.has(h)).map((host) => ({ id: opening.backend(host), host, user: backendOf(backends, host).pgOsUser, script: backendFactsOp(backendOf(backends, host), target).script })),
  ];
  const facts = async (host: string): Promise<BackendFacts> => {
    const b = backendOf(backends, host);
    const { out } = await run.connections.opened(opening.backend(host));
    return readBackendFacts(host, run.login(host).user, b, target, out);
  };

  const webStage: Stage = {
    name: 'web',
    hosts: webHosts,
    async plan(host): Promise<HostPlan> {
      const w = webOf(webs, host);
      const { conn, out } = await run.connections.opened(opening.web(host));
      const r = webRecord(host)!;
      let current;
      try {
        current = webRollbackFactsOp(r).read(out);
      } catch (e) {
        throw new HostError(host, 'facts', (e as Error).message);
      }
      const plan = planWebRollback(host, r, current, { force: req.force, runId: run.runId, ...(w.webRestart ? { restart: w.webRestart } : {}), ...(w.webUser ? { webUser: w.webUser } : {}) });
      return webRollbackHostPlan(conn, plan, w, run.login(host).becomeUser, run.runId);
    },
  };

  const hbaStage: Stage = {
    name: 'pg_hba',
    hosts: hbaHosts,
    unreachableStopsRun: () => true,
    async plan(host): Promise<HostPlan> {
      const plan = planHbaRollback(host, asHbaRecord(recordOf(record, host, STEP.hbaRule))!, await facts(host));
      return {
        changes: [plan.change],
        async apply(_changed, log) {
          if (!plan.write) return;
          const conn = await run.connections.get(host);
          await writeHbaFile(conn, backendOf(backends, host), plan.write, run.runId, plan.change.step, (r) => log.done(plan.change.id, {
            record: { file: plan.write!.hbaFile, target: r.target, backup: r.backup ?? null, removed: plan.removed },
          }));
        },
      };
    },
  };

  const databaseStage: Stage = {
    name: 'database',
    hosts: dbHosts,
    async plan(host): Promise<HostPlan> {
      const f = await facts(host);
      if (f.inRecovery || !f.db) throw new HostError(host, 'database', 'this backend is a standby now; roll back on the current primary', 'after a failover, fix the inventory first');
      const conn = await run.connections.get(host);
      return databaseRollbackPlan(conn, backendOf(backends, host), planDatabaseRollback(host, dbRecordsOf(record, host), f.db, req.purge), run.runId);
    },
  };

  return { openings, stages: [webStage, hbaStage, databaseStage] };
}

function backendOf(backends: Map<string, BackendSettings>, host: string): BackendSettings {
  const b = backends.get(host);
  if (!b) throw new HostError(host, 'facts', 'this host is no longer in [backends] of the inventory');
  return b;
}

function webOf(webs: Map<string, WebSettings>, host: string): WebSettings {
  const w = webs.get(host);
  if (!w) throw new HostError(host, 'web', 'this host is no longer in [webhosts] of the inventory');
  return w;
}
