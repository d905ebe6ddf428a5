// Host-key verdicts the way OpenSSH gives them, on known_hosts files written by hand and by
// `ssh-keygen -H` (test/fixtures/ssh/README.md says how each fixture was made).
import test from 'ava';
import { readFileSync } from 'node:fs';
import {
  fingerprint, keysForHost, keyType, knownHostsLine, knownHostsName, preferredHostKeyAlgorithms, verifyHostKey, type HostKeyVerdict,
} from '../../src/ssh/known-hosts.ts';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/ssh/${name}`, import.meta.url), 'utf8');
const blob = (key: string) => Buffer.from(fixture(`key_${key}.pub`).split(' ')[1]!, 'base64');
const PLAIN = fixture('plain.known_hosts');
const HASHED = fixture('hashed.known_hosts');

const verdicts: [title: string, text: string, host: string, port: number, key: string, status: HostKeyVerdict['status']][] = [
  ['a plain entry matches its address', PLAIN, '10.0.0.5', 22, 'a_ed25519', 'match'],
  ['a host with several keys accepts each of its types', PLAIN, '10.0.0.5', 22, 'a_ecdsa', 'match'],
  ['a line with a trailing comment still matches', PLAIN, '10.0.0.5', 22, 'a_rsa', 'match'],
  ['a comma list names the host by another name', PLAIN, 'host-a.example.com', 22, 'a_ed25519', 'match'],
  ['host names match whatever their case', PLAIN, 'HOST-A.Example.COM', 22, 'a_ed25519', 'match'],
  ['another key for a known host is a changed key', PLAIN, '10.0.0.5', 22, 'b_ed25519', 'changed'],
  ['[host]:port matches on that port', PLAIN, '10.0.0.6', 2222, 'b_ed25519', 'match'],
  ['[host]:port does not vouch for port 22', PLAIN, '10.0.0.6', 22, 'b_ed25519', 'unknown'],
  ['a bare host does not vouch for another port', PLAIN, '10.0.0.5', 2222, 'a_ed25519', 'unknown'],
  ['a * wildcard matches', PLAIN, 'db1.lab.example', 22, 'c_ecdsa384', 'match'],
  ['a negated pattern excludes a host the wildcard would match', PLAIN, 'bad.lab.example', 22, 'c_ecdsa384', 'unknown'],
  ['a ? wildcard matches one character', PLAIN, 'web-7.dc1.example', 22, 'b_ed25519', 'match'],
  ['a ? wildcard does not match two characters', PLAIN, 'web-17.dc1.example', 22, 'b_ed25519', 'unknown'],
  ['a dot in a pattern is literal', PLAIN, '10x0x0x5', 22, 'a_ed25519', 'unknown'],
  ['@revoked refuses the key for every host', PLAIN, '10.0.0.5', 22, 'imp_ed25519', 'revoked'],
  ['@revoked refuses the key even where nothing else is known', PLAIN, 'new.example.org', 22, 'imp_ed25519', 'revoked'],
  ['@cert-authority lines are no host keys', PLAIN, 'www.example.com', 22, 'b_ed25519', 'unknown'],
  ['a host not in the file is unknown', PLAIN, '192.0.2.1', 22, 'a_ed25519', 'unknown'],
  ['a hashed entry matches its address', HASHED, '10.0.0.5', 22, 'a_ed25519', 'match'],
  ['a hashed [host]:port entry matches on that port', HASHED, '10.0.0.6', 2222, 'b_ed25519', 'match'],
  ['a hashed [host]:port entry does not vouch for port 22', HASHED, '10.0.0.6', 22, 'b_ed25519', 'unknown'],
  ['a hashed name written in capitals matches in any case', HASHED, 'host-a.example.com', 22, 'a_rsa', 'match'],
  ['a hashed entry with another key is a changed key', HASHED, '10.0.0.5', 22, 'imp_ed25519', 'changed'],
  ['CRLF line endings are read like LF', PLAIN.replace(/\n/g, '\r\n'), '10.0.0.6', 2222, 'b_ed25519', 'match'],
];

for (const [title, text, host, port, key, status] of verdicts) {
  test(`known_hosts: ${title}`, (t) => {
    t.is(verifyHostKey(text, host, port, blob(key)).status, status);
  });
}

test('known_hosts: a changed verdict lists every key known for the host, for the message', (t) => {
  const v = verifyHostKey(PLAIN, '10.0.0.5', 22, blob('b_ed25519'));
  t.is(v.status, 'changed');
  if (v.status !== 'changed') return;
  t.deepEqual(v.known.map((k) => k.type), ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ssh-rsa']);
  t.deepEqual(v.known.map((k) => k.blob), [blob('a_ed25519'), blob('a_ecdsa'), blob('a_rsa')]);
});

test('known_hosts: keysForHost returns the host\'s own and the revoked keys, no certificate authority', (t) => {
  t.deepEqual(keysForHost(PLAIN, 'www.example.com', 22), [{ type: 'ssh-ed25519', blob: blob('imp_ed25519'), revoked: true }]);
  t.deepEqual(keysForHost(HASHED, '10.0.0.6', 2222), [{ type: 'ssh-ed25519', blob: blob('b_ed25519'), revoked: false }]);
});

test('fingerprints are what ssh-keygen -lf prints, for every key type', (t) => {
  // fingerprints.txt is `ssh-keygen -lf key_*.pub` output: "bits SHA256:... comment (TYPE)".
  const lines = fixture('fingerprints.txt').trim().split('\n');
  t.is(lines.length, 6);
  for (const line of lines) {
    const [, fp, comment] = line.split(' ');
    const file = { 'host-a-ecdsa': 'a_ecdsa', 'host-a-ed25519': 'a_ed25519', 'host-a-rsa': 'a_rsa', 'host-b': 'b_ed25519', 'host-c': 'c_ecdsa384', impostor: 'imp_ed25519' }[comment!]!;
    t.is(fingerprint(blob(file)), fp!, comment);
  }
});

const types: [string, string][] = [
  ['a_ed25519', 'ssh-ed25519'], ['a_ecdsa', 'ecdsa-sha2-nistp256'], ['c_ecdsa384', 'ecdsa-sha2-nistp384'], ['a_rsa', 'ssh-rsa'],
];
for (const [key, type] of types) {
  test(`the key type is read from the key itself: ${type}`, (t) => {
    t.is(keyType(blob(key)), type);
  });
}

test('a recorded key is a line OpenSSH reads back: bare on port 22, [host]:port otherwise', (t) => {
  const key = blob('b_ed25519');
  t.is(knownHostsLine('10.0.0.9', 22, key), `10.0.0.9 ${fixture('key_b_ed25519.pub').split(' ').slice(0, 2).join(' ')}\n`);
  const onPort = knownHostsLine('10.0.0.9', 2200, key);
  t.is(onPort, `[10.0.0.9]:2200 ssh-ed25519 ${key.toString('base64')}\n`);
  t.is(verifyHostKey(onPort, '10.0.0.9', 2200, key).status, 'match');
  t.is(knownHostsName('::1', 2200), '[::1]:2200');
});

const preferences: [title: string, host: string, port: number, first: string[]][] = [
  ['a host known by ed25519, ecdsa and rsa keys offers those first, in file order', '10.0.0.5', 22,
    ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']],
  ['a host known only by ecdsa-384 asks for that first', 'db1.lab.example', 22, ['ecdsa-sha2-nistp384', 'ssh-ed25519']],
  ['an unknown host gets the default order', '192.0.2.1', 22, ['ssh-ed25519', 'ecdsa-sha2-nistp256']],
];
for (const [title, host, port, first] of preferences) {
  test(`host-key algorithms: ${title}`, (t) => {
    const algorithms = preferredHostKeyAlgorithms(keysForHost(PLAIN, host, port));
    t.deepEqual(algorithms.slice(0, first.length), first);
    t.is(new Set(algorithms).size, algorithms.length, 'no duplicates');
    t.deepEqual([...algorithms].sort(), ['ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-256', 'rsa-sha2-512', 'ssh-ed25519', 'ssh-rsa']);
  });
}

test('host-key algorithms: a revoked key does not steer the choice', (t) => {
  const text = `@revoked * ssh-ed25519 ${blob('imp_ed25519').toString('base64')}\nhost-r ssh-rsa ${blob('a_rsa').toString('base64')}\n`;
  t.deepEqual(preferredHostKeyAlgorithms(keysForHost(text, 'host-r', 22)).slice(0, 4), ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa', 'ssh-ed25519']);
});
