// The PEM job's deploy: facts → database → pg_hba (→ web hosts), as stages for the runner.
// Everything here is wiring: reading state and planning live in the task modules.

import type { Change } from '../src/change.ts';
import type { Connections } from '../src/connections.ts';
import { lastRunOfStep, stepRecords, type RunRecord } from '../src/records.ts';
import { UsageError } from '../src/errors.ts';
import type { HostPlan, Stage } from '../src/runner.ts';
import { backendFactsFrom, backendFactsScript, primaryOf, type BackendFacts } from './backend-facts.ts';
import { databaseHostPlan, planDatabaseStage } from './database-stage.ts';
import { hbaHostPlan, planHbaStage } from './pg-hba-stage.ts';
import { planWebStage, webFactsFrom, webFactsScript, webHostPlan, type PendingRestart, type WebFacts } from './config-local-stage.ts';
import { settingsUri, type SettingsUri } from './config-local/uri.ts';
import type { BackendSettings, JobSettings, Secrets, WebSettings } from './settings.ts';

export interface DeployContext {
  runId: string;
  settings: JobSettings;
  secrets: Secrets;
  connections: Connections;
  /** Selected hosts, in inventory order. */
  selected: string[];
  /** The user to sudo to for privileged steps on a host (ansible_become), if any. */
  becomeUser(host: string): string | undefined;
  /** Earlier runs, oldest first: a restart one of them owes is made up for. */
  records: RunRecord[];
}

/** The restart an earlier run owes this host: the newest restart it tried failed or was cut off. */
export function pendingRestart(records: RunRecord[], host: string): PendingRestart | undefined {
  const last = lastRunOfStep(records, host, 'web', 'restart web app');
  if (!last || last.status !== 'failed') return undefined;
  const written = stepRecords(last.record, host, 'web').get('config_local.py');
  const sha256After = written?.['sha256After'];
  return typeof sha256After === 'string' ? { run: last.record.run, sha256After } : undefined;
}

/** The URI every web host gets: all backends of the inventory, whatever the limit (SPEC 2). */
export function desiredUri(settings: JobSettings, password: string): SettingsUri {
  return settingsUri({
    user: settings.user, password, database: settings.db,
    backends: settings.backends.map((b) => ({ host: b.dbAddress, port: b.pgPort })),
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
  });
}

export function deployStages(ctx: DeployContext): Stage[] {
  const { settings, connections } = ctx;
  const backends = new Map(settings.backends.map((b) => [b.name, b]));
  const selectedBackends = ctx.selected.filter((h) => backends.has(h));
  const selectedWeb = ctx.selected.filter((h) => settings.webhosts.some((w) => w.name === h));
  const webs = new Map(settings.webhosts.map((w) => [w.name, w]));
  const facts = new Map<string, BackendFacts>();
  const webFacts = new Map<string, WebFacts>();
  const uri = desiredUri(settings, ctx.secrets.password);
  const target = { db: settings.db, user: settings.user, grantee: settings.grantee, revokeConnect: settings.revokeConnect };

  const factsStage: Stage = {
    name: 'facts',
    hosts: [...selectedBackends, ...selectedWeb],
    unreachableStopsRun: (host) => backends.has(host),
    after() {
      // A site with no primary, or two, is a wrong inventory (or a split brain): nothing has been
      // written yet, so this ends the run as bad input.
      const p = primary();
      if (p.problem && (facts.size === settings.backends.length || [...facts.values()].filter((f) => !f.inRecovery).length > 1)) {
        throw new UsageError(`${p.problem}; nothing was changed`);
      }
    },
    plan: (host) => (backends.has(host) ? readBackend(host, backends.get(host)!) : readWebHost(host, webs.get(host)!)),
  };

  async function readWebHost(host: string, w: WebSettings): Promise<HostPlan> {
    const { result } = await connections.openWith(host, webFactsScript(w), becomeOpts(ctx, host));
    const f = webFactsFrom(host, result);
    webFacts.set(host, f);
    const file = f.exists ? `present, ${f.owner}:${f.group} mode ${f.mode}` : 'absent';
    const user = f.webUser ? `web app user ${f.webUser}` : 'web app user looked for when writing';
    return { changes: [info(host, 'facts', 'config_local.py', `${w.configLocal}: ${file}; ${user}; python3 ${f.python3 ? 'present' : 'absent'}`)] };
  }

  async function readBackend(host: string, backend: BackendSettings): Promise<HostPlan> {
    const { conn, result } = await connections.openWith(host, backendFactsScript(backend, target), { becomeUser: backend.pgOsUser });
    const f = backendFactsFrom(host, result,
      result.stderr.includes('sudo') ? `the SSH user ${conn.user} must be able to run commands as ${backend.pgOsUser} with sudo` : undefined);
    facts.set(host, f);
    const change = info(host, 'facts', 'server', `${f.serverVersion.split(' ')[0]} ${f.inRecovery ? 'standby' : 'primary'}, ssl ${f.ssl ? 'on' : 'off'}, hba_file ${f.hbaFile}, psql ${f.psql}`);
    if (!f.ssl) change.warnings = ['ssl is off on this server: the hostssl rule cannot match until ssl is turned on'];
    return { changes: [change] };
  }

  // In inventory order, so that messages name the backends the way the inventory lists them.
  const primary = () => primaryOf(new Map(selectedBackends.filter((h) => facts.has(h)).map((h) => [h, facts.get(h)!])));
  const databaseStage: Stage = {
    name: 'database',
    // The facts stage has made sure there is at most one primary; none selected: nothing to do.
    get hosts() {
      const p = primary().primary;
      return p ? [p] : [];
    },
    async plan(host) {
      const conn = await connections.get(host);
      const backend = backends.get(host)!;
      return databaseHostPlan(conn, backend, planDatabaseStage(host, facts.get(host)!, { ...target, password: ctx.secrets.password }));
    },
  };

  const hbaStage: Stage = {
    name: 'pg_hba',
    get hosts() {
      return selectedBackends.filter((h) => facts.has(h));
    },
    unreachableStopsRun: () => true,
    async plan(host) {
      const conn = await connections.get(host);
      const backend = backends.get(host)! as BackendSettings;
      return hbaHostPlan(conn, backend, planHbaStage(host, facts.get(host)!, backend, settings.db, settings.user), ctx.runId);
    },
  };

  const webStage: Stage = {
    name: 'web',
    get hosts() {
      return selectedWeb.filter((h) => webFacts.has(h));
    },
    async plan(host) {
      const conn = await connections.get(host);
      const w = webs.get(host)!;
      const f = webFacts.get(host)!;
      return webHostPlan(conn, w, f, planWebStage(host, w, f, uri, pendingRestart(ctx.records, host)), ctx.runId, ctx.becomeUser(host));
    },
  };

  return [factsStage, databaseStage, hbaStage, webStage];
}

function becomeOpts(ctx: DeployContext, host: string): { becomeUser?: string } {
  const user = ctx.becomeUser(host);
  return user ? { becomeUser: user } : {};
}

function info(host: string, stage: string, step: string, summary: string): Change {
  return { host, stage, step, target: host, changed: false, summary };
}
