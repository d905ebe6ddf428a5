// The PEM job's variables (SPEC 3), read from the inventory and the environment and validated
// before anything connects (STYLE 8): every problem is collected and reported together.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import dotenv from 'dotenv';
import ipaddr from 'ipaddr.js';
import { InventoryError, ProblemsError, UsageError } from '../src/errors.ts';
import { hostsOfGroup, type Inventory, type ResolvedHost, type VarValue } from '../src/inventory/index.ts';
import { validateIdentifier } from './database/sql.ts';

export const MIN_PASSWORD_LENGTH = 12;

export interface BackendSettings {
  name: string;
  /** Address the web hosts use to reach this backend (pem_db_address, else ansible_host). */
  dbAddress: string;
  pgPort: number;
  pgOsUser: string;
  pgSocketDir?: string;
  pgBinDir?: string;
  pgHbaFile?: string;
  webSubnets: string[];
}

export interface WebSettings {
  name: string;
  /** ansible_host (else the name): the address the backends see this web host connect from, when it is an IP. */
  address: string;
  configLocal: string;
  configOwner?: string;
  webUser?: string;
  webRestart?: string;
  /** Seconds pem_web_restart may run (pem_web_restart_timeout). */
  webRestartTimeoutSec: number;
  webPython?: string;
}

export interface JobSettings {
  db: string;
  user: string;
  grantee: string;
  revokeConnect: string[];
  endpoint?: { host: string; port: number };
  /** All backends of the inventory, in inventory order (the URI lists them all, whatever the limit). */
  backends: BackendSettings[];
  webhosts: WebSettings[];
}

export interface Secrets {
  password: string;
  becomePassword?: string;
}

const SAFE_PATH = /^\/[A-Za-z0-9._+@/-]*$/;
const SAFE_USER = /^[a-z_][a-z0-9_.-]*\$?$/i;
const SAFE_HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|[0-9a-fA-F:.]+)$/;

export function readJobSettings(inv: Inventory, resolved: Map<string, ResolvedHost>): JobSettings {
  const problems: Error[] = [];
  const bad = (host: string | undefined, reason: string) =>
    problems.push(new InventoryError(inv.file, lineOf(inv, host), host ? `host ${host}: ${reason}` : reason));

  const backendNames = inv.groups.has('backends') ? hostsOfGroup(inv, 'backends') : [];
  const webNames = inv.groups.has('webhosts') ? hostsOfGroup(inv, 'webhosts') : [];
  if (backendNames.length === 0) bad(undefined, 'no hosts in group [backends]: list the PEM backend Postgres hosts there');
  if (webNames.length === 0) bad(undefined, 'no hosts in group [webhosts]: list the PEM web-application hosts there');
  // A host in both groups is the usual small site: one PEM server running the backend and a web app.

  // Names that must be the same everywhere: take them from the first backend, insist on agreement.
  const siteVar = (name: string, fallback: string): string => {
    const values = new Set([...backendNames, ...webNames].map((h) => str(resolved.get(h)!.vars[name], fallback)));
    if (values.size > 1) bad(undefined, `${name} differs between hosts (${[...values].join(', ')}); it must be one value for the site`);
    return [...values][0] ?? fallback;
  };
  const db = siteVar('pem_settings_db', 'pem_user_settings');
  const user = siteVar('pem_settings_user', 'pem_user_settings');
  const grantee = siteVar('pem_settings_grantee', 'pem_user');
  const revokeConnect = siteVar('pem_settings_revoke_connect', 'pem,postgres,edb').split(',').map((s) => s.trim()).filter(Boolean);
  for (const [name, value] of [['pem_settings_db', db], ['pem_settings_user', user], ['pem_settings_grantee', grantee],
    ...revokeConnect.map((d) => ['pem_settings_revoke_connect', d])] as [string, string][]) {
    const problem = validateIdentifier(value, name);
    if (problem) bad(undefined, problem);
  }
  if (revokeConnect.includes(db)) bad(undefined, `pem_settings_revoke_connect must not name the settings database ${db}`);

  let endpoint: JobSettings['endpoint'];
  const endpointText = siteVar('pem_db_endpoint', '');
  if (endpointText) {
    const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(endpointText);
    if (!m || !SAFE_HOST.test(m[1]!.replace(/^\[|\]$/g, '')) || Number(m[2]) > 65535) {
      bad(undefined, `pem_db_endpoint must be host:port, got "${endpointText}"`);
    } else endpoint = { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
  }

  const backends = backendNames.map((name): BackendSettings => {
    const v = resolved.get(name)!.vars;
    const dbAddress = str(v['pem_db_address'], str(v['ansible_host'], name));
    if (!SAFE_HOST.test(dbAddress)) bad(name, `pem_db_address "${dbAddress}" is not a host name or IP address`);
    const pgPort = port(v['pg_port'], 5432, name, 'pg_port', bad);
    const pgOsUser = str(v['pg_os_user'], 'postgres');
    if (!SAFE_USER.test(pgOsUser)) bad(name, `pg_os_user "${pgOsUser}" is not a valid user name`);
    const subnetText = str(v['pem_web_subnet'], '');
    if (!subnetText) bad(name, 'pem_web_subnet is required: the CIDR(s) of the web hosts as Postgres sees them');
    const webSubnets = subnetText.split(',').map((s) => s.trim()).filter(Boolean);
    for (const cidr of webSubnets) {
      if (!isCidr(cidr)) bad(name, `pem_web_subnet: "${cidr}" is not a CIDR (like 10.0.2.0/24)`);
    }
    const paths = { pgSocketDir: v['pg_socket_dir'], pgBinDir: v['pg_bin_dir'], pgHbaFile: v['pg_hba_file'] };
    for (const [key, value] of Object.entries(paths)) {
      if (value !== undefined && !SAFE_PATH.test(String(value))) bad(name, `${snake(key)} must be an absolute path of plain characters, got "${String(value)}"`);
    }
    return {
      name, dbAddress, pgPort, pgOsUser, webSubnets,
      ...(paths.pgSocketDir !== undefined ? { pgSocketDir: String(paths.pgSocketDir) } : {}),
      ...(paths.pgBinDir !== undefined ? { pgBinDir: String(paths.pgBinDir) } : {}),
      ...(paths.pgHbaFile !== undefined ? { pgHbaFile: String(paths.pgHbaFile) } : {}),
    };
  });

  const webhosts = webNames.map((name): WebSettings => {
    const v = resolved.get(name)!.vars;
    const configLocal = str(v['pem_config_local'], '/usr/edb/pem/web/config_local.py');
    if (!SAFE_PATH.test(configLocal)) bad(name, `pem_config_local must be an absolute path of plain characters, got "${configLocal}"`);
    const configOwner = v['pem_config_owner'] === undefined ? undefined : String(v['pem_config_owner']);
    if (configOwner !== undefined && !/^[a-z_][a-z0-9_.-]*:[a-z_][a-z0-9_.-]*$/i.test(configOwner)) bad(name, `pem_config_owner must be user:group, got "${configOwner}"`);
    const webUser = v['pem_web_user'] === undefined ? undefined : String(v['pem_web_user']);
    if (webUser !== undefined && !SAFE_USER.test(webUser)) bad(name, `pem_web_user "${webUser}" is not a valid user name`);
    const webPython = v['pem_web_python'] === undefined ? undefined : String(v['pem_web_python']);
    if (webPython !== undefined && !SAFE_PATH.test(webPython) && !/^python3(\.\d+)?$/.test(webPython)) bad(name, `pem_web_python must be an absolute path or python3, got "${webPython}"`);
    const webRestartTimeoutSec = port(v['pem_web_restart_timeout'], 300, name, 'pem_web_restart_timeout', bad, 86400);
    return {
      name, address: str(v['ansible_host'], str(v['ansible_ssh_host'], name)), configLocal, webRestartTimeoutSec,
      ...(configOwner ? { configOwner } : {}),
      ...(webUser ? { webUser } : {}),
      // The restart command is the operator's own shell command: run as given, never parsed.
      ...(v['pem_web_restart'] !== undefined && v['pem_web_restart'] !== '' ? { webRestart: String(v['pem_web_restart']) } : {}),
      ...(webPython ? { webPython } : {}),
    };
  });

  if (problems.length === 1) throw problems[0]!;
  if (problems.length > 1) throw new ProblemsError(problems);
  return { db, user, grantee, revokeConnect, ...(endpoint ? { endpoint } : {}), backends, webhosts };
}

/** PEM_SETTINGS_PASSWORD from the environment, else from a .env file beside the inventory. */
export function readSecrets(inventoryPath: string, options: { allowWeakPassword: boolean; env?: NodeJS.ProcessEnv; optional?: boolean }): Secrets {
  const env = options.env ?? process.env;
  const dotEnvPath = join(dirname(inventoryPath), '.env');
  const fromFile = existsSync(dotEnvPath) ? dotenv.parse(readFileSync(dotEnvPath)) : {};
  const password = env['PEM_SETTINGS_PASSWORD'] ?? fromFile['PEM_SETTINGS_PASSWORD'];
  const becomePassword = env['PEM_BECOME_PASSWORD'] ?? fromFile['PEM_BECOME_PASSWORD'];
  if (password === undefined && options.optional) return { password: '', ...(becomePassword ? { becomePassword } : {}) };
  if (password === undefined) {
    throw new UsageError(`PEM_SETTINGS_PASSWORD is not set: put it in the environment or in ${dotEnvPath}`);
  }
  if (password.length === 0) throw new UsageError('PEM_SETTINGS_PASSWORD is empty');
  if ([...password].length < MIN_PASSWORD_LENGTH && !options.allowWeakPassword) {
    throw new UsageError(`PEM_SETTINGS_PASSWORD is shorter than ${MIN_PASSWORD_LENGTH} characters (use --allow-weak-password to accept it)`);
  }
  if (/[\0\r\n]/.test(password)) throw new UsageError('PEM_SETTINGS_PASSWORD must not contain NUL or line breaks');
  return { password, ...(becomePassword ? { becomePassword } : {}) };
}

function isCidr(text: string): boolean {
  try {
    ipaddr.parseCIDR(text);
    return true;
  } catch {
    return false;
  }
}

function str(value: VarValue | undefined, fallback: string): string {
  return value === undefined || value === null || value === '' ? fallback : String(value);
}

function port(value: VarValue | undefined, fallback: number, host: string, name: string, bad: (h: string, r: string) => void, max = 65535): number {
  if (value === undefined || value === null || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) {
    bad(host, max === 65535 ? `${name} must be a port number, got "${String(value)}"` : `${name} must be a whole number of seconds from 1 to ${max}, got "${String(value)}"`);
    return fallback;
  }
  return n;
}

function snake(key: string): string {
  return key.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
}

function lineOf(inv: Inventory, host: string | undefined): number | undefined {
  return host ? inv.hosts.get(host)?.line : undefined;
}
