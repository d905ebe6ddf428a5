// The first word of a host line, as Ansible's INI plugin reads it (_expand_hostpattern with
// parse_address from ansible/parsing/utils/addresses.py): a `:port` is split off only when what
// is left is a valid IPv4 address, IPv6 address or host name (ranges allowed); otherwise the whole
// word, colons and all, is the host name. Then ranges are expanded.
// The regular expressions are Ansible's, with two of its quirks kept on purpose: the IPv6
// expression is anchored at the end only in its last branch (so a word that merely starts like
// an IPv6 address passes), and both port forms are tried in turn (`[a:1]:2` gives port 1).

import { expandHostRange, HostRangeError } from './ranges.ts';
import { PY_WORD, pyStrip } from './pytext.ts';

export { HostRangeError } from './ranges.ts';

const NUMERIC_RANGE = '\\[(?:[0-9]+:[0-9]+)(?::[0-9]+)?\\]';
const HEX_RANGE = '\\[(?:[0-9a-f]+:[0-9a-f]+)(?::[0-9]+)?\\]';
// Python's case-insensitive [a-z] also matches İ and ı (JavaScript's /iu already adds ſ and K).
const ALNUM_RANGE = '\\[(?:[a-z\\u0130\\u0131]:[a-z\\u0130\\u0131]|[0-9]+:[0-9]+)(?::[0-9]+)?\\]';
const V6 = `(?:[0-9a-f]{1,4}|${HEX_RANGE})`;
const V4 = `(?:[01]?[0-9]{1,2}|2[0-4][0-9]|25[0-5]|${NUMERIC_RANGE})`;
const LABEL = `(?:[${PY_WORD}]|${ALNUM_RANGE})(?:[${PY_WORD}_-]|${ALNUM_RANGE})*(?<![_-])`;

const BRACKETED_HOSTPORT = /^\[(.+)\]:([0-9]+)$/su;
const HOSTPORT = /^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$/su;
const IPV4 = new RegExp(`^(?:${V4}\\.){3}${V4}$`, 'iu');
const IPV6 = new RegExp('^(?:' + [
  `(?:${V6}:){7}${V6}`,
  `(?:${V6}:){1,6}:`,
  `(?:${V6}:)(?::${V6}){1,6}`,
  `(?:${V6}:){2}(?::${V6}){1,5}`,
  `(?:${V6}:){3}(?::${V6}){1,4}`,
  `(?:${V6}:){4}(?::${V6}){1,3}`,
  `(?:${V6}:){5}(?::${V6}){1,2}`,
  `(?:${V6}:){6}(?::${V6})`,
  `:(?::${V6}){1,6}`,
  `${V6}?::`,
  `(?:0:){6}(?:${V6}\\.){3}${V6}`,
  `::(?:ffff:)?(?:${V6}\\.){3}${V6}`,
  `(?:0:){5}ffff:(?:${V6}\\.){3}${V6}$`,
].join('|') + ')', 'iu');
const HOSTNAME = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`, 'iu');

/** parse_address(word, allow_ranges=True), or undefined where it raises. */
export function parseAddress(word: string): { host: string; port?: number } | undefined {
  let address = word;
  let port: number | undefined;
  for (const form of [BRACKETED_HOSTPORT, HOSTPORT]) {
    const m = form.exec(address);
    if (m) {
      address = m[1]!;
      port = Number(m[2]);
    }
  }
  if (![IPV4, IPV6, HOSTNAME].some((re) => re.test(address))) return undefined;
  return port === undefined ? { host: address } : { host: address, port };
}

/** Host names and port of a host line's first word, or HostRangeError with Ansible's reasons. */
export function expandHostPattern(word: string): { names: string[]; port?: number } {
  const parsed = parseAddress(word);
  const pattern = parsed?.host ?? word;
  const port = parsed?.port;
  const names = pattern.includes('[') ? expandHostRange(pattern) : [pattern];
  if (port === undefined && pyStrip(word).endsWith(':')) {
    throw new HostRangeError(`invalid host "${word}": ending in ':' is reserved for a port`);
  }
  if (names.some((n) => pyStrip(n) === '---')) throw new HostRangeError(`invalid host "${word}": '---' is normally a sign this is a YAML file`);
  if (names.includes('')) throw new HostRangeError('a host name cannot be empty');
  // Unlike Ansible, which then takes the whole word, colon and all, as one host name.
  if (!parsed && /:/.test(word.replace(/\[[^\]]*\]/g, ''))) {
    throw new HostRangeError(`invalid host "${word}": neither name:port (a valid host name or IPv4 address, then digits) ` +
      'nor an IPv6 address; Ansible would take the whole word, colon included, as the host name');
  }
  return port === undefined ? { names } : { names, port };
}
