#!/usr/bin/env node
// Runs the compiled build when it is current (`npm ci` builds it through the `prepare` script),
// else the TypeScript sources through tsx — so an edited checkout never runs stale code, and an
// installed one starts in a fraction of the time (no TypeScript compile at every start).
// Here the engine (src/) is handed its job (tasks/): the engine knows nothing of PEM.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const stamp = `${root}dist/.build-stamp`;

function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

const built = existsSync(stamp) && statSync(stamp).mtimeMs >= Math.max(newestSource(`${root}src`), newestSource(`${root}tasks`));
let main;
let pemJob;
if (built) {
  ({ main } = await import('../dist/src/cli.js'));
  ({ pemJob } = await import('../dist/tasks/job.js'));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli.ts'));
  ({ pemJob } = await import('../tasks/job.ts'));
}
process.exitCode = await main(process.argv.slice(2), pemJob);
