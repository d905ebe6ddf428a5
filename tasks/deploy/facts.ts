// Stage 1 (SPEC 4): facts of every selected host, read by the locked session of each role the
// host has (the engine ran them while taking the run locks); exactly one primary, or exit 2.

import type { Change } from '../../src/change.ts';
import type { Opening } from '../../src/connections.ts';
import { UsageError } from '../../src/errors.ts';
import type { HostPlan, Stage } from '../../src/runner.ts';
import { backendFactsOp, primaryOf, readBackendFacts } from '../facts/backend.ts';
import { readWebFacts, webFactsOp, type WebFacts } from '../facts/web.ts';
import { backendOpening, opening, webOpening } from '../site.ts';
import { STEP } from '../steps.ts';
import type { DeployContext } from './context.ts';

/** The locked sessions: one per role of each selected host, each running that role's facts. */
export function factsOpenings(d: DeployContext): Opening[] {
  return [
    ...d.selectedBackends.map((host) => backendOpening(host, d.backends.get(host)!, backendFactsOp(d.backends.get(host)!, d.target).script)),
    ...d.selectedWeb.map((host) => webOpening(d.run, host, webFactsOp(d.webs.get(host)!).script)),
  ];
}

export function factsStage(d: DeployContext): Stage {
  const hosts = d.run.selected.filter((h) => d.selectedBackends.includes(h) || d.selectedWeb.includes(h));
  return {
    name: 'facts',
    hosts,
    unreachableStopsRun: (host) => d.backends.has(host),
    after() {
      // A site with no primary, or two, is a wrong inventory (or a split brain): nothing has been
      // written yet, so this ends the run as bad input.
      const p = primaryOf(d.backendFacts);
      const all = d.backendFacts.size === d.settings.backends.length;
      if (p.problem && (all || [...d.backendFacts.values()].filter((f) => !f.inRecovery).length > 1)) throw new UsageError(`${p.problem}; nothing was changed`);
    },
    plan: async (host): Promise<HostPlan> => ({
      changes: [
        ...(d.selectedBackends.includes(host) ? [await readBackend(d, host)] : []),
        ...(d.selectedWeb.includes(host) ? [await readWebHost(d, host)] : []),
      ],
    }),
  };
}

async function readBackend(d: DeployContext, host: string): Promise<Change> {
  const { out } = await d.run.connections.opened(opening.backend(host));
  const b = d.backends.get(host)!;
  const f = readBackendFacts(host, d.run.login(host).user, b, d.target, out);
  d.backendFacts.set(host, f);
  return {
    ...info(host, 'server', `${f.serverVersion.split(' ')[0]} ${f.inRecovery ? 'standby' : 'primary'}, ssl ${f.ssl ? 'on' : 'off'}, hba_file ${f.hbaFile}, psql ${f.psql}`),
    ...(f.ssl ? {} : { warnings: ['ssl is off on this server: the hostssl rule cannot match until ssl is turned on'] }),
  };
}

async function readWebHost(d: DeployContext, host: string): Promise<Change> {
  const { out } = await d.run.connections.opened(opening.web(host));
  const w = d.webs.get(host)!;
  const f = readWebFacts(host, w, out);
  d.webFacts.set(host, f);
  return info(host, 'config_local.py', `${w.configLocal}: ${describeFile(f)}; python3 ${f.python3 ? 'present' : 'absent'}`);
}

function describeFile(f: WebFacts): string {
  const file = f.file;
  if (file.state !== 'present') return file.state;
  const link = file.target !== file.path ? ` (a link to ${file.target})` : '';
  return `present${link}, ${file.owner ?? file.uid}:${file.group ?? file.gid} mode ${file.mode}`;
}

function info(host: string, step: string, summary: string): Change {
  return { host, stage: 'facts', id: `${STEP.facts}/${step}`, step, target: host, changed: false, summary };
}
