// The parts of `ansible_ssh_common_args` (OpenSSH command-line options) that change how we
// connect: -o Key=Value options, -J, -p, -i. Values are parsed with the ssh-config library,
// which knows OpenSSH's `Key=Value` / `Key Value` forms and quoting.

import SSHConfig from 'ssh-config';
import { shlexSplit } from '../inventory/shlex.ts';

export interface SshOptions {
  proxyJump?: JumpHost[];
  userKnownHostsFiles?: string[];
  strictHostKeyChecking?: 'yes' | 'no' | 'accept-new';
  connectTimeoutSeconds?: number;
  port?: number;
  user?: string;
  identityFile?: string;
}

export interface JumpHost {
  user?: string;
  host: string;
  port: number;
}

export class SshOptionsError extends Error {}

// Options an Ansible inventory commonly carries that only tune OpenSSH's own client; ignoring
// them changes nothing about where we connect or what we trust.
const HARMLESS = new Set(['controlmaster', 'controlpersist', 'controlpath', 'serveraliveinterval', 'serveralivecountmax',
  'compression', 'loglevel', 'forwardagent', 'identitiesonly', 'preferredauthentications', 'pubkeyauthentication',
  'passwordauthentication', 'gssapiauthentication', 'tcpkeepalive', 'addressfamily', 'ciphers', 'kexalgorithms',
  'hostkeyalgorithms', 'pubkeyacceptedkeytypes', 'pubkeyacceptedalgorithms', 'hashknownhosts', 'batchmode', 'requesttty']);

export function parseSshCommonArgs(args: string): SshOptions {
  return optionsFromConfig(configLines(shlexSplit(args, { comments: false })));
}

/**
 * The command-line options as ssh_config lines (`-J host` becomes `ProxyJump host`), so that one
 * parser reads both forms. Flags that take no value and do not change the connection are skipped.
 */
function configLines(words: string[]): string[] {
  const lines: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    // OpenSSH takes a flag's value glued on (`-p2222`) or as the next word (`-p 2222`).
    const takeValue = (flag: string) => {
      if (w.length > 2) return w.slice(2);
      const v = words[++i];
      if (v === undefined) throw new SshOptionsError(`${flag} needs a value`);
      return v;
    };
    if (w.startsWith('-o')) lines.push(takeValue('-o'));
    else if (w.startsWith('-J')) lines.push(`ProxyJump ${takeValue('-J')}`);
    else if (w.startsWith('-p')) lines.push(`Port ${takeValue('-p')}`);
    else if (w.startsWith('-i')) lines.push(`IdentityFile ${takeValue('-i')}`);
    else if (w.startsWith('-l')) lines.push(`User ${takeValue('-l')}`);
    else if (/^-[46AaCgKkNnqsTtVvXxYy]+$/.test(w)) continue; // flags without values that do not matter here
    else throw new SshOptionsError(`unsupported ssh argument "${w}"`);
  }
  return lines;
}

function optionsFromConfig(lines: string[]): SshOptions {
  const opts: SshOptions = {};
  // As in OpenSSH, the first value given for an option wins; later ones are ignored.
  const seen = new Set<string>();
  for (const entry of SSHConfig.parse(lines.join('\n'))) {
    if (!('param' in entry) || !entry.param) continue;
    const key = entry.param.toLowerCase();
    const values = valuesOf(entry.value);
    if (key === 'proxycommand') throw new SshOptionsError('ProxyCommand is not supported; use ProxyJump (-J)');
    if (seen.has(key)) continue;
    seen.add(key);
    setOption(opts, key, entry.param, values);
  }
  return opts;
}

/** ssh-config splits a multi-word value into parts (a quoted part stays whole); a single word comes as a string. */
function valuesOf(value: string | { val: string }[]): string[] {
  return Array.isArray(value) ? value.map((v) => v.val) : String(value).split(/\s+/).filter(Boolean);
}

/** Records one option (`key` lower-cased, `param` as written, for messages); refuses any we do not know to be harmless. */
function setOption(opts: SshOptions, key: string, param: string, values: string[]): void {
  const value = values.join(' ');
  switch (key) {
    case 'proxyjump':
      if (value !== 'none') opts.proxyJump = value.split(',').map(parseJumpHost);
      break;
    case 'userknownhostsfile':
      opts.userKnownHostsFiles = values;
      break;
    case 'stricthostkeychecking': {
      const v = value.toLowerCase();
      opts.strictHostKeyChecking = v === 'accept-new' ? 'accept-new' : ['no', 'off'].includes(v) ? 'no' : 'yes';
      break;
    }
    case 'connecttimeout':
      opts.connectTimeoutSeconds = positiveInt(value, 'ConnectTimeout');
      break;
    case 'port':
      opts.port = positiveInt(value, 'Port');
      break;
    case 'user':
      opts.user = value;
      break;
    case 'identityfile':
      opts.identityFile = value;
      break;
    default:
      if (!HARMLESS.has(key)) throw new SshOptionsError(`unsupported ssh option "${param}"`);
  }
}

/** One ProxyJump hop: `[user@]host[:port]`, `[v6addr]:port`, or OpenSSH's `ssh://[user@]host[:port]`. */
export function parseJumpHost(spec: string): JumpHost {
  const text = spec.trim().replace(/^ssh:\/\//, '');
  const m = /^(?:([^@\s]+)@)?(\[[^\]\s]+\]|[^:@\s[\]]+)(?::(\d+))?$/.exec(text);
  const port = m?.[3] ? Number(m[3]) : 22;
  if (!m || port < 1 || port > 65535) throw new SshOptionsError(`invalid ProxyJump host "${spec}" (expected [user@]host[:port])`);
  return { ...(m[1] ? { user: m[1] } : {}), host: m[2]!.replace(/^\[|\]$/g, ''), port };
}

function positiveInt(value: string, what: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new SshOptionsError(`${what} must be a positive number, got "${value}"`);
  return Number(value);
}
