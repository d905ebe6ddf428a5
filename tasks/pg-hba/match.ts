// Which pg_hba.conf records can match the web hosts' connections. A connection here is
// "TCP with SSL, no GSS encryption, to database D as user U, from any address in CIDR C".
// For each record we answer two questions: could it match *some* of those connections
// (then it fires before anything below it), and does it certainly match *all* of them.
// Whatever depends on state we cannot see from the file (role membership, @files, host
// names, the server's own interfaces, included files, regexes) "may match", never "certainly".

import ipaddr from 'ipaddr.js';
import { prefixMask, type HbaAddress, type HbaEntry, type HbaToken } from './parse.ts';

export interface Connection {
  database: string;
  user: string;
  /** Network and prefix mask as bytes (4 or 16). */
  net: { family: 'ipv4' | 'ipv6'; bytes: number[]; mask: number[] };
}

/** How a record relates to the connection set: `any` ⇒ it can fire for some of them;
 * `all` ⇒ it certainly fires for every one of them. `all` implies `any`. */
export interface MatchResult {
  any: boolean;
  all: boolean;
}

const NONE: MatchResult = { any: false, all: false };
const MAYBE: MatchResult = { any: true, all: false };
const CERTAIN: MatchResult = { any: true, all: true };

/** Parses the desired CIDR; a bare address is a single host (/32 or /128). */
export function parseCidr(cidr: string): Connection['net'] {
  const text = cidr.trim();
  const [address, bits] = text.includes('/') ? ipaddr.parseCIDR(text) : [ipaddr.parse(text), -1];
  const family = address.kind();
  const length = family === 'ipv4' ? 4 : 16;
  return { family, bytes: address.toByteArray(), mask: prefixMask(bits < 0 ? length * 8 : bits, length) };
}

export function matchEntry(entry: HbaEntry, conn: Connection, serverMajor = 16): MatchResult {
  // An included file may hold any record, in this very position.
  if (entry.kind === 'include') return MAYBE;
  const type = matchType(entry.type);
  if (!type.any) return NONE;
  return and(
    type,
    matchDatabases(entry.databases, conn, serverMajor),
    matchUsers(entry.users, conn, serverMajor),
    matchAddress(entry.addr, conn.net),
  );
}

function and(...results: MatchResult[]): MatchResult {
  return { any: results.every((r) => r.any), all: results.every((r) => r.all) };
}

/** A field matches if any token does; certainty comes from one certain token. */
function anyToken(tokens: HbaToken[], one: (t: HbaToken) => MatchResult): MatchResult {
  const results = tokens.map(one);
  if (results.some((r) => r.all)) return CERTAIN;
  return results.some((r) => r.any) ? MAYBE : NONE;
}

function matchType(type: string): MatchResult {
  // Our connection is TCP with SSL and without GSS encryption.
  return type === 'host' || type === 'hostssl' || type === 'hostnogssenc' ? CERTAIN : NONE;
}

const keyword = (t: HbaToken, word: string): boolean => !t.quoted && !t.file && t.value === word;
// Postgres 16+ compiles any database or role token starting with '/' as a regex, quoted or not.
const isRegex = (t: HbaToken, serverMajor: number): boolean => serverMajor >= 16 && !t.file && t.value.startsWith('/');

function matchDatabases(tokens: HbaToken[], conn: Connection, serverMajor: number): MatchResult {
  return anyToken(tokens, (t) => {
    if (t.file) return MAYBE;
    if (keyword(t, 'all')) return CERTAIN;
    if (keyword(t, 'sameuser')) return conn.database === conn.user ? CERTAIN : NONE;
    // samerole: the user is a member of the role named like the database; every role is a
    // member of itself, other memberships are catalog state.
    if (keyword(t, 'samerole') || keyword(t, 'samegroup')) return conn.database === conn.user ? CERTAIN : MAYBE;
    if (keyword(t, 'replication')) return NONE; // only physical replication connections
    if (isRegex(t, serverMajor)) return MAYBE;
    return t.value === conn.database ? CERTAIN : NONE;
  });
}

function matchUsers(tokens: HbaToken[], conn: Connection, serverMajor: number): MatchResult {
  return anyToken(tokens, (t) => {
    if (t.file) return MAYBE;
    if (!t.quoted && t.value.startsWith('+')) return t.value.slice(1) === conn.user ? CERTAIN : MAYBE;
    if (keyword(t, 'all')) return CERTAIN;
    if (isRegex(t, serverMajor)) return MAYBE;
    return t.value === conn.user ? CERTAIN : NONE;
  });
}

function matchAddress(addr: HbaAddress | undefined, net: Connection['net']): MatchResult {
  if (!addr) return NONE;
  switch (addr.kind) {
    case 'all':
      return CERTAIN;
    case 'samehost':
    case 'samenet':
    case 'hostname':
    case 'file':
      return MAYBE;
    case 'ip':
      return matchIp(addr, net);
  }
}

/** Postgres matches a client when `(client ^ address) & mask == 0`, same family only. */
function matchIp(rule: { family: string; bytes: number[]; mask: number[] }, net: Connection['net']): MatchResult {
  if (rule.family !== net.family) return NONE;
  let any = true;
  let all = true;
  for (let i = 0; i < rule.bytes.length; i++) {
    const ruleMask = rule.mask[i]!;
    const fixed = net.mask[i]!; // bits every desired client shares
    const differ = (rule.bytes[i]! ^ net.bytes[i]!) & ruleMask & fixed;
    // Some client matches iff no rule-checked bit that every client shares differs.
    if (differ !== 0) any = false;
    // Every client matches iff, besides that, the rule checks no bit the clients vary in.
    if ((ruleMask & ~fixed & 0xff) !== 0) all = false;
  }
  return { any, all: any && all };
}
