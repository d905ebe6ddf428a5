// The PEM job's verify (SPEC 5): changes nothing, proves from each web host that the settings
// database works the way the web app will use it, and reports drift from what deploy would do.
// Stages: "facts" on the selected backends (server facts, then pg_hba.conf and catalog drift,
// planned exactly as deploy plans them), "web" on the selected web hosts (the file's URI, the
// web app's parser, URI drift, and a pg session to every backend of the URI through the web
// host's SSH connection). Reading and judging live in tasks/verify/*; this is wiring.

import { shellQuote, type Connection, type RunResult } from '../src/connection.ts';
import type { Connections } from '../src/connections.ts';
import { HostError } from '../src/errors.ts';
import { backendFactsFrom, backendFactsScript } from './backend-facts.ts';
import { ConfigParseError, readConfigValue } from './config-local/edit.ts';
import { maskUri } from './config-local/uri.ts';
import { maskSecretsInText } from '../src/secrets.ts';
import { planDatabaseStage } from './database-stage.ts';
import { planHbaStage } from './pg-hba-stage.ts';
import type { JobSettings, Secrets, WebSettings } from './settings.ts';
import {
  backendStepName, classifyBackend, classifyForbidden, classifyParser, classifyPrimary, classifyUriDrift, type Verdict,
} from './verify/classify.ts';
import type { CheckStage, Report } from './verify/checks.ts';
import { parseParserOutput, parserScript } from './verify/parser.ts';
import { probeBackend, probeForbidden, type BackendProbe, type ForbiddenProbe } from './verify/probe.ts';
import { backendsFromConnectArgs, hostPortLabel, parseSettingsUri, UriParseError, type HostPort, type ParsedUri } from './verify/uri.ts';

export interface VerifyContext {
  settings: JobSettings;
  secrets: Secrets;
  connections: Connections;
  /** The URI deploy would write now (settingsUri of the inventory's backends or endpoint). */
  desiredUri: string;
  /** sudo user per host from ansible_become (to read the 0640 config_local.py). */
  becomeUser: (host: string) => string | undefined;
  /** Selected hosts, in inventory order. */
  selected: string[];
  timeoutMs: number;
  /** Called with every password found on a host, so the output masks it too. */
  onSecret?: (secret: string) => void;
}

const URI_NAME = 'CONFIG_DATABASE_URI';
const ok = (message: string, warnings?: string[]): Verdict => ({ status: 'ok', message, ...(warnings?.length ? { warnings } : {}) });
const failed = (message: string): Verdict => ({ status: 'failed', message });

export function verifyStages(ctx: VerifyContext): CheckStage[] {
  const { settings } = ctx;
  const backends = new Map(settings.backends.map((b) => [b.name, b]));
  const webs = new Map(settings.webhosts.map((w) => [w.name, w]));
  const target = { db: settings.db, user: settings.user, grantee: settings.grantee, revokeConnect: settings.revokeConnect };

  const facts: CheckStage = {
    name: 'facts',
    hosts: ctx.selected.filter((h) => backends.has(h)),
    async check(host, report) {
      const backend = backends.get(host)!;
      // The run lock and the facts in one round trip, as deploy reads them.
      const { result } = await ctx.connections.openWith(host, backendFactsScript(backend, target), { becomeUser: backend.pgOsUser });
      const f = backendFactsFrom(host, result);
      report('server', ok(`${f.serverVersion.split(' ')[0]} ${f.inRecovery ? 'standby' : 'primary'}, hba_file ${f.hbaFile}`));
      report('ssl', f.ssl ? ok('ssl = on') : failed('ssl is off: the web hosts\' hostssl rule cannot match (turn ssl on and reload)'));
      const hba = planHbaStage(host, f, backend, settings.db, settings.user);
      report('pg_hba.conf rule', hba.changed ? failed(`drift: deploy would ${hba.summary}`) : ok(hba.summary));
      if (!f.inRecovery) {
        for (const c of planDatabaseStage(host, f, { ...target, password: ctx.secrets.password })) {
          report(`catalog: ${c.step}`, c.changed ? failed(`drift: deploy would ${c.summary}`) : ok(c.summary, c.warnings));
        }
      }
    },
  };

  const web: CheckStage = {
    name: 'web',
    hosts: ctx.selected.filter((h) => webs.has(h)),
    async check(host, report) {
      const w = webs.get(host)!;
      const become = ctx.becomeUser(host);
      // The run lock and the file in one round trip, as deploy reads them.
      const { conn, result } = await ctx.connections.openWith(host, readScript(w), become ? { becomeUser: become } : {});
      const { uri, parsed } = uriFromRead(conn, w, result, become, report, ctx.onSecret);
      // The parser runs as the login user: it needs nothing but the URI, given on standard input.
      const run = await conn.run(parserScript(uri, w.webPython));
      const verdict = parseParserOutput(run.stdout, run.stderr, run.code, w.webPython);
      const parserVerdict = classifyParser(verdict, parsed instanceof UriParseError ? 1 : parsed.backends.length);
      report('uri parses with the web app\'s parser', { ...parserVerdict, message: maskSecretsInText(parserVerdict.message) });
      if (parsed instanceof UriParseError) throw new HostError(host, URI_NAME, `${parsed.message} (run deploy)`);
      report('uri drift', classifyUriDrift(uri, ctx.desiredUri));

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
      const o = { timeoutMs: ctx.timeoutMs };
      const probes = await Promise.all(targets.map(async (t) => {
        const probe = await probeBackend(conn, t, database, cred, o);
        // One session at a time per backend: fifty web hosts at once stay fifty sessions, not two hundred.
        const forbidden: [string, ForbiddenProbe][] = [];
        for (const db of settings.revokeConnect) forbidden.push([db, await probeForbidden(conn, t, db, cred, o)]);
        return { probe, forbidden };
      }));
      for (const { probe, forbidden } of probes) {
        report(backendStepName(probe), classifyBackend(probe, user, database));
        for (const [db, p] of forbidden) report(`backend ${hostPortLabel(probe.target)}: cannot connect to ${db}`, classifyForbidden(db, p));
      }
      report('primary', classifyPrimary(probes.map((p): BackendProbe => p.probe)));
    },
  };
  return [facts, web];
}

/** The URI from config_local.py as the web app reads it (as root through become: the file is 0640). */
function uriFromRead(conn: Connection, w: WebSettings, result: RunResult, becomeUser: string | undefined, report: Report,
  onSecret: (secret: string) => void = () => {}): { uri: string; parsed: ParsedUri | UriParseError } {
  const out = result.stdout.split('\n');
  if (result.code !== 0 || !out[0]?.startsWith('#')) {
    throw new HostError(conn.host, 'config_local.py', `cannot read ${w.configLocal}: ${result.stderr.trim() || `exit status ${result.code}`}`,
      becomeUser ? undefined : 'the file is 0640: set ansible_become so verify reads it as root');
  }
  if (out[0] === '#missing') throw new HostError(conn.host, 'config_local.py', `${w.configLocal} does not exist`, 'run deploy');
  if (out[0] === '#unreadable') {
    throw new HostError(conn.host, 'config_local.py', `${w.configLocal} is not readable by ${conn.user}`, 'set ansible_become so verify reads it as root');
  }
  const text = Buffer.from(out[1] ?? '', 'base64').toString('utf8');
  let uri: string | undefined;
  try {
    uri = readConfigValue(text, URI_NAME);
  } catch (e) {
    if (e instanceof ConfigParseError) throw new HostError(conn.host, 'config_local.py', `${w.configLocal}: ${e.message}`);
    throw e;
  }
  if (uri === undefined) {
    throw new HostError(conn.host, 'config_local.py', `${w.configLocal} has no active ${URI_NAME} = "..." (string) assignment`, 'run deploy');
  }
  // The file's password may not be PEM_SETTINGS_PASSWORD: the output masks it from here on.
  let parsed: ParsedUri | UriParseError;
  try {
    parsed = parseSettingsUri(uri);
    onSecret(parsed.password);
    onSecret(parsed.rawPassword);
  } catch (e) {
    if (!(e instanceof UriParseError)) throw e;
    parsed = e;
  }
  report('config_local.py', ok(`${URI_NAME} = ${maskUri(uri)}`));
  if (w.webUser) {
    const verdict = out[2] ?? '';
    report(`${w.webUser} can read config_local.py`,
      verdict === '#webuser ok' ? ok(`${w.webUser} can read ${w.configLocal}`)
        : verdict === '#webuser nouser' ? failed(`pem_web_user ${w.webUser} does not exist on the host`)
          : failed(`${w.webUser} cannot read ${w.configLocal}: the web app would fail to start (fix the owner, group or mode)`));
  }
  return { uri, parsed };
}

function readScript(w: WebSettings): string {
  const lines = [
    `f=${shellQuote(w.configLocal)}`,
    '[ -e "$f" ] || { echo "#missing"; exit 0; }',
    '[ -r "$f" ] || { echo "#unreadable"; exit 0; }',
    'echo "#content"; base64 -w0 < "$f" || exit 3; echo',
  ];
  if (w.webUser) {
    const u = shellQuote(w.webUser);
    lines.push(
      `if ! id ${u} >/dev/null 2>&1; then echo "#webuser nouser"`,
      // As root runuser needs no password; otherwise sudo -n, which may be refused (then: no).
      `elif [ "$(id -u)" = 0 ]; then runuser -u ${u} -- test -r "$f" && echo "#webuser ok" || echo "#webuser no"`,
      `else sudo -n -u ${u} test -r "$f" 2>/dev/null && echo "#webuser ok" || echo "#webuser no"; fi`,
    );
  }
  return lines.join('\n') + '\n';
}

