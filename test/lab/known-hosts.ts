// Strict host-key checking for the lab's tests: the key a host presents must be the one
// its known_hosts line names (plain or hashed entries, as OpenSSH writes them).
import { createHmac } from 'node:crypto';

export interface KnownHostEntry {
  /** Host patterns of the line ("10.0.0.5", "[10.0.0.5]:2222"), or a hashed "|1|salt|hash". */
  hosts: string[];
  keyType: string;
  key: Buffer; // the public key blob, as ssh2 hands it to a hostVerifier
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    // Markers (@revoked, @cert-authority) are not plain host keys: never accept them as one.
    if (line === '' || line.startsWith('#') || line.startsWith('@')) continue;
    const [hosts, keyType, key] = line.split(/\s+/);
    if (!hosts || !keyType || !key) continue;
    entries.push({ hosts: hosts.split(','), keyType, key: Buffer.from(key, 'base64') });
  }
  return entries;
}

/** How OpenSSH names a host in known_hosts: bare for port 22, else "[host]:port". */
export const knownHostName = (address: string, port: number): string => (port === 22 ? address : `[${address}]:${port}`);

function matches(pattern: string, name: string): boolean {
  if (pattern.startsWith('|1|')) {
    const [, , salt, hash] = pattern.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  return pattern === name;
}

export function keysFor(entries: KnownHostEntry[], address: string, port: number): Buffer[] {
  const name = knownHostName(address, port);
  return entries.filter((e) => e.hosts.some((p) => matches(p, name))).map((e) => e.key);
}

/** An ssh2 `hostVerifier`: accept only a key recorded for this address and port. */
export function hostVerifierFor(entries: KnownHostEntry[], address: string, port: number): (key: Buffer) => boolean {
  const known = keysFor(entries, address, port);
  return (key) => known.some((k) => k.equals(key));
}
