// Host-key checking the way OpenSSH does it: plain and hashed (`|1|salt|hash`) host entries,
// `[host]:port` for non-standard ports, wildcard and negated patterns, `@revoked` keys.
// Pure: the file text comes in, a verdict comes out; recording a new key is a separate append.

import { createHash, createHmac } from 'node:crypto';

export interface KnownKey {
  type: string;
  /** The key blob in SSH wire format (base64-decoded). */
  blob: Buffer;
  revoked: boolean;
}

export type HostKeyVerdict =
  | { status: 'match' }
  | { status: 'unknown' }
  | { status: 'changed'; known: KnownKey[] }
  | { status: 'revoked' };

/** `host` as OpenSSH writes it in known_hosts: bare on port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export function keysForHost(text: string, host: string, port: number): KnownKey[] {
  // OpenSSH lowercases the host name before matching and before hashing (`ssh-keygen -H` too).
  const name = knownHostsName(host.toLowerCase(), port);
  const keys: KnownKey[] = [];
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (!line || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let marker: string | undefined;
    if (fields[0]!.startsWith('@')) marker = fields.shift();
    if (marker === '@cert-authority') continue; // certificates are not supported: such lines never match
    const [hosts, type, key] = fields;
    if (!hosts || !type || !key) continue;
    if (!hostsFieldMatches(hosts, name)) continue;
    keys.push({ type, blob: Buffer.from(key, 'base64'), revoked: marker === '@revoked' });
  }
  return keys;
}

export function verifyHostKey(text: string, host: string, port: number, presented: Buffer): HostKeyVerdict {
  return verdictFor(keysForHost(text, host, port), presented);
}

/** The verdict on a presented key, given the known keys of that host. */
export function verdictFor(keys: KnownKey[], presented: Buffer): HostKeyVerdict {
  if (keys.some((k) => k.revoked && k.blob.equals(presented))) return { status: 'revoked' };
  const usable = keys.filter((k) => !k.revoked);
  if (usable.some((k) => k.blob.equals(presented))) return { status: 'match' };
  if (usable.length === 0) return { status: 'unknown' };
  // OpenSSH calls a key "changed" only when a key of the same type is known; we are stricter:
  // any known key for the host that differs means the host is not the one we know.
  return { status: 'changed', known: usable };
}

function hostsFieldMatches(field: string, name: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    const digest = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return digest === hash;
  }
  let matched = false;
  for (const pattern of field.split(',')) {
    const negated = pattern.startsWith('!');
    const body = negated ? pattern.slice(1) : pattern;
    if (globMatch(body.toLowerCase(), name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

function globMatch(pattern: string, text: string): boolean {
  // Most entries are plain names: compare them as strings (a known_hosts of many hosts is read
  // for every connection).
  if (!pattern.includes('*') && !pattern.includes('?')) return pattern === text;
  // `[` and `]` are literal here: they bracket `[host]:port`, they are no character class.
  const re = new RegExp('^' + pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$');
  return re.test(text);
}

/** The key type name inside a wire-format blob (`ssh-ed25519`, `ssh-rsa`, ...). */
export function keyType(blob: Buffer): string {
  const len = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + len).toString('latin1');
}

/** `SHA256:...` as `ssh-keygen -l` prints it. */
export function fingerprint(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

export function knownHostsLine(host: string, port: number, blob: Buffer): string {
  return `${knownHostsName(host, port)} ${keyType(blob)} ${blob.toString('base64')}\n`;
}

/** ssh2 host-key algorithm preferences that put the types we already know first, as OpenSSH does. */
export function preferredHostKeyAlgorithms(known: KnownKey[]): string[] {
  const all = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  const algorithmsFor = (type: string) => (type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [type]);
  // A revoked key says nothing about which type the host really uses.
  const first = known.filter((k) => !k.revoked).flatMap((k) => algorithmsFor(k.type)).filter((a) => all.includes(a));
  return [...new Set([...first, ...all])];
}
