// The PEM job's deploy: facts → database → pg_hba → web, as stages for the engine's runner.
// Wiring only: each stage lives in its own module with its hosts, plan and apply.

import type { Plan, RunContext } from '../../src/job.ts';
import type { Stage } from '../../src/runner.ts';
import type { Serial } from '../../src/rollout.ts';
import { desiredUri, dbTarget } from '../site.ts';
import type { JobSettings, Secrets } from '../settings.ts';
import type { DeployContext } from './context.ts';
import { databaseStage } from './database.ts';
import { factsOpenings, factsStage } from './facts.ts';
import { hbaStage } from './pg-hba.ts';
import { webStage } from './web.ts';

export function deployPlan(run: RunContext, settings: JobSettings, secrets: Secrets, rollout: { serial?: Serial; maxFailPercentage: number }): Plan<Stage> {
  const backends = new Map(settings.backends.map((b) => [b.name, b]));
  const webs = new Map(settings.webhosts.map((w) => [w.name, w]));
  const d: DeployContext = {
    run, settings, secrets, uri: desiredUri(settings, secrets.password), target: dbTarget(settings), backends, webs,
    selectedBackends: run.selected.filter((h) => backends.has(h)),
    selectedWeb: run.selected.filter((h) => webs.has(h)),
    backendFacts: new Map(), webFacts: new Map(), ...rollout,
  };
  return { openings: factsOpenings(d), stages: [factsStage(d), databaseStage(d), hbaStage(d), webStage(d)] };
}
