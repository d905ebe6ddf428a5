// The PEM job's verify (SPEC 5): changes nothing, proves from each web host that the settings
// database works the way the web app will use it, and reports drift from what deploy would do.
// Stages: "facts" on the selected backends (server facts, then pg_hba.conf and catalog drift,
// planned exactly as deploy plans them), "web" on the selected web hosts (the file's URI, the
// web app's parser, URI drift, and a pg session to every backend of the URI through the web
// host's SSH connection). Reading and judging live in tasks/verify/*; this is wiring.

import type { CheckStage, Report } from '../../src/checks.ts';
import type { Connection } from '../../src/connection.ts';
import type { Opening } from '../../src/connections.ts';
import { HostError } from '../../src/errors.ts';
import type { Plan, RunContext } from '../../src/job.ts';
import { OpError, batch, nothing, type Output, type RemoteOp } from '../../src/remote/op.ts';
import { canRead, type CanRead } from '../../src/remote/probe.ts';
import { readFiles, type FileFact } from '../../src/remote/read-files.ts';
import { ConfigParseError, readConfigValue } from '../config-local/edit.ts';
import { maskUri } from '../config-local/uri.ts';
import { maskSecretsInText } from '../../src/secrets.ts';
import { planDatabaseStage } from '../deploy/database.ts';
import { planHbaStage } from '../deploy/pg-hba.ts';
import { backendFactsOp, readBackendFacts } from '../facts/backend.ts';
import { passwordFrom } from '../deploy/passfile.ts';
import { bytesAsText } from '../files/text.ts';
import { backendOpening, dbTarget, desiredUri, opening, webOpening } from '../site.ts';
import type { JobSettings, Secrets, WebSettings } from '../settings.ts';
import {
  backendStepName, classifyBackend, classifyTransport, classifyForbidden, classifyParser, classifyPrimary, classifyUriDrift, type Verdict,
} from './classify.ts';
import { parseParserOutput, parserScript, type ParserVerdict } from './parser.ts';
import { probeBackend, probeForbidden, type BackendProbe, type ForbiddenProbe } from './probe.ts';
import { backendsFromConnectArgs, hostPortLabel, parseSettingsUri, UriParseError, type HostPort, type ParsedUri } from './uri.ts';

const URI_NAME = 'CONFIG_DATABASE_URI';
const ok = (message: string, warnings?: string[]): Verdict => ({ status: 'ok', message, ...(warnings?.length ? { warnings } : {}) });
const failed = (message: string): Verdict => ({ status: 'failed', message });

/** What verify reads on a web host, as deploy reads it: the file, and whether the web app's user can read it. */
interface WebRead {
  file: FileFact;
  reader?: CanRead;
  passfile?: FileFact;
}

function webReadOp(w: WebSettings): RemoteOp<WebRead> {
  // The web app's libpq version comes with its parser's answer: no Python start of its own here.
  const op = batch(readFiles([{ path: w.configLocal }, ...(w.dbPassfile ? [{ path: w.dbPassfile }] : [])]), w.webUser ? canRead(w.webUser, w.configLocal) : nothing);
  return {
    script: op.script,
    read(out) {
      const [[file, passfile], reader] = op.read(out);
      return { file: file!, ...(reader ? { reader } : {}), ...(passfile ? { passfile } : {}) };
    },
  };
}

export function verifyPlan(run: RunContext & { timeoutMs: number }, settings: JobSettings, secrets: Secrets): Plan<CheckStage> {
  const backends = new Map(settings.backends.map((b) => [b.name, b]));
  const webs = new Map(settings.webhosts.map((w) => [w.name, w]));
  const target = dbTarget(settings);
  const backendHosts = run.selected.filter((h) => backends.has(h));
  const webHosts = run.selected.filter((h) => webs.has(h));
  const openings: Opening[] = [
    ...backendHosts.map((host) => backendOpening(host, backends.get(host)!, backendFactsOp(backends.get(host)!, target).script)),
    ...webHosts.map((host) => webOpening(run, host, webReadOp(webs.get(host)!).script)),
  ];

  const facts: CheckStage = {
    name: 'facts',
    hosts: backendHosts,
    async check(host, report) {
      const backend = backends.get(host)!;
      const { out } = await run.connections.opened(opening.backend(host));
      const f = readBackendFacts(host, run.login(host).user, backend, target, out);
      report('server', ok(`${f.serverVersion.split(' ')[0]} ${f.inRecovery ? 'standby' : 'primary'}, hba_file ${f.hbaFile}`));
      report('ssl', f.ssl ? ok('ssl = on') : failed('ssl is off: the web hosts\' hostssl rule cannot match (turn ssl on and reload)'));
      const hba = planHbaStage(host, f, backend, settings.db, settings.user).change;
      report('pg_hba.conf rule', hba.changed ? failed(`drift: deploy would ${hba.summary}`) : ok(hba.summary));
      if (f.hbaNewerThanLoad) report('pg_hba.conf loaded', failed('drift: the file changed after the server last loaded it (deploy would reload it)'));
      if (!f.inRecovery) {
        for (const c of planDatabaseStage(host, f, { ...target, password: secrets.password }).changes) {
          report(`catalog: ${c.step}`, c.changed ? failed(`drift: deploy would ${c.summary}`) : ok(c.summary, c.warnings));
        }
      }
    },
  };

  const web: CheckStage = {
    name: 'web',
    hosts: webHosts,
    async check(host, report) {
      const w = webs.get(host)!;
      const { conn, out } = await run.connections.opened(opening.web(host));
      const { uri, parsed } = uriFromRead(host, w, out, run.login(host).becomeUser, report, run.mask);
      // The parser runs as the login user: it needs nothing but the URI, given on standard input.
      const verdict = await runParser(conn, uri, w.webPython);
      // As deploy: the web app's libpq is asked only of pem_web_python.
      const libpq = w.webPython && verdict.status === 'parsed' ? verdict.libpq : undefined;
      const wanted = desiredUri(settings, secrets.password, { w, ...(libpq !== undefined ? { libpq } : {}) }).uri;
      const parserVerdict = classifyParser(verdict, parsed instanceof UriParseError ? 1 : parsed.backends.length);
      report('uri parses with the web app\'s parser', { ...parserVerdict, message: maskSecretsInText(parserVerdict.message) });
      if (parsed instanceof UriParseError) throw new HostError(host, URI_NAME, `${parsed.message} (run deploy)`);
      report('uri drift', classifyUriDrift(uri, wanted));
      report('what the URI protects against', classifyTransport(parsed.options));
      await probeAll(conn, parsed, verdict, settings.revokeConnect, run.timeoutMs, report);
    },
  };
  return { openings, stages: [facts, web] };
}

async function runParser(conn: Connection, uri: string, webPython?: string): Promise<ParserVerdict> {
  const r = await conn.run(parserScript(uri, webPython));
  return parseParserOutput(r.stdout, r.stderr, r.code, webPython);
}

/** A pg session to every backend the web app would reach, through the web host's connection. */
async function probeAll(conn: Connection, parsed: ParsedUri, verdict: ParserVerdict, revokeConnect: string[], timeoutMs: number, report: Report): Promise<void> {
  // The web app connects where its parser says; without the parser, where the URI says.
  let targets: HostPort[] = parsed.backends;
  if (verdict.status === 'parsed') {
    try {
      targets = backendsFromConnectArgs(verdict.args);
    } catch {
      // classifyParser already failed the step with this message.
    }
  }
  const { user, password, database } = parsed;
  const cred = { user, password };
  const o = { timeoutMs };
  const probes = await Promise.all(targets.map(async (t) => {
    const probe = await probeBackend(conn, t, database, cred, o);
    // One session at a time per backend: fifty web hosts at once stay fifty sessions, not two hundred.
    const forbidden: [string, ForbiddenProbe][] = [];
    for (const db of revokeConnect) forbidden.push([db, await probeForbidden(conn, t, db, cred, o)]);
    return { probe, forbidden };
  }));
  for (const { probe, forbidden } of probes) {
    report(backendStepName(probe), classifyBackend(probe, user, database));
    for (const [db, p] of forbidden) report(`backend ${hostPortLabel(probe.target)}: cannot connect to ${db}`, classifyForbidden(db, p));
  }
  report('primary', classifyPrimary(probes.map((p): BackendProbe => p.probe)));
}

/** The URI from config_local.py as the web app reads it (as root through become: the file is 0640). */
function uriFromRead(host: string, w: WebSettings, out: Output, becomeUser: string | undefined, report: Report,
  mask: (secret: string) => void): { uri: string; parsed: ParsedUri | UriParseError } {
  let read: WebRead;
  try {
    read = webReadOp(w).read(out);
  } catch (e) {
    if (!(e instanceof OpError)) throw e;
    throw new HostError(host, 'config_local.py', `cannot read ${w.configLocal}: ${e.message}`, becomeUser ? undefined : 'the file is 0640: set ansible_become so verify reads it as root');
  }
  const f = read.file;
  if (f.state === 'absent') throw new HostError(host, 'config_local.py', `${w.configLocal} does not exist`, 'run deploy');
  if (f.state === 'dangling') throw new HostError(host, 'config_local.py', `${w.configLocal} is a symbolic link to a file that does not exist`, 'create the file it points to, or remove the link; then run deploy');
  if (f.state === 'unreadable' || f.state === 'special') {
    throw new HostError(host, 'config_local.py', `${w.configLocal} is not readable`, 'set ansible_become so verify reads it as root');
  }
  let uri: string | undefined;
  try {
    uri = readConfigValue(bytesAsText(f.bytes), URI_NAME);
  } catch (e) {
    if (e instanceof ConfigParseError) throw new HostError(host, 'config_local.py', `${w.configLocal}: ${e.message}`);
    throw e;
  }
  if (uri === undefined) throw new HostError(host, 'config_local.py', `${w.configLocal} has no active ${URI_NAME} = "..." (string) assignment`, 'run deploy');
  // The file's password may not be PEM_SETTINGS_PASSWORD: the output masks it from here on.
  let parsed: ParsedUri | UriParseError;
  try {
    parsed = withPassfile(parseSettingsUri(uri), w, read.passfile, report);
    mask(parsed.password);
    mask(parsed.rawPassword);
  } catch (e) {
    if (!(e instanceof UriParseError)) throw e;
    parsed = e;
  }
  report('config_local.py', ok(`${URI_NAME} = ${maskUri(uri)}`));
  if (w.webUser) report(`${w.webUser} can read config_local.py`, readerVerdict(w, read.reader));
  return { uri, parsed };
}

/** With passfile= in the URI, the password is the one libpq finds in that file (which must be the web app's alone). */
function withPassfile(parsed: ParsedUri, w: WebSettings, file: FileFact | undefined, report: Report): ParsedUri {
  const path = parsed.options.find(([k]) => k === 'passfile')?.[1];
  if (path === undefined || parsed.password !== '') return parsed;
  if (path !== w.dbPassfile || file?.state !== 'present') {
    report('password file', failed(`the URI names the password file ${path}, which ${path === w.dbPassfile ? 'is not there' : 'is not pem_db_passfile (run deploy)'}`));
    return parsed;
  }
  const password = passwordFrom(file.bytes.toString('utf8'), parsed.database, parsed.user) ?? '';
  const owned = file.mode === '600' && file.owner === w.webUser;
  report('password file', !password ? failed(`${path} has no line for ${parsed.database} and ${parsed.user}`)
    : owned ? ok(`${path}: mode 0600, owned by ${w.webUser}; config_local.py holds no password`)
      : failed(`${path} is mode ${file.mode}, owner ${file.owner ?? file.uid}: libpq ignores a password file that is not the web app's user's alone (0600, ${w.webUser})`));
  return { ...parsed, password };
}

function readerVerdict(w: WebSettings, reader: CanRead | undefined): Verdict {
  if (reader === 'yes') return ok(`${w.webUser} can read ${w.configLocal}`);
  if (reader === 'no-user') return failed(`pem_web_user ${w.webUser} does not exist on the host`);
  if (reader === 'unchecked') return ok(`${w.webUser} could not be checked to read ${w.configLocal} (needs root or sudo)`, ['readability by the web app\'s user was not checked']);
  return failed(`${w.webUser} cannot read ${w.configLocal}: the web app would fail to start (fix the owner, group or mode)`);
}
