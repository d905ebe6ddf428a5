// SSH connections with node-ssh (ssh2 underneath): one per host per run, host keys checked
// against known_hosts, ProxyJump chains, key file / agent / default keys, sudo for become.

import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname } from 'node:path';
import type { Duplex } from 'node:stream';
import { NodeSSH, type Config } from 'node-ssh';
import type { ClientChannel } from 'ssh2';
import { UnreachableError } from '../errors.ts';
import type { Connection, ConnectionStats, ExecOptions, HoldResult, RunResult } from '../connection.ts';
import { shellQuote } from '../remote/shell.ts';
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

const BECOME_MARK = '__pem_settings_become_ok__';
const SUDO_PROMPT = '[pem-settings sudo password]';

export interface CommandInput {
  /** The login user. */
  login: string;
  /** Another user to run as, if any. */
  user?: string;
  timeoutSec?: number;
  /** sudo will be given a password on standard input when it asks. */
  askPassword: boolean;
}

/**
 * The command line sshd runs: always `/bin/sh -s` reading the script from standard input, started
 * in `/` (a user switched to keeps the caller's directory, and psql run as postgres from root's
 * home complains on standard error), under timeout(1) (which stops the whole process group), as
 * another user through runuser when logged in as root (no sudo needed: many database servers
 * have none) and through sudo otherwise. It never carries a secret or the script itself.
 */
export function remoteCommand(c: CommandInput): string {
  const shell = c.timeoutSec === undefined ? '/bin/sh -s' : `timeout -k 5 ${c.timeoutSec} /bin/sh -s`;
  if (c.user === undefined) return `cd / && exec ${shell}`;
  const u = shellQuote(c.user);
  if (c.login === 'root') return `cd / && exec runuser -u ${u} -- ${shell}`;
  if (!c.askPassword) return `cd / && exec sudo -n -H -u ${u} -- ${shell}`;
  // sudo reads the password from standard input when it asks; the marker tells us the shell
  // itself has started, so the script never goes to sudo (nor the password to the shell).
  const inner = `echo ${BECOME_MARK} >&2; exec ${shell}`;
  return `cd / && exec sudo -S -p ${shellQuote(SUDO_PROMPT)} -H -u ${u} -- /bin/sh -c ${shellQuote(inner)}`;
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
    const { result, release } = await this.exec(script, options, holdUntil);
    return { ...result, release };
  }

  async forward(host: string, port: number): Promise<Duplex> {
    return (await this.ssh.forwardOut('127.0.0.1', 0, host, port)) as unknown as Duplex;
  }

  async close(): Promise<void> {
    this.ssh.dispose();
    for (const j of this.jumps.reverse()) j.dispose();
  }
}

/** What a command on a channel settles with: its result, and how to let a held command finish. */
interface ChannelOutcome {
  result: RunResult;
  release: () => Promise<void>;
}

/** What one command needs besides its channel. */
interface ChannelCommandSpec {
  script: string;
  /** The line that settles a held command (see SshConnection.exec). */
  holdUntil?: string;
  timeoutSec?: number;
  /** The password for sudo's prompt, when sudo will ask for one. */
  password?: string;
  /** Set when becoming another user: turns the standard error of a failed command into advice. */
  becomeFailure?: (stderr: string, refused: boolean) => string;
}

/**
 * One command on one ssh2 channel: gives it the script (after sudo's password, if any), counts
 * the bytes both ways, collects its output and settles exactly once — when a held command prints
 * its line, or when the channel closes.
 */
class ChannelCommand {
  private readonly out: Buffer[] = [];
  private errText = '';
  private settled = false;
  private safetyFired = false;
  private readonly sudo: SudoDialogue;
  private readonly closed: Promise<void>;

  constructor(private readonly channel: ClientChannel, private readonly counts: ConnectionStats,
    private readonly spec: ChannelCommandSpec, private readonly settle: (outcome: ChannelOutcome) => void) {
    this.sudo = new SudoDialogue(channel, spec.password);
    this.closed = new Promise<void>((done) => channel.on('close', () => done()));
  }

  start(): void {
    this.armSafetyTimer();
    this.channel.on('data', (d: Buffer) => this.onStdout(d));
    this.channel.stderr.on('data', (d: Buffer) => this.onStderr(d));
    this.channel.on('close', (code: number | null | undefined) => this.onClose(code));
    // Without a password to give, standard input belongs to the script from the start.
    if (this.sudo.started) this.sendScript();
  }

  // timeout(1) on the host stops the command; should the host not even manage that, the
  // channel is closed from here a little later, so no step waits forever.
  private armSafetyTimer(): void {
    const { timeoutSec } = this.spec;
    const safety = timeoutSec === undefined ? undefined : setTimeout(() => {
      this.safetyFired = true;
      this.channel.close();
    }, (timeoutSec + 15) * 1000);
    void this.closed.then(() => clearTimeout(safety));
  }

  /** Ends a held command's standard input, so its script can finish, and waits for the channel to close. */
  private async release(): Promise<void> {
    this.channel.end();
    await this.closed;
  }

  private sendScript(): void {
    const data = Buffer.from(this.spec.script);
    this.counts.bytesSent += data.length;
    if (this.spec.holdUntil) this.channel.write(data);
    else this.channel.end(data);
  }

  private onStdout(d: Buffer): void {
    this.counts.bytesReceived += d.length;
    this.out.push(d);
    if (this.spec.holdUntil && !this.settled) this.settleIfHeld(this.spec.holdUntil);
  }

  /** A held command settles once `holdUntil` is printed on a line of its own; what came before is its output. */
  private settleIfHeld(holdUntil: string): void {
    const text = Buffer.concat(this.out).toString('utf8');
    const at = text.indexOf(`${holdUntil}\n`);
    if (at >= 0 && (at === 0 || text[at - 1] === '\n')) {
      this.settled = true;
      this.settle({ result: { stdout: text.slice(0, at), stderr: this.errText, code: 0 }, release: () => this.release() });
    }
  }

  private onStderr(d: Buffer): void {
    this.counts.bytesReceived += d.length;
    this.errText += d.toString('utf8');
    if (this.sudo.started) return;
    const { stderr, shellStarted } = this.sudo.answer(this.errText);
    this.errText = stderr;
    if (shellStarted) this.sendScript();
  }

  // ssh2 closes a channel with no exit status at all (undefined, not null as for a signal)
  // only when the connection itself went away: the command's outcome is then unknown.
  private onClose(code: number | null | undefined): void {
    if (this.settled) return;
    this.settled = true;
    const { timeoutSec, becomeFailure } = this.spec;
    const lost = code === undefined && !this.safetyFired;
    const status = code ?? 255;
    const stderr = lost ? `${this.errText}the SSH connection dropped before the command finished\n`
      : becomeFailure && status !== 0 ? becomeFailure(this.errText, this.sudo.refused) : this.errText;
    // timeout(1) exits 124 when it stopped the command (137 when it had to kill it).
    const timedOut = !lost && timeoutSec !== undefined && (status === 124 || status === 137 || this.safetyFired) ? timeoutSec : undefined;
    const stdout = Buffer.concat(this.out).toString('utf8');
    this.settle({ result: { stdout, stderr, code: status, ...(lost ? { lost: true } : {}), ...(timedOut ? { timedOut } : {}) }, release: async () => {} });
  }
}

/**
 * sudo's side of a become with a password (see remoteCommand): answers sudo's prompt on the
 * channel's standard input, and tells when the shell itself has started — only then may the
 * script be sent, so the script never goes to sudo nor the password to the shell.
 */
class SudoDialogue {
  /** Whether standard input now belongs to the script; from the start when there is no password to give. */
  started: boolean;
  /** sudo asked a second time: the password was wrong. */
  refused = false;
  private sentPassword = false;

  constructor(private readonly channel: ClientChannel, private readonly password: string | undefined) {
    this.started = password === undefined;
  }

  /** Reads standard error so far; returns it without sudo's prompt and our marker, and whether the shell just started. */
  answer(stderr: string): { stderr: string; shellStarted: boolean } {
    if (this.started || this.password === undefined) return { stderr, shellStarted: false };
    let text = stderr;
    if (text.includes(SUDO_PROMPT)) {
      text = text.replace(SUDO_PROMPT, '');
      // A second prompt means the password was wrong: end input so sudo gives up instead of waiting.
      if (this.sentPassword) {
        this.refused = true;
        this.channel.end();
      } else this.channel.write(this.password + '\n');
      this.sentPassword = true;
    }
    if (text.includes(BECOME_MARK + '\n')) {
      this.started = true;
      return { stderr: text.replace(BECOME_MARK + '\n', ''), shellStarted: true };
    }
    return { stderr: text, shellStarted: false };
  }
}
