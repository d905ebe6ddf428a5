// The recap after a run: one row per host, Ansible's columns, then warnings; or the --json
// document whose shape scripts rely on (issue 9).

import type { HostRecap } from '../runner.ts';

export function renderRecap(hosts: Map<string, HostRecap>): string {
  const names = [...hosts.keys()];
  const width = Math.max(4, ...names.map((n) => n.length));
  const lines = ['', 'RECAP'];
  for (const [name, r] of hosts) {
    lines.push(`${name.padEnd(width)} : ok=${r.ok}  changed=${r.changed}  failed=${r.failed}  unreachable=${r.unreachable ? 1 : 0}  skipped=${r.skipped}`);
  }
  const warnings = [...hosts].flatMap(([name, r]) => r.steps.flatMap((s) => (s.warnings ?? []).map((w) => `${name}: ${s.step}: ${w}`)));
  if (warnings.length) lines.push('', 'WARNINGS', ...warnings.map((w) => `- ${w}`));
  const failures = [...hosts].flatMap(([name, r]) => r.steps.filter((s) => s.status === 'failed').map((s) => `${name}: ${s.stage}/${s.step}: ${s.message}`));
  if (failures.length) lines.push('', 'FAILURES', ...failures.map((f) => `- ${f}`));
  return lines.join('\n') + '\n';
}

export function recapJson(runId: string, hosts: Map<string, HostRecap>, extra: Record<string, unknown> = {}): string {
  const doc = {
    run: runId,
    ...extra,
    hosts: Object.fromEntries([...hosts].map(([name, r]) => [name, {
      ok: r.ok, changed: r.changed, failed: r.failed, skipped: r.skipped, unreachable: r.unreachable,
      steps: r.steps.map((s) => ({ stage: s.stage, step: s.step, status: s.status, message: s.message, ...(s.warnings ? { warnings: s.warnings } : {}) })),
    }])),
  };
  return JSON.stringify(doc, null, 2) + '\n';
}
