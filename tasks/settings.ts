// The PEM job's variables (SPEC 3), read from the inventory and the environment and validated
// before anything connects (STYLE 8): every problem is collected and reported together.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import dotenv from 'dotenv';
import { InventoryError, ProblemsError, UsageError } from '../src/errors.ts';
import { hostsOfGroup, type Inventory, type ResolvedHost, type VarValue } from '../src/inventory/index.ts';
import { parseCidr, parseEndpoint, parseHostAddress } from './addresses.ts';
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
  /** ansible_host (else the name): the address the backends see this web host connect from, when it is an IP. */
  address: string;
  configLocal: string;
  configOwner?: string;
  webUser?: string;
  webRestart?: string;
  /** Seconds pem_web_restart may run (pem_web_restart_timeout). */
  webRestartTimeoutSec: number;
  /** pem_web_health: a command retried after a restart until it succeeds, for pem_web_health_timeout seconds. */
  webHealth?: string;
  webHealthTimeoutSec: number;
  /** pem_web_bootstrap_timeout: seconds to wait for the first web host to create the web app's schema. */
  webBootstrapTimeoutSec: number;
  webPython?: string;
  /** pem_db_passfile: the libpq password file the URI points at (the password is then not in the URI). */
  dbPassfile?: string;
  /** pem_db_sslrootcert: the CA file on the web host; the URI then asks for verify-full. */
  dbSslRootCert?: string;
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

/** What reading the job's variables needs: the inventory, each host's variables, the problems so far. */
interface Reader {
  inv: Inventory;
  resolved: Map<string, ResolvedHost>;
  problems: InventoryError[];
}

export function readJobSettings(inv: Inventory, resolved: Map<string, ResolvedHost>): JobSettings {
  const r: Reader = { inv, resolved, problems: [] };
  const bad = (host: string | undefined, reason: string) => problemAt(r, host, undefined, reason);

  const backendNames = inv.groups.has('backends') ? hostsOfGroup(inv, 'backends') : [];
  const webNames = inv.groups.has('webhosts') ? hostsOfGroup(inv, 'webhosts') : [];
  if (backendNames.length === 0) bad(undefined, 'no hosts in group [backends]: list the PEM backend Postgres hosts there');
  if (webNames.length === 0) bad(undefined, 'no hosts in group [webhosts]: list the PEM web-application hosts there');
  // A host in both groups is the usual small site: one PEM server running the backend and a web app.

  const site = readSiteNames(r, [...backendNames, ...webNames]);
  const endpoint = readEndpoint(r, [...backendNames, ...webNames]);
  const backends = backendNames.map((name) => readBackend(r, name));
  const webhosts = webNames.map((name) => readWebhost(r, name));

  const problems = uniqueProblems(r.problems);
  if (problems.length === 1) throw problems[0]!;
  if (problems.length > 1) throw new ProblemsError(problems);
  return { ...site, ...(endpoint ? { endpoint } : {}), backends, webhosts };
}

/**
 * A problem with a variable, at the line that set its value: a group's value is reported once,
 * for its [group:vars] line, not once per host that inherits it.
 */
function problemAt(r: Reader, host: string | undefined, variable: string | undefined, reason: string): void {
  const source = host && variable ? r.resolved.get(host)?.sources?.[variable] : undefined;
  if (source?.group !== undefined) {
    r.problems.push(new InventoryError(r.inv.file, source.line, `${reason} (set in [${source.group}:vars])`));
    return;
  }
  const line = source?.line ?? (host ? r.inv.hosts.get(host)?.line : undefined);
  r.problems.push(new InventoryError(r.inv.file, line, host ? `host ${host}: ${reason}` : reason));
}

function uniqueProblems(problems: InventoryError[]): InventoryError[] {
  const seen = new Set<string>();
  return problems.filter((p) => !seen.has(p.message) && Boolean(seen.add(p.message)));
}

/** A variable as text; undefined when unset or empty (its default applies). A list or a dict is a problem. */
function textVar(r: Reader, host: string, name: string): string | undefined {
  const value = r.resolved.get(host)!.vars[name];
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'object') {
    problemAt(r, host, name, `${name} must be a single value, got ${JSON.stringify(value)}`);
    return undefined;
  }
  return String(value);
}

/** A value that must be the same everywhere: the first host's, after insisting that all agree. */
function siteVar(r: Reader, hosts: string[], name: string, fallback: string): { value: string; host?: string } {
  const firstHost = new Map<string, string>();
  for (const h of hosts) {
    const value = textVar(r, h, name) ?? fallback;
    if (!firstHost.has(value)) firstHost.set(value, h);
  }
  const values = [...firstHost.keys()];
  if (values.length > 1) {
    problemAt(r, firstHost.get(values[1]!), name, `${name} differs between hosts (${values.join(', ')}); it must be one value for the site`);
  }
  const value = values[0] ?? fallback;
  const host = firstHost.get(value);
  return host !== undefined && textVar(r, host, name) !== undefined ? { value, host } : { value };
}

function readSiteNames(r: Reader, hosts: string[]): Pick<JobSettings, 'db' | 'user' | 'grantee' | 'revokeConnect'> {
  const db = siteVar(r, hosts, 'pem_settings_db', 'pem_user_settings');
  const user = siteVar(r, hosts, 'pem_settings_user', 'pem_user_settings');
  const grantee = siteVar(r, hosts, 'pem_settings_grantee', 'pem_user');
  const revoke = siteVar(r, hosts, 'pem_settings_revoke_connect', 'pem,postgres,edb');
  const revokeConnect = revoke.value.split(',').map((s) => s.trim()).filter(Boolean);
  const named: [string, { value: string; host?: string }][] = [['pem_settings_db', db], ['pem_settings_user', user],
    ['pem_settings_grantee', grantee], ...revokeConnect.map((d): [string, { value: string; host?: string }] => ['pem_settings_revoke_connect', { ...revoke, value: d }])];
  for (const [name, { value, host }] of named) {
    const problem = validateIdentifier(value, name);
    if (problem) problemAt(r, host, name, problem);
  }
  if (revokeConnect.includes(db.value)) problemAt(r, revoke.host, 'pem_settings_revoke_connect', `pem_settings_revoke_connect must not name the settings database ${db.value}`);
  return { db: db.value, user: user.value, grantee: grantee.value, revokeConnect };
}

function readEndpoint(r: Reader, hosts: string[]): JobSettings['endpoint'] {
  const endpoint = siteVar(r, hosts, 'pem_db_endpoint', '');
  if (!endpoint.value) return undefined;
  const parsed = parseEndpoint(endpoint.value);
  if (parsed.ok) return parsed.value;
  problemAt(r, endpoint.host, 'pem_db_endpoint', `pem_db_endpoint: ${parsed.reason}`);
  return undefined;
}

function readBackend(r: Reader, name: string): BackendSettings {
  const v = r.resolved.get(name)!.vars;
  const dbAddress = readDbAddress(r, name);
  const pgPort = port(v['pg_port'], 5432, name, 'pg_port', (h, reason) => problemAt(r, h, 'pg_port', reason));
  const pgOsUser = textVar(r, name, 'pg_os_user') ?? 'postgres';
  if (!SAFE_USER.test(pgOsUser)) problemAt(r, name, 'pg_os_user', `pg_os_user "${pgOsUser}" is not a valid user name`);
  const paths = { pgSocketDir: 'pg_socket_dir', pgBinDir: 'pg_bin_dir', pgHbaFile: 'pg_hba_file' } as const;
  const found: Partial<Record<keyof typeof paths, string>> = {};
  for (const [key, variable] of Object.entries(paths) as [keyof typeof paths, string][]) {
    if (v[variable] === undefined) continue;
    const value = String(v[variable]);
    if (!SAFE_PATH.test(value)) problemAt(r, name, variable, `${snake(key)} must be an absolute path of plain characters, got "${value}"`);
    found[key] = value;
  }
  return { name, dbAddress, pgPort, pgOsUser, webSubnets: readWebSubnets(r, name), ...found };
}

/** pem_db_address, else ansible_host, else the inventory name: the address the URI gives for this backend. */
function readDbAddress(r: Reader, name: string): string {
  const v = r.resolved.get(name)!.vars;
  const variable = ['pem_db_address', 'ansible_host'].find((k) => v[k] !== undefined && v[k] !== null && v[k] !== '');
  const text = variable ? textVar(r, name, variable) ?? name : name;
  const parsed = parseHostAddress(text);
  if (parsed.ok) return parsed.value.text;
  const what = variable === 'pem_db_address' ? 'pem_db_address'
    : variable ? 'ansible_host (the database address when pem_db_address is not set)'
      : 'the inventory name (the database address when neither pem_db_address nor ansible_host is set)';
  problemAt(r, name, variable, `${what}: ${parsed.reason}`);
  return text;
}

/** pem_web_subnet: CIDRs, comma-separated, each written back canonical. */
function readWebSubnets(r: Reader, name: string): string[] {
  const text = textVar(r, name, 'pem_web_subnet');
  if (text === undefined) {
    problemAt(r, name, undefined, 'pem_web_subnet is required: the CIDR(s) of the web hosts as Postgres sees them');
    return [];
  }
  return text.split(',').map((s) => s.trim()).filter(Boolean).map((cidr) => {
    const parsed = parseCidr(cidr);
    if (parsed.ok) return parsed.value;
    problemAt(r, name, 'pem_web_subnet', `pem_web_subnet: ${parsed.reason}`);
    return cidr;
  });
}

function readWebhost(r: Reader, name: string): WebSettings {
  const v = r.resolved.get(name)!.vars;
  const configLocal = textVar(r, name, 'pem_config_local') ?? '/usr/edb/pem/web/config_local.py';
  if (!SAFE_PATH.test(configLocal)) problemAt(r, name, 'pem_config_local', `pem_config_local must be an absolute path of plain characters, got "${configLocal}"`);
  const configOwner = v['pem_config_owner'] === undefined ? undefined : String(v['pem_config_owner']);
  if (configOwner !== undefined && !/^[a-z_][a-z0-9_.-]*:[a-z_][a-z0-9_.-]*$/i.test(configOwner)) problemAt(r, name, 'pem_config_owner', `pem_config_owner must be user:group, got "${configOwner}"`);
  const webUser = v['pem_web_user'] === undefined ? undefined : String(v['pem_web_user']);
  if (webUser !== undefined && !SAFE_USER.test(webUser)) problemAt(r, name, 'pem_web_user', `pem_web_user "${webUser}" is not a valid user name`);
  const webPython = v['pem_web_python'] === undefined ? undefined : String(v['pem_web_python']);
  if (webPython !== undefined && !SAFE_PATH.test(webPython) && !/^python3(\.\d+)?$/.test(webPython)) problemAt(r, name, 'pem_web_python', `pem_web_python must be an absolute path or python3, got "${webPython}"`);
  return {
    name, ...readRollout(r, name), ...readDbFiles(r, name),
    address: textVar(r, name, 'ansible_host') ?? textVar(r, name, 'ansible_ssh_host') ?? name, configLocal,
    ...(configOwner ? { configOwner } : {}),
    ...(webUser ? { webUser } : {}),
    // The restart command is the operator's own shell command: run as given, never parsed.
    ...(v['pem_web_restart'] !== undefined && v['pem_web_restart'] !== '' ? { webRestart: String(v['pem_web_restart']) } : {}),
    ...(webPython ? { webPython } : {}),
  };
}

/** How the web app is restarted and checked (SPEC 4 stage 4, the rollout). */
function readRollout(r: Reader, name: string): Pick<WebSettings, 'webRestartTimeoutSec' | 'webHealth' | 'webHealthTimeoutSec' | 'webBootstrapTimeoutSec'> {
  const v = r.resolved.get(name)!.vars;
  const seconds = (variable: string, fallback: number) => port(v[variable], fallback, name, variable, (h, reason) => problemAt(r, h, variable, reason), 86400);
  const health = textVar(r, name, 'pem_web_health');
  return {
    webRestartTimeoutSec: seconds('pem_web_restart_timeout', 300),
    // The health command is the operator's own shell command, like pem_web_restart: run as given.
    ...(health ? { webHealth: health } : {}),
    webHealthTimeoutSec: seconds('pem_web_health_timeout', 120),
    webBootstrapTimeoutSec: seconds('pem_web_bootstrap_timeout', 300),
  };
}

/** Files on the web host the URI names: a libpq password file, a CA file. */
function readDbFiles(r: Reader, name: string): Pick<WebSettings, 'dbPassfile' | 'dbSslRootCert'> {
  const out: Pick<WebSettings, 'dbPassfile' | 'dbSslRootCert'> = {};
  for (const [key, variable] of [['dbPassfile', 'pem_db_passfile'], ['dbSslRootCert', 'pem_db_sslrootcert']] as const) {
    const value = textVar(r, name, variable);
    if (value === undefined) continue;
    if (!SAFE_PATH.test(value)) problemAt(r, name, variable, `${variable} must be an absolute path of plain characters, got "${value}"`);
    out[key] = value;
  }
  if (out.dbPassfile && textVar(r, name, 'pem_web_user') === undefined) {
    problemAt(r, name, 'pem_db_passfile', 'pem_db_passfile needs pem_web_user: libpq reads the file only when it belongs to the web app\'s user and nobody else can read it');
  }
  return out;
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
