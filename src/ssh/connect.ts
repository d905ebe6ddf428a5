// SSH connections with node-ssh (ssh2 underneath): one per host per run, host keys checked
// against known_hosts, ProxyJump chains, key file / agent / default keys, sudo for become.

import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname } from 'node:path';
import type { Duplex } from 'node:stream';
import { NodeSSH, type Config } from 'node-ssh';
import type { ClientChannel } from 'ssh2';
import { ChannelCommand, remoteCommand, type ChannelCommandSpec, type ChannelOutcome } from './channel.ts';
import { UnreachableError } from '../errors.ts';
import type { Connection, ConnectionStats, ExecOptions, HoldResult, RunResult } from '../connection.ts';
import {
  fingerprint, keysForHost, keyType, knownHostsLine, preferredHostKeyAlgorithms, verdictFor, type HostKeyVerdict,
} from './known-hosts.ts';
import type { JumpHost } from './options.ts';

export interface ConnectTarget {
  /** Inventory name, for messages. */
  name: string;
  address: string;
  port: number;
  user: string;
  privateKeyFile?: string;
  knownHostsFiles: string[];
  acceptNewHostKeys: boolean;
  proxyJump?: JumpHost[];
  connectTimeoutMs: number;
  /** sudo password (PEM_BECOME_PASSWORD); given to sudo on standard input only. */
  becomePassword?: string;
  /** Seconds a remote command may run before it is stopped, unless the command says otherwise. */
  commandTimeoutSec: number;
}

export function expandHome(path: string): string {
  return path === '~' ? homedir() : path.startsWith('~/') ? homedir() + path.slice(1) : path;
}

export function defaultKnownHostsFiles(): string[] {
  return [`${homedir()}/.ssh/known_hosts`, '/etc/ssh/ssh_known_hosts'];
}

export async function connect(target: ConnectTarget): Promise<Connection> {
  const jumps: NodeSSH[] = [];
  try {
    let sock: Duplex | undefined;
    for (const jump of target.proxyJump ?? []) {
      const hop: ConnectTarget = { ...target, address: jump.host, port: jump.port, user: jump.user ?? target.user };
      const ssh = await open(hop, sock, 'jump host ');
      jumps.push(ssh);
      sock = undefined;
      // The next hop is reached through this one.
      const next = jumps.length < (target.proxyJump?.length ?? 0) ? target.proxyJump![jumps.length]! : { host: target.address, port: target.port };
      try {
        sock = await ssh.forwardOut('127.0.0.1', 0, next.host, next.port) as unknown as Duplex;
      } catch (e) {
        // The jump host answered but could not open the next leg: still "unreachable", not an internal error.
        throw new UnreachableError(target.name, 'connect',
          `jump host ${jump.host}:${jump.port} cannot reach ${next.host}:${next.port}: ${(e as Error).message}`);
      }
    }
    const ssh = await open(target, sock);
    return new SshConnection(target, ssh, jumps);
  } catch (e) {
    for (const j of jumps) j.dispose();
    throw e;
  }
}

/** `role` names a jump host in messages, so an operator knows which hop failed. */
async function open(target: ConnectTarget, sock?: Duplex, role = ''): Promise<NodeSSH> {
  const files = target.knownHostsFiles.map(expandHome);
  const knownText = files.filter((f) => existsSync(f)).map((f) => readFileSync(f, 'utf8')).join('\n');
  // Read once per connection: the key types steer the negotiation, the keys judge the host.
  const known = keysForHost(knownText, target.address, target.port);
  let verdict: HostKeyVerdict | undefined;
  let presented: Buffer | undefined;
  const config: Config = {
    host: target.address,
    port: target.port,
    username: target.user,
    readyTimeout: target.connectTimeoutMs,
    // A host that stops answering is found out within about 45 s, whatever runs on it.
    keepaliveInterval: 15_000,
    keepaliveCountMax: 3,
    algorithms: { serverHostKey: preferredHostKeyAlgorithms(known) as never },
    hostVerifier: (key: Buffer) => {
      presented = key;
      verdict = verdictFor(known, key);
      if (verdict.status === 'unknown' && target.acceptNewHostKeys) {
        const file = files[0]!;
        mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
        // A file whose last line has no newline would otherwise get the new entry glued onto it.
        const current = existsSync(file) ? readFileSync(file, 'utf8') : '';
        const separator = current === '' || current.endsWith('\n') ? '' : '\n';
        appendFileSync(file, separator + knownHostsLine(target.address, target.port, key), { mode: 0o600 });
        return true;
      }
      return verdict.status === 'match';
    },
    ...(sock ? { sock: sock as never } : {}),
    ...authentication(target),
  };
  const ssh = new NodeSSH();
  try {
    await ssh.connect(config);
    return ssh;
  } catch (e) {
    ssh.dispose();
    throw unreachable(target, e as Error, verdict, presented, files, role);
  }
}

function authentication(target: ConnectTarget): Partial<Config> {
  const agent = process.env['SSH_AUTH_SOCK'];
  if (target.privateKeyFile) {
    const path = expandHome(target.privateKeyFile);
    let key: string;
    try {
      key = readFileSync(path, 'utf8');
    } catch (e) {
      throw new UnreachableError(target.name, 'connect', `cannot read ansible_ssh_private_key_file ${path}: ${(e as NodeJS.ErrnoException).code}`);
    }
    return { privateKey: key, ...(agent ? { agent } : {}) };
  }
  if (agent) return { agent };
  for (const name of ['id_ed25519', 'id_ecdsa', 'id_rsa']) {
    const path = `${homedir()}/.ssh/${name}`;
    if (existsSync(path)) return { privateKey: readFileSync(path, 'utf8') };
  }
  return {};
}

function unreachable(target: ConnectTarget, e: Error, verdict: HostKeyVerdict | undefined, key: Buffer | undefined,
  files: string[], role: string): UnreachableError {
  const where = `${role}${target.user}@${target.address}:${target.port}`;
  if (key && verdict && verdict.status !== 'match') {
    const fp = `${keyType(key)} ${fingerprint(key)}`;
    if (verdict.status === 'unknown') {
      return new UnreachableError(target.name, 'connect', `host key of ${where} is unknown (${fp})`,
        `check the fingerprint, then add it to ${files[0]} or run with --accept-new-host-keys`);
    }
    if (verdict.status === 'revoked') return new UnreachableError(target.name, 'connect', `host key of ${where} is revoked (${fp})`);
    return new UnreachableError(target.name, 'connect',
      `HOST KEY CHANGED for ${where}: it presented ${fp}, known_hosts has ${verdict.known.map((k) => `${k.type} ${fingerprint(k.blob)}`).join(', ')}`,
      'someone may be intercepting the connection; if the host was reinstalled, remove the old key from known_hosts');
  }
  const code = (e as NodeJS.ErrnoException).code;
  const level = (e as { level?: string }).level;
  if (level === 'client-authentication') {
    return new UnreachableError(target.name, 'connect', `authentication failed for ${where}`,
      'check ansible_user, ansible_ssh_private_key_file or the SSH agent');
  }
  const reason = code ? `${code} ${where}` : `${e.message} (${where})`;
  return new UnreachableError(target.name, 'connect', `cannot connect: ${reason}`);
}

class SshConnection implements Connection {
  private readonly counts: ConnectionStats = { connections: 1, commands: 0, bytesSent: 0, bytesReceived: 0 };
  private readonly socket: { bytesRead?: number; bytesWritten?: number } | undefined;
  constructor(private readonly target: ConnectTarget, private readonly ssh: NodeSSH, private readonly jumps: NodeSSH[]) {
    this.counts.connections += jumps.length;
    // ssh2 keeps its TCP socket in a private field; its byte counters are what crossed the network.
    this.socket = (ssh.connection as unknown as { _sock?: { bytesRead?: number; bytesWritten?: number } } | null)?._sock;
  }

  /** Connections, commands, and bytes on the wire (payload bytes when the socket is not a TCP socket). */
  get stats(): ConnectionStats {
    const wire = typeof this.socket?.bytesRead === 'number' && typeof this.socket.bytesWritten === 'number';
    return {
      ...this.counts,
      ...(wire ? { bytesSent: this.socket!.bytesWritten!, bytesReceived: this.socket!.bytesRead! } : {}),
    };
  }

  get host(): string {
    return this.target.name;
  }

  get user(): string {
    return this.target.user;
  }

  run(script: string, options: ExecOptions = {}): Promise<RunResult> {
    return this.exec(script, options).then((r) => r.result);
  }

  /**
   * Runs `script` (through sudo when becoming another user), its text on standard input. With
   * `holdUntil`, standard input stays open after the script and the promise resolves as soon as
   * a line equal to `holdUntil` is printed: the script can then wait (`exec cat >/dev/null`)
   * until `release()` ends its input — how a lock is held for a whole run.
   */
  private exec(script: string, options: ExecOptions, holdUntil?: string): Promise<ChannelOutcome> {
    const user = options.user !== undefined && options.user !== this.target.user ? options.user : undefined;
    // Only sudo asks for a password: root becomes another user through runuser.
    const password = user !== undefined && this.target.user !== 'root' ? this.target.becomePassword : undefined;
    // A held command lasts as long as the run that holds it, so it has no timeout.
    const timeoutSec = holdUntil ? undefined : options.timeoutSec ?? this.target.commandTimeoutSec;
    const command = remoteCommand({ login: this.target.user, user, timeoutSec, askPassword: password !== undefined });
    const spec: ChannelCommandSpec = {
      script, holdUntil, timeoutSec, password,
      ...(user !== undefined ? { becomeFailure: (stderr: string, refused: boolean) => this.sudoMessage(stderr, refused, user) } : {}),
    };
    this.counts.commands++;
    return new Promise((resolve, reject) => {
      this.ssh.connection!.exec(command, (err: Error | undefined, channel: ClientChannel) => {
        if (err) return reject(new UnreachableError(this.host, 'ssh', `cannot run a command: ${err.message}`));
        new ChannelCommand(channel, this.counts, spec, resolve).start();
      });
    });
  }

  /** sudo's own words are terse and several lines long; say which setting to fix instead. */
  private sudoMessage(stderr: string, refused: boolean, becomeUser: string | undefined): string {
    const as = `${this.target.user} (sudo -u ${becomeUser})`;
    if (refused) return `sudo refused the password in PEM_BECOME_PASSWORD for ${as}\n`;
    if (this.target.becomePassword === undefined && /^sudo: a password is required/m.test(stderr)) {
      return `sudo: a password is required for ${as}: set PEM_BECOME_PASSWORD, or allow it in sudoers with NOPASSWD\n`;
    }
    return stderr;
  }

  async hold(script: string, holdUntil: string, options: ExecOptions = {}): Promise<HoldResult> {
    const { result, release, send } = await this.exec(script, options, holdUntil);
    return { ...result, release, ...(send ? { send } : {}) };
  }

  async forward(host: string, port: number): Promise<Duplex> {
    return (await this.ssh.forwardOut('127.0.0.1', 0, host, port)) as unknown as Duplex;
  }

  async close(): Promise<void> {
    this.ssh.dispose();
    for (const j of this.jumps.reverse()) j.dispose();
  }
}
