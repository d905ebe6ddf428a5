// How to reach each host, from Ansible's connection variables (SPEC 3). Pure: variables in,
// a ConnectTarget (or a list of problems) out; nothing connects here.

import { userInfo } from 'node:os';
import { InventoryError } from './errors.ts';
import { asBoolean, type ResolvedHost } from './inventory/index.ts';
import { defaultKnownHostsFiles, type ConnectTarget } from './ssh/connect.ts';
import { parseSshCommonArgs, SshOptionsError } from './ssh/options.ts';

export interface HostAccess {
  target: ConnectTarget;
  /** sudo to this user for privileged steps (ansible_become_user, default root), when become is on. */
  becomeUser?: string;
}

export interface AccessOptions {
  inventoryFile: string;
  acceptNewHostKeys: boolean;
  connectTimeoutMs: number;
  commandTimeoutSec: number;
  becomePassword?: string;
}

export function hostAccess(host: ResolvedHost, options: AccessOptions, problems: Error[]): HostAccess | undefined {
  const v = host.vars;
  const bad = (reason: string) => problems.push(new InventoryError(options.inventoryFile, undefined, `host ${host.name}: ${reason}`));
  let ssh;
  try {
    ssh = parseSshCommonArgs(String(v['ansible_ssh_common_args'] ?? ''));
  } catch (e) {
    if (e instanceof SshOptionsError) return void bad(`ansible_ssh_common_args: ${e.message}`);
    throw e;
  }
  // Ansible still reads the older ansible_ssh_* names; an inventory that uses them must work unchanged.
  const get = (...names: string[]) => names.map((n) => v[n]).find((x) => x !== undefined && x !== null && x !== '');
  const connection = get('ansible_connection');
  if (connection !== undefined && !['ssh', 'smart', 'paramiko'].includes(String(connection))) {
    return void bad(`ansible_connection=${String(connection)} is not supported: pem-settings connects over SSH`);
  }
  const method = get('ansible_become_method');
  if (method !== undefined && String(method) !== 'sudo') return void bad(`ansible_become_method=${String(method)} is not supported: become uses sudo`);
  const portVar = get('ansible_port', 'ansible_ssh_port');
  const port = Number(portVar ?? ssh.port ?? 22);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return void bad(`ansible_port must be a port number, got "${String(portVar)}"`);
  const become = asBoolean(v['ansible_become'] ?? false);
  if (become === undefined) return void bad(`ansible_become must be a boolean (true/false/yes/no/1/0), got "${String(v['ansible_become'])}"`);
  const address = String(get('ansible_host', 'ansible_ssh_host') ?? host.name);
  if (/\s/.test(address)) return void bad(`ansible_host "${address}" is not a host name or address`);
  const user = String(get('ansible_user', 'ansible_ssh_user') ?? ssh.user ?? userInfo().username);
  const keyFile = get('ansible_ssh_private_key_file', 'ansible_private_key_file') ?? ssh.identityFile;
  return {
    target: {
      name: host.name,
      address,
      port,
      user,
      ...(keyFile ? { privateKeyFile: String(keyFile) } : {}),
      knownHostsFiles: ssh.userKnownHostsFiles ?? defaultKnownHostsFiles(),
      acceptNewHostKeys: options.acceptNewHostKeys || ssh.strictHostKeyChecking === 'accept-new',
      ...(ssh.proxyJump ? { proxyJump: ssh.proxyJump } : {}),
      connectTimeoutMs: (ssh.connectTimeoutSeconds ? ssh.connectTimeoutSeconds * 1000 : options.connectTimeoutMs),
      commandTimeoutSec: options.commandTimeoutSec,
      ...(options.becomePassword ? { becomePassword: options.becomePassword } : {}),
    },
    ...(become ? { becomeUser: String(get('ansible_become_user') ?? 'root') } : {}),
  };
}
