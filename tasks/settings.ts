// The PEM job's variables (SPEC 3), read from the inventory and the environment and validated
// before anything connects (STYLE 8): every problem is collected and reported together.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import dotenv from 'dotenv';
import ipaddr from 'ipaddr.js';
import { InventoryError, ProblemsError, UsageError } from '../src/errors.ts';
import { hostsOfGroup, type Inventory, type ResolvedHost, type VarValue } from '../src/inventory/index.ts';
import { validateIdentifier } from './database/sql.ts';
import { effectiveAssignment, readEnvAssignments, type EnvAssignment } from './env-file.ts';

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
  configLocal: string;
  configOwner?: string;
  webUser?: string;
  webRestart?: string;
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
  const both = backendNames.filter((b) => webNames.includes(b));
  if (both.length) bad(both[0], 'is in both [backends] and [webhosts]; a host must be one or the other');

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
    return {
      name, configLocal,
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

/**
 * PEM_SETTINGS_PASSWORD and PEM_BECOME_PASSWORD from the environment, else from a .env file
 * beside the inventory. Every problem is reported together (UsageError, or ProblemsError for
 * several), and no message quotes a password.
 */
export function readSecrets(inventoryPath: string, options: { allowWeakPassword: boolean; env?: NodeJS.ProcessEnv; optional?: boolean }): Secrets {
  const env = options.env ?? process.env;
  const dotEnvPath = join(dirname(inventoryPath), '.env');
  const dotEnv = readDotEnv(dotEnvPath);
  const problems: UsageError[] = [];
  const password = secretFrom('PEM_SETTINGS_PASSWORD', env, dotEnv, dotEnvPath, problems);
  const become = secretFrom('PEM_BECOME_PASSWORD', env, dotEnv, dotEnvPath, problems);

  if (password === undefined && !options.optional) {
    problems.push(new UsageError(`PEM_SETTINGS_PASSWORD is not set: put it in the environment or in ${dotEnvPath}`));
  } else if (password && !password.cut) {
    if (password.value.length === 0) problems.push(new UsageError('PEM_SETTINGS_PASSWORD is empty'));
    else if ([...password.value].length < MIN_PASSWORD_LENGTH && !options.allowWeakPassword) {
      problems.push(new UsageError(`PEM_SETTINGS_PASSWORD is shorter than ${MIN_PASSWORD_LENGTH} characters (use --allow-weak-password to accept it)`));
    }
    if (/[\0\r\n]/.test(password.value)) problems.push(new UsageError(`PEM_SETTINGS_PASSWORD (from ${password.from}) must not contain NUL or line breaks${password.lineHint}`));
  }
  // sudo -S reads the password up to the first line break; whatever follows stays on its
  // standard input, which is the shell that runs the command as root.
  if (become && !become.cut && /[\0\r\n]/.test(become.value)) {
    problems.push(new UsageError(`PEM_BECOME_PASSWORD (from ${become.from}) must not contain a line break or NUL: sudo reads one line as the password and the rest would be run by the shell${become.lineHint}`));
  }

  if (problems.length === 1) throw problems[0]!;
  if (problems.length > 1) throw new ProblemsError(problems);
  return { password: password?.value ?? '', ...(become?.value ? { becomePassword: become.value } : {}) };
}

interface DotEnv {
  values: Record<string, string>;
  assignments: EnvAssignment[];
}

/** The .env file beside the inventory, or undefined when there is none. */
function readDotEnv(path: string): DotEnv | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new UsageError(`cannot read ${path}: ${code ?? (e as Error).message}`);
  }
  return { values: dotenv.parse(text), assignments: readEnvAssignments(text) };
}

interface SecretSource {
  value: string;
  /** Where it came from, for messages: "the environment" or "<path>:<line>". */
  from: string;
  /** For a value from .env that spans lines: what probably caused it. */
  lineHint: string;
  /** The .env value was cut at a `#` (already reported). */
  cut: boolean;
}

/**
 * A secret from the environment, else from .env. Only the value that would be used is checked:
 * a .env line that the environment overrides deploys nothing.
 */
function secretFrom(key: string, env: NodeJS.ProcessEnv, dotEnv: DotEnv | undefined, path: string, problems: UsageError[]): SecretSource | undefined {
  const fromEnv = env[key];
  if (fromEnv !== undefined) return { value: fromEnv, from: 'the environment', lineHint: '', cut: false };
  const value = dotEnv?.values[key];
  if (value === undefined) return undefined;
  const at = effectiveAssignment(dotEnv!.assignments, key);
  const from = at ? `${path}:${at.line}` : path;
  const cut = at?.cutAtHash ?? false;
  if (cut) {
    problems.push(new UsageError(
      `${from}: the value of ${key} is not quoted and has a '#' in it; dotenv ends an unquoted value at '#' and drops the rest as a comment, ` +
      `so the password would be cut short. Quote it: ${key}='...' (or "..." if it contains a ')`,
    ));
  }
  const lineHint = ' (in .env: a quote left open runs on to the next lines, and \\n in double quotes is a line break)';
  return { value, from, lineHint, cut };
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

function port(value: VarValue | undefined, fallback: number, host: string, name: string, bad: (h: string, r: string) => void): number {
  if (value === undefined || value === null || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    bad(host, `${name} must be a port number, got "${String(value)}"`);
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
