// pg_hba.conf as a list of records with their line numbers and raw text (STYLE 5), parsed
// the way Postgres' parse_hba_line reads them. Strict where Postgres rejects the file (it
// would not load it either), lenient where Postgres is lenient (unknown methods and options
// are kept as text: only the fields that decide which record matches are interpreted).

import { LineParseError } from '../../src/errors.ts';
import ipaddr from 'ipaddr.js';
import { logicalLines, type HbaToken } from './tokenize.ts';

export type { HbaToken } from './tokenize.ts';

/** Where a host record's address field points. `ip` carries the address and netmask as
 * bytes: Postgres compares `(client ^ address) & mask`, so host bits in `10.1.2.5/24` are
 * ignored and a two-field `address mask` form is the same thing spelled differently. */
export type HbaAddress =
  | { kind: 'all' }
  | { kind: 'samehost' }
  | { kind: 'samenet' }
  | { kind: 'hostname'; name: string }
  /** An `@file` in the address field: its contents are unknowable here. */
  | { kind: 'file' }
  | { kind: 'ip'; family: 'ipv4' | 'ipv6'; bytes: number[]; mask: number[] };

export const CONNECTION_TYPES = ['local', 'host', 'hostssl', 'hostnossl', 'hostgssenc', 'hostnogssenc'] as const;
export type ConnectionType = (typeof CONNECTION_TYPES)[number];

export interface HbaRule {
  kind: 'rule';
  /** 1-based line number of the record's first physical line. */
  line: number;
  /** Offset of that line in the text (after a BOM), where an insertion before it goes. */
  offset: number;
  /** Exact text, continuation lines included, no EOL. May hold secrets (ldapbindpasswd). */
  raw: string;
  type: ConnectionType;
  databases: HbaToken[];
  users: HbaToken[];
  /** The address token as written (host records only). */
  address?: HbaToken;
  /** The netmask field of the two-field `address mask` form. */
  mask?: string;
  /** Interpreted address (host records only). */
  addr?: HbaAddress;
  method: string;
  /** `name=value` options after the method, dequoted. May hold secrets: never log them. */
  options: string[];
}

/** `include`, `include_if_exists`, `include_dir` (Postgres 16+). */
export interface HbaInclude {
  kind: 'include';
  line: number;
  offset: number;
  raw: string;
  directive: 'include' | 'include_if_exists' | 'include_dir';
  path: string;
}

export type HbaEntry = HbaRule | HbaInclude;

export interface HbaParseOptions {
  /** Server major version: include directives and `/regex` names exist from 16, backslash
   * line continuation from 14. Unknown: the newest rules, a superset of the older ones. */
  serverMajor?: number;
}

/** A record Postgres would reject, with the line it is on. The message never quotes the
 * line itself (options can hold passwords). */
export class HbaParseError extends LineParseError {
  override name = 'HbaParseError';
}

const INCLUDE_DIRECTIVES = new Set(['include', 'include_if_exists', 'include_dir']);

/** Parses the text of a pg_hba.conf file into its records, in file order. */
export function parseHba(text: string, options: HbaParseOptions = {}): HbaEntry[] {
  const major = options.serverMajor ?? 16;
  const modern = major >= 16;
  const entries: HbaEntry[] = [];
  for (const ll of logicalLines(text, major >= 14)) {
    if (ll.fields.length === 0) continue;
    if (ll.unterminatedQuote) throw new HbaParseError(ll.line, 'unterminated quoted string');
    const first = ll.fields[0]![0]!;
    // hba.c treats any two-field line whose first word is a directive as an include,
    // whatever the quoting.
    if (modern && ll.fields.length === 2 && INCLUDE_DIRECTIVES.has(first.value) && !first.file) {
      const target = ll.fields[1]![0]!;
      entries.push({
        kind: 'include',
        line: ll.line,
        offset: ll.offset,
        raw: ll.raw,
        directive: first.value as HbaInclude['directive'],
        path: (target.file ? '@' : '') + target.value,
      });
      continue;
    }
    entries.push(parseRule(ll.fields, ll.line, ll.offset, ll.raw));
  }
  return entries;
}

function parseRule(fields: HbaToken[][], line: number, offset: number, raw: string): HbaRule {
  const fail = (reason: string): never => {
    throw new HbaParseError(line, reason);
  };
  let next = 0;
  const field = (missing: string): HbaToken[] => fields[next++] ?? fail(`end-of-line before ${missing}`);
  const single = (tokens: HbaToken[], what: string): HbaToken =>
    tokens.length === 1 ? tokens[0]! : fail(`multiple values specified for ${what}`);

  const typeToken = single(field('connection type'), 'connection type');
  if (typeToken.file) fail('a connection type read from an @file is not supported');
  const type = typeToken.value as ConnectionType;
  if (!CONNECTION_TYPES.includes(type)) fail(`invalid connection type "${typeToken.value}"`);

  const databases = field('database specification');
  const users = field('role specification');
  const rule: HbaRule = { kind: 'rule', line, offset, raw, type, databases, users, method: '', options: [] };

  if (type !== 'local') {
    const address = single(field('IP address specification'), 'host address');
    rule.address = address;
    const parsed = parseAddress(address, fail);
    if (parsed === 'needs-mask') {
      const maskToken = single(field('netmask specification'), 'netmask');
      rule.mask = maskToken.value;
      rule.addr = addressWithMask(address.value, maskToken.value, fail);
    } else {
      rule.addr = parsed;
    }
  }

  const method = single(field('authentication method'), 'authentication type');
  rule.method = method.file ? `@${method.value}` : method.value;
  rule.options = fields.slice(next).flat().map((t) => t.value);
  return rule;
}

function parseAddress(token: HbaToken, fail: (reason: string) => never): HbaAddress | 'needs-mask' {
  if (token.file) return { kind: 'file' };
  if (!token.quoted && (token.value === 'all' || token.value === 'samehost' || token.value === 'samenet')) {
    return { kind: token.value };
  }
  const slash = token.value.indexOf('/');
  const host = slash === -1 ? token.value : token.value.slice(0, slash);
  // Postgres asks getaddrinfo(AI_NUMERICHOST); whatever is not numeric is a host name.
  // ipaddr.js accepts the same inet_aton spellings (10.1, 0x0a.1.2.3, zone ids).
  if (!ipaddr.isValid(host)) {
    if (slash !== -1) fail(`specifying both host name and CIDR mask is invalid: "${token.value}"`);
    return { kind: 'hostname', name: host };
  }
  if (slash === -1) return 'needs-mask';
  const address = ipaddr.parse(host);
  const bits = cidrBits(token.value.slice(slash + 1), address.kind() === 'ipv4' ? 32 : 128);
  if (bits === undefined) fail(`invalid CIDR mask in address "${token.value}"`);
  return ipSpec(address, prefixMask(bits!, address.kind() === 'ipv4' ? 4 : 16));
}

function addressWithMask(host: string, mask: string, fail: (reason: string) => never): HbaAddress {
  if (!ipaddr.isValid(mask)) fail(`invalid IP mask "${mask}"`);
  const address = ipaddr.parse(host);
  const maskAddress = ipaddr.parse(mask);
  if (address.kind() !== maskAddress.kind()) fail('IP address and mask do not match');
  // Postgres does not require a contiguous mask; the byte-wise comparison handles any mask.
  return ipSpec(address, maskAddress.toByteArray());
}

function ipSpec(address: ipaddr.IPv4 | ipaddr.IPv6, mask: number[]): HbaAddress {
  return { kind: 'ip', family: address.kind(), bytes: address.toByteArray(), mask };
}

/** strtol-style prefix length as pg_sockaddr_cidr_mask accepts it. */
function cidrBits(text: string, max: number): number | undefined {
  if (!/^[+-]?\d+$/.test(text)) return undefined;
  const bits = Number(text);
  return bits >= 0 && bits <= max ? bits : undefined;
}

/** A netmask of `bits` leading ones, as bytes. */
export function prefixMask(bits: number, length: 4 | 16): number[] {
  return Array.from({ length }, (_, i) => {
    const ones = Math.min(8, Math.max(0, bits - i * 8));
    return (0xff << (8 - ones)) & 0xff;
  });
}
