#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx, so `npm ci` is the whole install:
// no build step stands between a checkout and a working command.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../src/cli.ts');
process.exitCode = await main(process.argv.slice(2));
