// The PEM web app's side of the lab's web hosts: a Python that imports the web app's pinned
// SQLAlchemy (for pem_web_python) and a stand-in for the web app's restart and health check
// (for pem_web_restart / pem_web_health). Both live in the lab's directory, which every host
// sees at the same path (a checkout under /tmp would be hidden by the hosts' own /tmp).
import { access, chmod, copyFile, cp, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The web app's parser with its pinned SQLAlchemy 2.0.52 (SPEC 4.4: ../shared/webapp-consumer beside the checkout). */
export const SHARED_CONSUMER = fileURLToPath(new URL('../../../shared/webapp-consumer', import.meta.url));
const STAND_IN = fileURLToPath(new URL('./webapp/pem-web.py', import.meta.url));

export interface WebTools {
  /** Wrapper: /usr/bin/python3 with the consumer's vendor directory on PYTHONPATH (`import sqlalchemy` works). */
  python: string;
  /** consumer.py and its vendor directory, copied where helpers.ts's webappConsumer() puts them. */
  consumer: string;
  vendor: string;
  /** The stand-in web app (test/lab/webapp/pem-web.py), executable. */
  standIn: string;
  /** Shell commands, as the inventory carries them. */
  restart: string;
  health: string;
}

/** A word for sh: bare when it is safe, else single-quoted. */
export function shWord(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function pythonWrapper(vendor: string): string {
  return [
    '#!/bin/sh',
    "# pem_web_python of the pem-settings lab's web hosts: Debian's python3 (python3-psycopg) with the",
    "# PEM web app's pinned SQLAlchemy 2.0.52 (shared/webapp-consumer/vendor) importable.",
    `PYTHONPATH=${shWord(vendor)}\${PYTHONPATH:+:$PYTHONPATH}`,
    'export PYTHONPATH',
    'exec /usr/bin/python3 "$@"',
    '',
  ].join('\n');
}

export async function installWebTools(labDir: string, opts: { lazy: boolean }): Promise<WebTools> {
  await access(join(SHARED_CONSUMER, 'consumer.py')).catch(() => {
    throw new Error(`lab: the web app's parser is missing: ${SHARED_CONSUMER}/consumer.py (webPython and webApp need it)`);
  });
  const consumerDir = join(labDir, 'webapp-consumer');
  const dir = join(labDir, 'webapp');
  await cp(SHARED_CONSUMER, consumerDir, { recursive: true, force: false, errorOnExist: false });
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const vendor = join(consumerDir, 'vendor');
  const python = join(dir, 'python3');
  await writeFile(python, pythonWrapper(vendor), { mode: 0o755 });
  const standIn = join(dir, 'pem-web');
  await copyFile(STAND_IN, standIn);
  await chmod(standIn, 0o755);
  return {
    python,
    consumer: join(consumerDir, 'consumer.py'),
    vendor,
    standIn,
    restart: `${shWord(standIn)} restart${opts.lazy ? ' --lazy' : ''}`,
    health: `${shWord(standIn)} health`,
  };
}
