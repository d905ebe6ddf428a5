// The PEM job, as the engine sees it (src/job.ts): its settings and secrets, read and checked
// before anything connects, and the stages of deploy, rollback and verify. bin/ hands it to the
// engine.

import type { Job, JobInput, PreparedJob } from '../src/job.ts';
import { deployPlan } from './deploy/index.ts';
import { rollbackPlan } from './rollback/index.ts';
import { readJobSettings, readSecrets } from './settings.ts';
import { desiredUri } from './site.ts';
import { verifyPlan } from './verify/index.ts';
import { parseMaxFail, parseSerial } from '../src/rollout.ts';

function opt(input: JobInput, name: string): string | undefined {
  const v = input.options[name];
  return typeof v === 'string' ? v : undefined;
}

export const pemJob: Job = {
  prepare(input: JobInput): PreparedJob {
    const settings = readJobSettings(input.inventory, input.resolved);
    // Rollback undoes a recorded run: it needs no role password. Verify judges the one in place,
    // so the length policy is deploy's business alone.
    const secrets = readSecrets(input.inventoryPath, {
      allowWeakPassword: input.command !== 'deploy' || Boolean(input.options['allowWeakPassword']),
      optional: input.command === 'rollback',
      env: input.env,
    });
    // A URI the web app could not take is bad input: exit 2 before anything connects.
    if (input.command !== 'rollback') desiredUri(settings, secrets.password);
    // Checked before anything connects, like every other input.
    const rollout = { ...(input.command === 'deploy' ? { serial: parseSerial(opt(input, 'serial')) } : {}), maxFailPercentage: parseMaxFail(opt(input, 'maxFailPercentage')) };
    const hosts = [...input.inventory.hosts.keys()].filter((h) =>
      settings.backends.some((b) => b.name === h) || settings.webhosts.some((w) => w.name === h));
    return {
      hosts,
      secrets: secrets.password ? [secrets.password] : [],
      ...(secrets.becomePassword ? { becomePassword: secrets.becomePassword } : {}),
      deploy: (run) => deployPlan(run, settings, secrets, rollout),
      rollback: (run, request) => rollbackPlan(run, settings, request),
      verify: (run) => verifyPlan(run, settings, secrets),
    };
  },
};
