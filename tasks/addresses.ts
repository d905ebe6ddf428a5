// Addresses and subnets from the inventory, accepted only when they mean what they say
// (SPEC 3). C's inet_aton — which Postgres and libpq reach through getaddrinfo — reads
// `010.0.2.0` as 8.0.2.0, `0xa.0.2.0` as 10.0.2.0, `10.2` as 10.0.0.2 and `167772672` as
// 10.0.2.0; a reader of the inventory sees something else. So IPv4 is four decimal numbers
// 0–255 without leading zeros, IPv6 is a valid RFC 4291 address, a prefix length is a decimal
// without leading zeros and in range, a CIDR has no host bits set, and anything that looks
// numeric but is none of these is refused, with what it would have meant. Everything is written
// back in one canonical form (IPv6: RFC 5952, compressed, lowercase). Pure functions only.

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

export interface HostAddress {
  kind: 'ipv4' | 'ipv6' | 'name';
  /** Canonical text: the address as written for IPv4 and names, RFC 5952 for IPv6. */
  text: string;
}

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const no = <T>(reason: string): Parsed<T> => ({ ok: false, reason });

const IPV4 = /^(?:0|[1-9][0-9]{0,2})(?:\.(?:0|[1-9][0-9]{0,2})){3}$/;
const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
/** A part inet_aton accepts: decimal, octal with a leading 0, or hex with 0x. */
const NUMERIC_PART = /^(?:[0-9]+|0[xX][0-9a-fA-F]*)$/;

/** The address, if text is an IPv4 address in canonical dotted-decimal form. */
export function parseIPv4(text: string): string | undefined {
  if (!IPV4.test(text)) return undefined;
  return text.split('.').every((p) => Number(p) <= 255) ? text : undefined;
}

/** The eight 16-bit groups of a valid IPv6 address (RFC 4291 text forms), or undefined. */
function ipv6Groups(text: string): number[] | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return undefined;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const pieces = (s: string) => (s === '' ? [] : s.split(':'));
  const left = pieces(halves[0]!);
  const right = halves.length === 2 ? pieces(halves[1]!) : [];
  const last = right.length ? right : left;
  const groups = (list: string[]) => list.flatMap((piece, i): number[] | [undefined] => {
    // Only the very last piece may be an IPv4 address, for the last 32 bits.
    if (piece.includes('.')) {
      const v4 = list === last && i === list.length - 1 ? parseIPv4(piece)?.split('.').map(Number) : undefined;
      return v4 ? [(v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!] : [undefined];
    }
    return /^[0-9a-fA-F]{1,4}$/.test(piece) ? [parseInt(piece, 16)] : [undefined];
  });
  const head = groups(left);
  const tail = groups(right);
  if ([...head, ...tail].some((g) => g === undefined)) return undefined;
  const known = head.length + tail.length;
  if (halves.length === 1 ? known !== 8 : known > 7) return undefined;
  return [...head, ...Array<number>(8 - known).fill(0), ...tail] as number[];
}

/** RFC 5952: lowercase, no leading zeros, the longest run of two or more zero groups as `::`. */
function formatIPv6(groups: number[]): string {
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${groups[6]! >> 8}.${groups[6]! & 0xff}.${groups[7]! >> 8}.${groups[7]! & 0xff}`;
  }
  let best = { at: -1, length: 1 };
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.length) best = { at: i, length: j - i };
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.at < 0) return hex.join(':');
  return `${hex.slice(0, best.at).join(':')}::${hex.slice(best.at + best.length).join(':')}`;
}

/** The canonical text if text is a valid IPv6 address (no zone: a `%` cannot travel in a URI or pg_hba.conf). */
export function parseIPv6(text: string): string | undefined {
  const groups = ipv6Groups(text);
  return groups && formatIPv6(groups);
}

/** What C's inet_aton makes of text (1 to 4 parts, each decimal, 0-octal or 0x-hex), if anything. */
export function inetAton(text: string): string | undefined {
  const parts = text.split('.');
  if (parts.length > 4 || !parts.every((p) => NUMERIC_PART.test(p))) return undefined;
  const values = parts.map((p) => (/^0[xX]/.test(p) ? parseInt(p.slice(2) || '0', 16) : /^0[0-9]/.test(p) ? (/^[0-7]+$/.test(p) ? parseInt(p, 8) : NaN) : Number(p)));
  if (values.some((v) => Number.isNaN(v))) return undefined;
  // The last part fills the bits the others leave: a (32), a.b (8.24), a.b.c (8.8.16), a.b.c.d.
  const lastBits = 32 - 8 * (values.length - 1);
  if (values.slice(0, -1).some((v) => v > 255) || values[values.length - 1]! >= 2 ** lastBits) return undefined;
  let n = values[values.length - 1]!;
  values.slice(0, -1).forEach((v, i) => { n += v * 2 ** (24 - 8 * i); });
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join('.');
}

/**
 * Text that could be taken for an IPv4 address: only digits, dots and 0x-hex parts, or a last
 * label that is a number (no top-level domain is numeric; URL parsers read such a host as IPv4).
 */
function looksNumeric(text: string): boolean {
  const labels = text.split('.');
  const numeric = (l: string) => NUMERIC_PART.test(l);
  return (labels.some(numeric) && labels.every((l) => numeric(l) || l === '')) || numeric(labels[labels.length - 1]!);
}

function numericRefusal(text: string): string {
  const meant = inetAton(text);
  return `"${text}" looks like an IPv4 address but is not one in canonical form (four decimal numbers 0-255, no leading zeros)` +
    (meant ? `: C's inet_aton, which Postgres and libpq use, would read it as ${meant}` : '');
}

/** A host the web hosts connect to: an IPv4 or IPv6 address, or a DNS host name. */
export function parseHostAddress(text: string): Parsed<HostAddress> {
  if (text.includes(':')) {
    if (text.includes('%')) return no(`"${text}" has an IPv6 zone (%...), which cannot be used in the URI: use a global address or a host name`);
    const v6 = parseIPv6(text);
    return v6 ? ok({ kind: 'ipv6', text: v6 }) : no(`"${text}" is not a valid IPv6 address`);
  }
  if (parseIPv4(text)) return ok({ kind: 'ipv4', text });
  if (looksNumeric(text)) return no(numericRefusal(text));
  const labels = text.split('.');
  if (text.length > 253 || !labels.every((l) => LABEL.test(l))) {
    return no(`"${text}" is not a host name (letters, digits and inner hyphens, dot-separated) or an IP address`);
  }
  return ok({ kind: 'name', text });
}

/** `address/prefix`, canonical, with no host bits set. */
export function parseCidr(text: string): Parsed<string> {
  const m = /^([^/]*)\/([^/]*)$/.exec(text);
  if (!m) return no(`"${text}" is not a CIDR (address/prefix, like 10.0.2.0/24)`);
  const [, addressText = '', prefixText = ''] = m;
  const v4 = parseIPv4(addressText);
  const v6 = v4 ? undefined : ipv6Groups(addressText);
  if (!v4 && !v6) {
    if (!addressText.includes(':') && looksNumeric(addressText)) return no(`"${text}" is not a CIDR: ${numericRefusal(addressText)}`);
    return no(`"${text}" is not a CIDR: "${addressText}" is not an IPv4 or IPv6 address`);
  }
  const width = v4 ? 32 : 128;
  if (!/^(?:0|[1-9][0-9]*)$/.test(prefixText) || Number(prefixText) > width) {
    return no(`"${text}" is not a CIDR: the prefix length must be a number from 0 to ${width} without leading zeros`);
  }
  const prefix = Number(prefixText);
  const bits = v4 ? v4.split('.').map(Number) : v6!.flatMap((g) => [g >> 8, g & 0xff]);
  const network = bits.map((b, i) => b & (0xff << Math.max(0, 8 - Math.max(0, prefix - 8 * i))) & 0xff);
  const format = (bytes: number[]) => v4 ? bytes.join('.') : formatIPv6(Array.from({ length: 8 }, (_, i) => (bytes[2 * i]! << 8) | bytes[2 * i + 1]!));
  if (network.some((b, i) => b !== bits[i])) {
    return no(`"${text}" is not a CIDR: it has host bits set; write ${format(network)}/${prefix} for the subnet, ` +
      `or ${format(bits)}/${width} for that one host`);
  }
  return ok(`${format(bits)}/${prefix}`);
}

/** `host:port` or `[ipv6]:port` for pem_db_endpoint. */
export function parseEndpoint(text: string): Parsed<{ host: string; port: number }> {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):([^:]*)$/.exec(text);
  if (!m) return no(`"${text}" is not host:port (an IPv6 address goes in brackets: [2001:db8::1]:5432)`);
  const port = m[3]!;
  if (!/^[1-9][0-9]{0,4}$/.test(port) || Number(port) > 65535) {
    return no(`"${text}": the port must be a number from 1 to 65535 without leading zeros`);
  }
  if (m[1] !== undefined) {
    const v6 = parseIPv6(m[1]);
    return v6 ? ok({ host: v6, port: Number(port) }) : no(`"${text}": "${m[1]}" in brackets is not a valid IPv6 address`);
  }
  const host = parseHostAddress(m[2]!);
  return host.ok ? ok({ host: host.value.text, port: Number(port) }) : host;
}
