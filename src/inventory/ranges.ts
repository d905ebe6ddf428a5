// Ansible host ranges: `web[01:20].example.com`, `db-[a:f]`, `node[1:10:2]`. Numeric bounds with
// leading zeros keep their width, as Ansible's expand_hostname_range does.

export class HostRangeError extends Error {}

const RANGE = /\[([^\]]*)\]/;

export function expandHostRange(pattern: string): string[] {
  const m = RANGE.exec(pattern);
  if (!m) return [pattern];
  const head = pattern.slice(0, m.index);
  const tail = pattern.slice(m.index + m[0].length);
  const parts = m[1]!.split(':');
  if (parts.length < 2 || parts.length > 3) {
    throw new HostRangeError(`invalid host range [${m[1]}]: expected [start:end] or [start:end:step]`);
  }
  const [beg = '', end = '', stepText = '1'] = parts;
  if (end === '') throw new HostRangeError(`invalid host range [${m[1]}]: the end of the range is missing`);
  if (!/^\d+$/.test(stepText) || Number(stepText) < 1) {
    throw new HostRangeError(`invalid host range [${m[1]}]: step must be a positive integer`);
  }
  const step = Number(stepText);
  let items: string[];
  if (/^\d*$/.test(beg) && /^\d+$/.test(end)) {
    const from = beg === '' ? 0 : Number(beg);
    const to = Number(end);
    if (from > to) throw new HostRangeError(`invalid host range [${m[1]}]: start is after end`);
    const width = beg.length > 1 && beg.startsWith('0') ? beg.length : 0;
    items = [];
    for (let n = from; n <= to; n += step) items.push(String(n).padStart(width, '0'));
  } else if (/^[a-zA-Z]$/.test(beg) && /^[a-zA-Z]$/.test(end)) {
    const from = beg.charCodeAt(0);
    const to = end.charCodeAt(0);
    if (from > to) throw new HostRangeError(`invalid host range [${m[1]}]: start is after end`);
    items = [];
    for (let c = from; c <= to; c += step) items.push(String.fromCharCode(c));
  } else {
    throw new HostRangeError(`invalid host range [${m[1]}]: bounds must both be numbers or both single letters`);
  }
  return items.flatMap((item) => expandHostRange(head + item + tail));
}

/** Splits `host:port` (and `[v6]:port`) the way Ansible's INI plugin does. */
export function splitHostPort(token: string): { pattern: string; port?: number } {
  if (token.endsWith(':')) throw new HostRangeError(`invalid host "${token}": ending in ':' is reserved for a port`);
  const bracketV6 = /^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/.exec(token);
  if (bracketV6) return { pattern: bracketV6[1]!, port: bracketV6[2] ? Number(bracketV6[2]) : undefined };
  // Colons inside a range bracket ([1:3]) are not port separators; look only outside them.
  const outside = token.replace(/\[[^\]]*\]/g, (m) => '_'.repeat(m.length));
  const colons = outside.split(':').length - 1;
  if (colons !== 1) return { pattern: token }; // none, or a bare IPv6 address
  const at = outside.indexOf(':');
  const port = token.slice(at + 1);
  if (!/^\d+$/.test(port)) throw new HostRangeError(`invalid host "${token}": the port after ':' must be a number`);
  return { pattern: token.slice(0, at), port: Number(port) };
}
