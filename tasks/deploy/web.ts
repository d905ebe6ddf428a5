// Stage 4 (SPEC 4): CONFIG_DATABASE_URI in config_local.py on every web host, then the web
// app's restart when the file changed (or when an earlier run wrote it but its restart never
// completed). Planning is pure (config-local/edit.ts on the file's bytes, uri.ts); writing is
// files/config-local.ts, restarting restart.ts.

import ipaddr from 'ipaddr.js';
import type { ApplyLog, Change } from '../../src/change.ts';
import { HostError } from '../../src/errors.ts';
import type { HostPlan, Rollout, Stage } from '../../src/runner.ts';
import { batchesOf } from '../../src/rollout.ts';
import { runOp } from '../../src/remote/op.ts';
import { replaceFile, type Replaced, type ReplaceRequest } from '../../src/remote/replace-file.ts';
import { passfileText, planPassfile, type PassfilePlan } from './passfile.ts';
import { primaryOf } from '../facts/backend.ts';
import { schemaAbsent, waitForSchema } from './bootstrap.ts';
import { lastRunOfStep, type RunRecord } from '../../src/records.ts';
import { ConfigParseError, pythonStringLiteral, setConfigValue } from '../config-local/edit.ts';
import { maskConfigSecrets } from '../config-local/mask.ts';
import type { SettingsUri } from '../config-local/uri.ts';
import type { WebFacts } from '../facts/web.ts';
import { backupSuffix } from '../files/backup.ts';
import { readerWarning, writeConfigLocal, type ConfigWrite } from '../files/config-local.ts';
import { bytesAsText, displayText, insertable, textAsBytes } from '../files/text.ts';
import { restartWebApp, waitHealthy } from '../restart.ts';
import type { WebSettings } from '../settings.ts';
import { STEP, stepIdOf } from '../steps.ts';
import { desiredUri, opening } from '../site.ts';
import type { DeployContext } from './context.ts';
import { ownerOf, sha256 } from '../../src/remote/read-files.ts';

export const URI_VARIABLE = 'CONFIG_DATABASE_URI';

/** What deploy records of a config_local.py it wrote: what rollback needs to restore it. */
export type WebFileRecord = {
  file: string;
  /** The file replaced (where the link led, when the path is a link). */
  target: string;
  created: boolean;
  backup: string | null;
  sha256Before: string | null;
  sha256After: string;
  owner: string;
  mode: string;
};

/** A restart an earlier run owes: the file is still as that run wrote it, the restart never completed. */
export interface PendingRestart {
  run: string;
  sha256After: string;
}

export interface WebHostPlan {
  file: Change;
  write?: ConfigWrite;
  restart?: Change;
  /** pem_db_passfile: the password's own file, written before config_local.py points at it. */
  passfile?: PassfilePlan;
}

/** The restart an earlier run owes this host: the newest restart it tried failed or was cut off. */
export function pendingRestart(records: RunRecord[], host: string): PendingRestart | undefined {
  const last = lastRunOfStep(records, host, (s) => s.stage === 'web' && stepIdOf(s) === STEP.webRestart);
  if (!last || last.status !== 'failed') return undefined;
  const written = last.record.hosts[host]?.steps.find((s) => s.stage === 'web' && stepIdOf(s) === STEP.webFile)?.record;
  const after = written?.['sha256After'];
  return typeof after === 'string' ? { run: last.record.run, sha256After: after } : undefined;
}

/** Pure: the file's facts and the desired URI in, the changes (and the new bytes) out. */
export function planWebHost(host: string, w: WebSettings, facts: WebFacts, uri: SettingsUri, subnets: string[], pending?: PendingRestart): WebHostPlan {
  const f = facts.file;
  const exists = f.state === 'present';
  let result;
  try {
    result = setConfigValue(exists ? bytesAsText(f.bytes) : '', URI_VARIABLE, insertable(pythonStringLiteral(uri.uri)));
  } catch (e) {
    if (e instanceof ConfigParseError) throw new HostError(host, 'config_local.py', `${w.configLocal} is not valid Python (${e.message}); it was left untouched`, 'fix the file by hand first');
    throw e;
  }
  const owner = exists ? undefined : w.configOwner ?? (facts.configPy.state === 'present' ? ownerOf(facts.configPy) : undefined);
  if (!exists && !owner) {
    throw new HostError(host, 'config_local.py', `${w.configLocal} does not exist and there is no config.py beside it to take the owner from`, 'set pem_config_owner=user:group, or check pem_config_local');
  }
  // Owner and mode are kept, except that the file holds a password: others never read it.
  const oldMode = exists ? parseInt(f.mode, 8) : undefined;
  const mode = oldMode === undefined ? 0o640 : oldMode & ~0o007;
  const modeChanged = oldMode !== undefined && mode !== oldMode;
  const after = textAsBytes(result.newText);
  const warnings = [...uri.notes, ...outsideSubnets(w, subnets)];
  if (result.untouched.length) warnings.push(`${URI_VARIABLE} is also assigned inside a block or with += at line ${result.untouched.join(', ')}; left as is`);
  const changed = result.changed || modeChanged;
  const file: Change = {
    host, stage: 'web', id: STEP.webFile, step: 'config_local.py', target: w.configLocal, changed,
    summary: webSummary(exists, result, uri, modeChanged ? [oldMode!, mode] : undefined, f.state === 'present' && f.target !== f.path ? f.target : undefined),
    ...(warnings.length ? { warnings } : {}),
    ...(result.changed ? { diff: { path: w.configLocal, before: maskConfigSecrets(exists ? displayText(f.bytes) : ''), after: maskConfigSecrets(displayText(after)) } } : {}),
  };
  const write: ConfigWrite | undefined = changed ? {
    path: w.configLocal, expect: exists ? { sha256: f.sha256, target: f.target } : 'absent', bytes: after, mode: mode.toString(8), ...(exists ? { modeRead: f.mode } : {}),
    ...(owner ? { owner } : {}), ...(w.webUser ? { webUser: w.webUser } : {}),
  } : undefined;
  return { file, ...(write ? { write } : {}), ...restartOf(host, w, result.changed || modeChanged, exists ? f.sha256 : undefined, pending) };
}

function restartOf(host: string, w: WebSettings, fileChanged: boolean, sha256Now: string | undefined, pending?: PendingRestart): { restart?: Change } {
  if (!w.webRestart) return {};
  const owed = !fileChanged && pending !== undefined && sha256Now === pending.sha256After;
  return {
    restart: {
      host, stage: 'web', id: STEP.webRestart, step: 'restart web app', target: w.webRestart, changed: fileChanged || owed,
      summary: fileChanged ? `run pem_web_restart: ${w.webRestart}`
        : owed ? `run pem_web_restart: ${w.webRestart} (run ${pending!.run} wrote the file but its restart did not complete)` : 'nothing changed: no restart',
    },
  };
}

function webSummary(exists: boolean, r: { changed: boolean; line: number; disabled: number[] }, uri: SettingsUri, modes?: [number, number], linkTarget?: string): string {
  const where = exists ? (r.changed ? `set at line ${r.line}` : `already set at line ${r.line}`) : 'new file';
  const form = uri.form === 'single' ? 'one host' : uri.form === 'multi-same-port' ? 'several hosts, read-write target' : 'several hosts on several ports, read-write target';
  const octal = (m: number) => m.toString(8).padStart(4, '0');
  return `${URI_VARIABLE} ${where} (${form})` + (linkTarget ? `; in ${linkTarget}, where the link leads` : '') +
    (r.disabled.length ? `; duplicate assignment(s) at line ${r.disabled.join(', ')} commented out` : '') +
    (modes ? `; mode ${octal(modes[0])} -> ${octal(modes[1])}: others could read the password` : '');
}

/** Postgres would refuse a web host whose address lies outside every pem_web_subnet. */
function outsideSubnets(w: WebSettings, subnets: string[]): string[] {
  if (!ipaddr.isValid(w.address) || subnets.length === 0) return [];
  const addr = ipaddr.process(w.address);
  const inside = subnets.some((c) => {
    try {
      const [net, bits] = ipaddr.parseCIDR(c);
      return net.kind() === addr.kind() && addr.match([net, bits]);
    } catch {
      return false;
    }
  });
  return inside ? [] : [`this web host's address ${w.address} is outside every pem_web_subnet (${subnets.join(', ')}): Postgres would refuse its connections (set pem_web_subnet to include it)`];
}

export function webStage(d: DeployContext): Stage {
  const plans = webPlans(d);
  let bootstrap: string | undefined;
  const rollout: Rollout = {
    maxFailPercentage: d.maxFailPercentage,
    async batches(hosts) {
      bootstrap = bootstrapHost(d, hosts, plans);
      rollout.mustSucceed = bootstrap ? [0] : [];
      const rest = hosts.filter((h) => h !== bootstrap);
      return [...(bootstrap ? [[bootstrap]] : []), ...batchesOf(rest, d.serial)];
    },
  };
  return {
    name: 'web',
    get hosts() {
      return d.selectedWeb.filter((h) => d.webFacts.has(h));
    },
    rollout,
    async plan(host): Promise<HostPlan> {
      const w = d.webs.get(host)!;
      const plan = withRollout(d, host, plans(host), host === bootstrap);
      return {
        changes: [...(plan.passfile ? [plan.passfile.change] : []), plan.file, ...(plan.restart ? [plan.restart] : []), ...(plan.health ? [plan.health] : []), ...(plan.schema ? [plan.schema] : [])],
        apply: (changed, log) => applyWebHost(d, host, w, plan, changed, log),
      };
    },
  };
}

/** Each web host's plan, made once: the rollout reads them to choose its first host. */
function webPlans(d: DeployContext): (host: string) => WebHostPlan {
  const subnets = [...new Set(d.settings.backends.flatMap((b) => b.webSubnets))];
  const made = new Map<string, WebHostPlan>();
  return (host) => {
    let plan = made.get(host);
    if (!plan) {
      const w = d.webs.get(host)!;
      const facts = d.webFacts.get(host)!;
      const uri = desiredUri(d.settings, d.secrets.password, { w, ...(facts.libpq !== undefined ? { libpq: facts.libpq } : {}) });
      plan = planWebHost(host, w, facts, uri, subnets, pendingRestart(d.run.records, host));
      if (w.dbPassfile && w.webUser) {
        const targets = d.settings.endpoint ? [d.settings.endpoint] : d.settings.backends.map((b) => ({ host: b.dbAddress, port: b.pgPort }));
        plan.passfile = planPassfile(host, w.dbPassfile, w.webUser, facts.passfile, passfileText(targets, d.settings.db, d.settings.user, d.secrets.password));
      }
      made.set(host, plan);
    }
    return plan;
  };
}

/** The first web host that will restart, when the web app has no schema yet; else none. */
function bootstrapHost(d: DeployContext, hosts: string[], plans: (host: string) => WebHostPlan): string | undefined {
  if (schemaAbsent(d) !== true) return undefined;
  return hosts.find((h) => {
    try {
      return plans(h).restart?.changed === true;
    } catch {
      return false; // a host whose plan fails is reported by its own step
    }
  });
}

interface RolloutPlan extends WebHostPlan {
  health?: Change;
  schema?: Change;
}

/** The health check after a restart, the wait for the schema on the first host, and what to tell the operator. */
function withRollout(d: DeployContext, host: string, plan: WebHostPlan, bootstrap: boolean): RolloutPlan {
  const w = d.webs.get(host)!;
  const out: RolloutPlan = { ...plan };
  if (plan.restart && w.webHealth) {
    out.health = { host, stage: 'web', id: STEP.webHealth, step: 'health check', target: w.webHealth, changed: plan.restart.changed,
      summary: plan.restart.changed ? `run pem_web_health until it succeeds (up to ${w.webHealthTimeoutSec} s): ${w.webHealth}` : 'no restart: no health check' };
  }
  if (bootstrap) {
    out.schema = { host, stage: 'web', id: STEP.webSchema, step: 'web app schema', target: d.settings.db, changed: true,
      summary: `this host restarts alone first: ${d.settings.db} has no tables yet, and the web app creates them at start without a lock; the other web hosts follow once its schema is there (up to ${w.webBootstrapTimeoutSec} s)` };
  } else if (!plan.restart && plan.file.changed && schemaAbsent(d) === true && d.selectedWeb.find((h) => d.webFacts.has(h)) === host) {
    out.file = { ...plan.file, warnings: [...(plan.file.warnings ?? []), `${d.settings.db} has no tables yet: start the web app on this host first, and the others once it is up (the web app creates its schema at start without a lock)`] };
  }
  return out;
}

/** What rollback needs of a file this run replaced or created. */
function fileRecord(file: string, r: Replaced, expect: ReplaceRequest['expect'], bytes: Buffer, owner?: string, mode?: string): WebFileRecord {
  return {
    file, target: r.target, created: expect === 'absent', backup: r.backup ?? null,
    sha256Before: expect === 'absent' ? null : expect.sha256, sha256After: sha256(bytes), owner: owner ?? '', mode: mode ?? '',
  };
}

async function applyWebHost(d: DeployContext, host: string, w: WebSettings, plan: RolloutPlan, changed: Change[], log: ApplyLog): Promise<void> {
  const conn = await d.run.connections.get(host);
  // The files are written through the session that holds this host's lock and read its facts.
  const session = await d.run.connections.session(opening.web(host), host);
  const user = d.run.login(host).becomeUser;
  const as = user ? { user } : {};
  if (plan.passfile?.write) {
    const pf = plan.passfile.write;
    const r = await runOp(session, replaceFile({ ...pf, backupSuffix: backupSuffix(d.run.runId) }), { ...as, step: plan.passfile.change.step });
    log.done(plan.passfile.change.id, { record: fileRecord(pf.path, r, pf.expect, pf.bytes, pf.owner, pf.mode) });
  }
  if (plan.write) {
    const r = await writeConfigLocal(session, plan.write, { ...as, step: plan.file.step, backupSuffix: backupSuffix(d.run.runId) });
    const warning = readerWarning(r);
    log.done(plan.file.id, { record: fileRecord(w.configLocal, r, plan.write.expect, plan.write.bytes, plan.write.owner, plan.write.mode), ...(warning ? { warnings: [warning] } : {}) });
  }
  if (!plan.restart || !w.webRestart || !changed.includes(plan.restart)) return;
  await restartWebApp(conn, w.webRestart, { ...as, timeoutSec: w.webRestartTimeoutSec, step: plan.restart.step, fileState: 'config_local.py was updated' });
  log.done(plan.restart.id, { record: { exitCode: 0 } });
  if (plan.health && w.webHealth) {
    const attempts = await waitHealthy(conn, w.webHealth, { ...as, timeoutSec: w.webHealthTimeoutSec, step: plan.health.step });
    log.done(plan.health.id, { summary: `pem_web_health succeeded${attempts > 1 ? ` after ${attempts} attempts` : ''}` });
  }
  if (plan.schema) {
    const primary = primaryOf(d.backendFacts).primary!;
    // Polled through the session that holds the primary's lock: no new session and sudo per poll.
    const count = await waitForSchema(await d.run.connections.session(opening.backend(primary), primary), d.backends.get(primary)!, d.settings.db, d.settings.user,
      w.webBootstrapTimeoutSec, { host, step: plan.schema.step });
    log.done(plan.schema.id, { summary: `the web app created its schema (${count} tables) before any other web host restarted` });
  }
}
