// The PEM job's rollback (SPEC 6): undo one recorded deploy, in reverse stage order — web hosts,
// then pg_hba.conf on the backends, then the database on the primary — from what the run record
// says each step did and what each host shows now (read by the locked session of each role).

import type { Opening } from '../../src/connections.ts';
import { HostError } from '../../src/errors.ts';
import type { Plan, RollbackRequest, RunContext } from '../../src/job.ts';
import type { HostPlan, Stage } from '../../src/runner.ts';
import type { DbTarget } from '../database/facts.ts';
import type { WebFileRecord } from '../deploy/web.ts';
import { backendFactsOp, readBackendFacts, type BackendFacts } from '../facts/backend.ts';
import { writeHbaFile } from '../files/hba.ts';
import { asHbaRecord, asWebFileRecord, dbRecordsOf, recordOf } from '../records.ts';
import { backendOpening, dbTarget, opening, webOpening } from '../site.ts';
import type { BackendSettings, JobSettings, WebSettings } from '../settings.ts';
import { STEP } from '../steps.ts';
import { databaseRollbackPlan, planDatabaseRollback } from './database.ts';
import { planHbaRollback } from './pg-hba.ts';
import { planWebRollback, webRollbackFactsOp, webRollbackHostPlan, type WebRollbackFacts } from './web.ts';
import { batch, nothing, readOp, type RemoteOp } from '../../src/remote/op.ts';

/** What the stages of one rollback share: the run, the request, the inventory's hosts, and which hosts each stage undoes. */
interface RollbackContext {
  run: RunContext;
  req: RollbackRequest;
  target: DbTarget;
  backends: Map<string, BackendSettings>;
  webs: Map<string, WebSettings>;
  /** Selected hosts on which the recorded run did something in each stage. */
  webHosts: string[];
  hbaHosts: string[];
  dbHosts: string[];
  /** Hosts read as backends: those of the pg_hba stage or of the database stage. */
  backendHosts: string[];
}

export function rollbackPlan(run: RunContext, settings: JobSettings, req: RollbackRequest): Plan<Stage> {
  const { record } = req;
  const backends = new Map(settings.backends.map((b) => [b.name, b]));
  const webs = new Map(settings.webhosts.map((w) => [w.name, w]));
  const webHosts = run.selected.filter((h) => webRecordOf(req, h) || passfileRecordOf(req, h));
  const hbaHosts = run.selected.filter((h) => asHbaRecord(recordOf(record, h, STEP.hbaRule)));
  const dbHosts = run.selected.filter((h) => dbRecordsOf(record, h).length > 0);
  const backendHosts = run.selected.filter((h) => hbaHosts.includes(h) || dbHosts.includes(h));
  const c: RollbackContext = { run, req, target: dbTarget(settings), backends, webs, webHosts, hbaHosts, dbHosts, backendHosts };
  return { openings: rollbackOpenings(c), stages: [webStage(c), hbaStage(c), databaseStage(c)] };
}

/** What the recorded run did to a web host's config_local.py, if anything. */
function webRecordOf(req: RollbackRequest, host: string): WebFileRecord | undefined {
  return asWebFileRecord(recordOf(req.record, host, STEP.webFile));
}

/** What the recorded run did to a web host's password file (pem_db_passfile), if anything. */
function passfileRecordOf(req: RollbackRequest, host: string): WebFileRecord | undefined {
  return asWebFileRecord(recordOf(req.record, host, STEP.webPassfile));
}

/** One read of both files (and their backups) on a web host: what the host shows now. */
function webFilesOp(req: RollbackRequest, host: string): RemoteOp<[WebRollbackFacts | undefined, WebRollbackFacts | undefined]> {
  const config = webRecordOf(req, host);
  const passfile = passfileRecordOf(req, host);
  return batch(config ? webRollbackFactsOp(config) : nothing, passfile ? webRollbackFactsOp(passfile) : nothing);
}

/**
 * The locked sessions the run opens first, one per host and role, whose scripts read what the
 * stages compare with the record: on web hosts as the become user, on backends as the Postgres
 * OS user. Hosts no longer in the inventory get none; their stages say so.
 */
function rollbackOpenings(c: RollbackContext): Opening[] {
  const { run, backends, webs, target } = c;
  return [
    ...c.webHosts.filter((h) => webs.has(h)).map((host) => webOpening(run, host, webFilesOp(c.req, host).script)),
    ...c.backendHosts.filter((h) => backends.has(h)).map((host) => backendOpening(host, backendOf(backends, host), backendFactsOp(backendOf(backends, host), target).script)),
  ];
}

/** A backend's facts, from what its opening session printed. */
async function backendFacts(c: RollbackContext, host: string): Promise<BackendFacts> {
  const b = backendOf(c.backends, host);
  const { out } = await c.run.connections.opened(opening.backend(host));
  return readBackendFacts(host, c.run.login(host).user, b, c.target, out);
}

/** Restores config_local.py on web hosts and restarts the web app. */
function webStage(c: RollbackContext): Stage {
  const { run, req } = c;
  return {
    name: 'web',
    hosts: c.webHosts,
    async plan(host): Promise<HostPlan> {
      const w = webOf(c.webs, host);
      const { conn, out } = await run.connections.opened(opening.web(host));
      const facts = readOp(host, 'facts', webFilesOp(req, host), out);
      // The files are written through the session that holds this host's lock, as deploy writes them.
      const session = await run.connections.session(opening.web(host), host);
      const o = { force: req.force, runId: run.runId, ...(w.webRestart ? { restart: w.webRestart } : {}), ...(w.webUser ? { webUser: w.webUser } : {}) };
      const config = webRecordOf(req, host);
      const passfile = passfileRecordOf(req, host);
      const plans = [
        ...(config && facts[0] ? [planWebRollback(host, config, facts[0], o)] : []),
        ...(passfile && facts[1] ? [planWebRollback(host, passfile, facts[1], { ...o, kind: 'passfile' })] : []),
      ];
      return webRollbackHostPlan({ files: session, restart: conn }, plans, w, run.login(host).becomeUser, run.runId);
    },
  };
}

/** Removes the rule the run added to pg_hba.conf on each backend. */
function hbaStage(c: RollbackContext): Stage {
  const { run } = c;
  return {
    name: 'pg_hba',
    hosts: c.hbaHosts,
    unreachableStopsRun: () => true,
    async plan(host): Promise<HostPlan> {
      const plan = planHbaRollback(host, asHbaRecord(recordOf(c.req.record, host, STEP.hbaRule))!, await backendFacts(c, host));
      return {
        changes: [plan.change],
        async apply(_changed, log) {
          if (!plan.write) return;
          const conn = await run.connections.session(opening.backend(host), host);
          await writeHbaFile(conn, backendOf(c.backends, host), plan.write, run.runId, plan.change.step, (r) => log.done(plan.change.id, {
            record: { file: plan.write!.hbaFile, target: r.target, backup: r.backup ?? null, removed: plan.removed },
          }));
        },
      };
    },
  };
}

/** Undoes the run's database changes on the primary (and with --purge, drops what it created). */
function databaseStage(c: RollbackContext): Stage {
  const { run, req } = c;
  return {
    name: 'database',
    hosts: c.dbHosts,
    async plan(host): Promise<HostPlan> {
      const f = await backendFacts(c, host);
      if (f.inRecovery || !f.db) throw new HostError(host, 'database', 'this backend is a standby now; roll back on the current primary', 'after a failover, fix the inventory first');
      const conn = await run.connections.session(opening.backend(host), host);
      return databaseRollbackPlan(conn, backendOf(c.backends, host), planDatabaseRollback(host, dbRecordsOf(req.record, host), f.db, req.purge), run.runId);
    },
  };
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
