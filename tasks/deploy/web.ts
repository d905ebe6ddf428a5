// Stage 4 (SPEC 4): CONFIG_DATABASE_URI in config_local.py on every web host, then the web
// app's restart when the file changed (or when an earlier run wrote it but its restart never
// completed). Planning is pure (config-local/edit.ts on the file's bytes, uri.ts); writing is
// files/config-local.ts, restarting restart.ts.

import ipaddr from 'ipaddr.js';
import type { Change } from '../../src/change.ts';
import { HostError } from '../../src/errors.ts';
import { ownerOf } from '../../src/remote/read-files.ts';
import type { HostPlan, Stage } from '../../src/runner.ts';
import { lastRunOfStep, type RunRecord } from '../../src/records.ts';
import { ConfigParseError, pythonStringLiteral, setConfigValue } from '../config-local/edit.ts';
import { maskConfigSecrets } from '../config-local/mask.ts';
import type { SettingsUri } from '../config-local/uri.ts';
import type { WebFacts } from '../facts/web.ts';
import { backupSuffix } from '../files/backup.ts';
import { readerWarning, writeConfigLocal, type ConfigWrite } from '../files/config-local.ts';
import { bytesAsText, displayText, insertable, textAsBytes } from '../files/text.ts';
import { restartWebApp } from '../restart.ts';
import type { WebSettings } from '../settings.ts';
import { STEP, stepIdOf } from '../steps.ts';
import type { DeployContext } from './context.ts';
import { sha256 } from '../../src/remote/read-files.ts';

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
    path: w.configLocal, expect: exists ? { sha256: f.sha256, target: f.target } : 'absent', bytes: after, mode: mode.toString(8),
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
  const subnets = [...new Set(d.settings.backends.flatMap((b) => b.webSubnets))];
  return {
    name: 'web',
    get hosts() {
      return d.selectedWeb.filter((h) => d.webFacts.has(h));
    },
    async plan(host): Promise<HostPlan> {
      const w = d.webs.get(host)!;
      const plan = planWebHost(host, w, d.webFacts.get(host)!, d.uri, subnets, pendingRestart(d.run.records, host));
      return {
        changes: [plan.file, ...(plan.restart ? [plan.restart] : [])],
        async apply(changed, log) {
          const conn = await d.run.connections.get(host);
          const user = d.run.login(host).becomeUser;
          if (plan.write) {
            const r = await writeConfigLocal(conn, plan.write, { ...(user ? { user } : {}), step: plan.file.step, backupSuffix: backupSuffix(d.run.runId) });
            const record: WebFileRecord = {
              file: w.configLocal, target: r.target, created: plan.write.expect === 'absent', backup: r.backup ?? null,
              sha256Before: plan.write.expect === 'absent' ? null : plan.write.expect.sha256, sha256After: sha256(plan.write.bytes),
              owner: plan.write.owner ?? '', mode: plan.write.mode ?? '',
            };
            const warning = readerWarning(r);
            log.done(plan.file.id, { record, ...(warning ? { warnings: [warning] } : {}) });
          }
          if (plan.restart && w.webRestart && changed.includes(plan.restart)) {
            await restartWebApp(conn, w.webRestart, { ...(user ? { user } : {}), timeoutSec: w.webRestartTimeoutSec, step: plan.restart.step, fileState: 'config_local.py was updated' });
            log.done(plan.restart.id, { record: { exitCode: 0 } });
          }
        },
      };
    },
  };
}
