// What the stages of one deploy share: the run, the settings, and the facts the first stage
// reads for the later ones.

import type { RunContext } from '../../src/job.ts';
import type { Serial } from '../../src/rollout.ts';
import type { SettingsUri } from '../config-local/uri.ts';
import type { DbTarget } from '../database/facts.ts';
import type { BackendFacts } from '../facts/backend.ts';
import type { WebFacts } from '../facts/web.ts';
import type { BackendSettings, JobSettings, Secrets, WebSettings } from '../settings.ts';

export interface DeployContext {
  run: RunContext;
  settings: JobSettings;
  secrets: Secrets;
  uri: SettingsUri;
  target: DbTarget;
  backends: Map<string, BackendSettings>;
  webs: Map<string, WebSettings>;
  /** Selected backends and web hosts, in inventory order (a host may be both). */
  selectedBackends: string[];
  selectedWeb: string[];
  backendFacts: Map<string, BackendFacts>;
  webFacts: Map<string, WebFacts>;
  /** --serial and --max-fail-percentage for the web hosts' rollout. */
  serial?: Serial;
  maxFailPercentage: number;
}
