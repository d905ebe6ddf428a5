// Placing the web hosts' rule in pg_hba.conf (SPEC 4, stage 3). Postgres uses the first
// record that matches a connection, so the rule goes right before the first record that
// could match any of the web hosts' connections (a `reject`, a broader md5 rule, an
// include), or at the end when nothing does. Every other byte of the file is kept.
// Pure: text in, text out.

import { createTwoFilesPatch } from 'diff';
import { parseHba, type HbaEntry, type HbaParseOptions } from './parse.ts';
import { matchEntry, parseCidr, type Connection, type MatchResult } from './match.ts';
import { logicalLines } from './tokenize.ts';

export interface DesiredHbaRule {
  type: 'hostssl';
  database: string;
  user: string;
  cidr: string;
  method: 'scram-sha-256';
}

export type HbaPlan =
  | { status: 'present'; line: number }
  | { status: 'insert'; beforeLine?: number; newText: string; addedLine: string; reason: string };

export interface HbaRulesPlan {
  newText: string;
  /** Lines inserted, in order (what rollback removes). */
  added: string[];
  /** Line numbers of records already effective for a desired rule. */
  present: number[];
  plans: HbaPlan[];
}

/** One desired rule per CIDR of `pem_web_subnet` (comma-separated or a list). */
export function desiredHbaRules(database: string, user: string, webSubnet: string | string[]): DesiredHbaRule[] {
  const cidrs = (Array.isArray(webSubnet) ? webSubnet : webSubnet.split(',')).map((c) => c.trim()).filter(Boolean);
  return cidrs.map((cidr) => ({ type: 'hostssl', database, user, cidr, method: 'scram-sha-256' }));
}

const KEYWORDS = new Set(['all', 'sameuser', 'samerole', 'samegroup', 'replication']);

/** A database or role name as a pg_hba.conf token: quoted only when Postgres would otherwise
 * read it as a keyword, a `+group`, an `@file`, or split it. */
export function hbaName(name: string): string {
  // Postgres 16+ reads a leading '/' as a regex even inside quotes; control characters would
  // break the line. Inventory validation should have refused such names already.
  if (name.startsWith('/') || /[\u0000-\u001f\u007f]/.test(name)) {
    throw new Error(`name cannot be written into pg_hba.conf: ${JSON.stringify(name)}`);
  }
  const plain = name !== '' && !KEYWORDS.has(name) && !/^[+@]/.test(name) && !/[ \t,#"]/.test(name);
  return plain ? name : `"${name.replaceAll('"', '""')}"`;
}

/** The desired CIDR as written in the file: as given, with a host mask added to a bare address. */
function cidrText(cidr: string): string {
  const text = cidr.trim();
  if (text.includes('/')) return text;
  return `${text}/${parseCidr(text).family === 'ipv4' ? 32 : 128}`;
}

/** The record line, e.g. `hostssl pem_user_settings pem_user_settings 10.1.2.0/24 scram-sha-256`. */
export function ruleLine(rule: DesiredHbaRule): string {
  return [rule.type, hbaName(rule.database), hbaName(rule.user), cidrText(rule.cidr), rule.method].join(' ');
}

/** Decides whether `desired` is already effective in `text`, or where to insert it. */
export function planHbaRule(text: string, desired: DesiredHbaRule, options: HbaParseOptions = {}): HbaPlan {
  const major = options.serverMajor ?? 16;
  const conn: Connection = { database: desired.database, user: desired.user, net: parseCidr(desired.cidr) };
  const addedLine = ruleLine(desired);
  const eol = lineEnding(text);

  for (const entry of parseHba(text, options)) {
    const match = matchEntry(entry, conn, major);
    if (!match.any) continue;
    if (isEffective(entry, match)) return { status: 'present', line: entry.line };
    return {
      status: 'insert',
      beforeLine: entry.line,
      newText: text.slice(0, entry.offset) + addedLine + eol + text.slice(entry.offset),
      addedLine,
      reason: whyBefore(entry, match),
    };
  }

  // A last record ending in '\' at end of file would swallow an appended line (Postgres 14+
  // joins it); nothing in it matches, so going right before it is the same as appending.
  const last = logicalLines(text, major >= 14).at(-1);
  if (last?.danglingContinuation) {
    return {
      status: 'insert',
      beforeLine: last.line,
      newText: text.slice(0, last.offset) + addedLine + eol + text.slice(last.offset),
      addedLine,
      reason: `no existing rule matches these connections; inserted before line ${last.line}, which ends in a line continuation`,
    };
  }
  return { status: 'insert', newText: appendLine(text, addedLine, eol), addedLine, reason: 'no existing rule matches these connections' };
}

/** Plans every desired rule in turn, each against the text the previous ones produced. */
export function planHbaRules(text: string, desired: DesiredHbaRule[], options: HbaParseOptions = {}): HbaRulesPlan {
  const result: HbaRulesPlan = { newText: text, added: [], present: [], plans: [] };
  for (const rule of desired) {
    const plan = planHbaRule(result.newText, rule, options);
    result.plans.push(plan);
    if (plan.status === 'present') {
      result.present.push(plan.line);
    } else {
      result.newText = plan.newText;
      result.added.push(plan.addedLine);
    }
  }
  return result;
}

/** Rollback: removes the first physical line equal to `line` with its line break, so that
 * removing what planHbaRule inserted gives back the original bytes. */
export function removeRuleLine(text: string, line: string): { newText: string; removed: boolean } {
  let start = text.startsWith('\uFEFF') ? 1 : 0;
  while (start < text.length) {
    const nl = text.indexOf('\n', start);
    const end = nl === -1 ? text.length : nl + 1;
    const content = text.slice(start, nl === -1 ? text.length : nl).replace(/\r+$/, '');
    if (content === line) {
      if (nl !== -1) return { newText: text.slice(0, start) + text.slice(end), removed: true };
      // Last line without a line break: it was appended after the file's last line, so the
      // break before it goes too (a file without a final newline stays without one).
      let cut = start;
      if (text[cut - 1] === '\n') cut--;
      if (text[cut - 1] === '\r') cut--;
      return { newText: text.slice(0, cut), removed: true };
    }
    start = end;
  }
  return { newText: text, removed: false };
}

/** A unified diff of the change for --diff, with secret-bearing auth options masked. */
export function describeHbaChange(before: string, after: string, path: string): string {
  return createTwoFilesPatch(path, path, maskHbaSecrets(before), maskHbaSecrets(after));
}

/** ldapbindpasswd and RADIUS secrets are the pg_hba.conf options that carry passwords. */
export function maskHbaSecrets(text: string): string {
  return text.replace(/\b(ldapbindpasswd|radiussecrets?)=("(?:[^"\n]|"")*"?|[^\s#,]+)/g, '$1=********');
}

function isEffective(entry: HbaEntry, match: MatchResult): boolean {
  // Options (clientcert=..., etc.) change what the rule demands of the client, so a rule
  // with options is not the rule we would write.
  return match.all && entry.kind === 'rule' && entry.method === 'scram-sha-256' && entry.options.length === 0;
}

/** Why the rule goes before `entry`. Names the record by its fields, never its raw text:
 * options can hold passwords. */
function whyBefore(entry: HbaEntry, match: MatchResult): string {
  if (entry.kind === 'include') {
    return `line ${entry.line} (${entry.directive} ${entry.path}) may hold rules that match these connections first`;
  }
  const fields = [
    entry.type,
    entry.databases.map(tokenText).join(','),
    entry.users.map(tokenText).join(','),
    ...(entry.address ? [tokenText(entry.address)] : []),
    ...(entry.mask !== undefined ? [entry.mask] : []),
    entry.method,
  ].join(' ');
  if (!match.all) return `line ${entry.line} (${fields}) may match these connections first`;
  if (entry.method !== 'scram-sha-256') return `line ${entry.line} (${fields}) matches these connections first, with method ${entry.method}`;
  return `line ${entry.line} (${fields}) matches these connections first, with extra options`;
}

function tokenText(t: { value: string; quoted: boolean; file: boolean }): string {
  if (t.file) return `@${t.value}`;
  return t.quoted ? `"${t.value.replaceAll('"', '""')}"` : t.value;
}

/** The file's own line break, from its first line; LF for a file without any. */
function lineEnding(text: string): string {
  const nl = text.indexOf('\n');
  return nl > 0 && text[nl - 1] === '\r' ? '\r\n' : '\n';
}

function appendLine(text: string, line: string, eol: string): string {
  const empty = text === '' || text === '\uFEFF';
  if (empty || text.endsWith('\n')) return text + line + eol;
  return text + eol + line; // no final newline before: none after either
}
