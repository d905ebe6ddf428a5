// One SSH connection per host per run, opened on first use and shared by every step; and the
// run locks, taken so that two runs can never deadlock: every lock is first tried at once on
// every host (with the host's first operation, in the same round trip); if another run holds
// some, this run lets go of every lock that comes after the first busy one in a fixed order
// (address, port, user) and then takes the rest one by one in that order, waiting for each up to
// --lock-timeout. A run only ever waits while holding locks that come earlier in the order, so
// two runs cannot each wait for the other; the one that waited then reads its facts afresh.

import type { Connection, ConnectionStats, ExecOptions, HoldResult, RunResult } from './connection.ts';
import { HostError, UnreachableError } from './errors.ts';
import { forEachLimited } from './pool.ts';
import type { Output } from './remote/frame.ts';
import { lockScript, servedScript, type LockOutcome } from './remote/lock.ts';
import { connect } from './ssh/connect.ts';
import type { HostAccess } from './targets.ts';

/** A session that holds a host's run lock for one user and runs the host's first operation. */
export interface Opening {
  /** Unique within the run: a host may need two (as the cluster's user and as the web app's). */
  id: string;
  host: string;
  /** The user the session runs as; the lock is that user's. Default: the login user. */
  user?: string;
  /** The first operation, run once the lock is held. */
  script: string;
}

export interface Opened {
  conn: Connection;
  out: Output;
}

export interface LockSettings {
  runId: string;
  /** Who holds the lock, for a run that has to wait. */
  holder: string;
  waitSec: number;
  /** Tells the operator that a run is waiting, and for whom. */
  notify(text: string): void;
}

/** Runs a script in a held session (as its user, under timeout(1)). */
type RunInSession = (script: string, timeoutSec: number) => Promise<RunResult>;

type Attempt = { lock: LockOutcome; opened?: Opened; release?: () => Promise<void>; send?: RunInSession };

export class Connections {
  private readonly open = new Map<string, Promise<Connection>>();
  private readonly sessions = new Map<string, Promise<Opened>>();
  private readonly releases: (() => Promise<void>)[] = [];
  /** The locked sessions that take further scripts, by opening. */
  private readonly held = new Map<string, { user: string | undefined; send: RunInSession }>();

  constructor(private readonly access: Map<string, HostAccess>, private readonly locks: LockSettings) {}

  /** The host's connection (no lock: use `openAll` first for every host the run changes). */
  get(host: string): Promise<Connection> {
    let c = this.open.get(host);
    if (!c) {
      const access = this.access.get(host);
      c = access ? connect(access.target) : Promise.reject(new HostError(host, 'connect', 'no connection settings for this host'));
      c.catch(() => {}); // reported by whoever awaits it; this copy must not crash the process
      this.open.set(host, c);
    }
    return c;
  }

  /** The result of an opening once `openAll` has taken its lock and run its first operation. */
  opened(id: string): Promise<Opened> {
    const s = this.sessions.get(id);
    if (!s) return Promise.reject(new Error(`internal: no opening ${id}`));
    return s;
  }

  /** Takes every opening's lock and runs its first operation (see the head of this file). */
  openAll(openings: Opening[], forks: number): Promise<void> {
    const settle = new Map<string, { resolve: (o: Opened) => void; reject: (e: unknown) => void }>();
    for (const o of openings) {
      const p = new Promise<Opened>((resolve, reject) => settle.set(o.id, { resolve, reject }));
      p.catch(() => {});
      this.sessions.set(o.id, p);
    }
    return this.lockInOrder(openings, forks, (o, r) => {
      const s = settle.get(o.id)!;
      if (r instanceof Error) s.reject(r);
      else s.resolve(r);
    });
  }

  private async lockInOrder(openings: Opening[], forks: number, done: (o: Opening, r: Opened | Error) => void): Promise<void> {
    const first = new Map<string, Attempt | Error>();
    await forEachLimited(openings, forks, async (o) => {
      first.set(o.id, await this.attempt(o, 0).catch(asError));
    });
    const busy = openings.filter((o) => { const a = first.get(o.id); return !(a instanceof Error) && a?.lock.state === 'busy'; });
    const order = (o: Opening) => this.orderKey(o);
    const firstBusy = busy.map(order).sort()[0];
    const again: Opening[] = [];
    for (const o of openings) {
      const a = first.get(o.id)!;
      if (firstBusy !== undefined && order(o) >= firstBusy && !(a instanceof Error)) {
        await a.release?.();
        again.push(o);
      } else this.finish(o, a, done);
    }
    again.sort((x, y) => (order(x) < order(y) ? -1 : order(x) > order(y) ? 1 : 0));
    for (const o of again) {
      const a = first.get(o.id) as Attempt;
      if (a.lock.state === 'busy') {
        this.locks.notify(`${o.host}: waiting up to ${this.locks.waitSec} s for the run lock${o.user ? ` of ${o.user}` : ''}, held by ${a.lock.holder}`);
      }
      this.finish(o, await this.attempt(o, this.locks.waitSec).catch(asError), done);
    }
  }

  private finish(o: Opening, a: Attempt | Error, done: (o: Opening, r: Opened | Error) => void): void {
    if (a instanceof Error) return done(o, a);
    if (a.release) this.releases.push(a.release);
    if (a.send && a.lock.state !== 'busy' && a.lock.state !== 'refused') this.held.set(o.id, { user: o.user, send: a.send });
    const lock = a.lock;
    if (lock.state === 'busy') {
      return done(o, new HostError(o.host, 'lock', `another pem-settings run holds this host's run lock (${lock.holder}) and did not finish within ${this.locks.waitSec} s`,
        'wait for it to finish, or give it longer with --lock-timeout; the lock is released when that run ends or its connection drops'));
    }
    if (lock.state === 'refused') return done(o, new HostError(o.host, 'lock', `cannot take the run lock: ${lock.reason}`));
    done(o, a.opened ?? new Error(`internal: the session of ${o.id} opened without output`));
  }

  private async attempt(o: Opening, waitSec: number): Promise<Attempt> {
    const conn = await this.get(o.host);
    const timeoutSec = this.access.get(o.host)?.target.commandTimeoutSec;
    const lock = lockScript(o.script, { runId: this.locks.runId, holder: this.locks.holder, waitSec, user: o.user ?? conn.user, ...(timeoutSec ? { timeoutSec } : {}) });
    const held = await conn.hold(lock.script, lock.heldMarker, o.user ? { user: o.user } : {});
    if (held.lost) throw new UnreachableError(o.host, 'lock', 'the SSH connection dropped while taking the run lock');
    const { lock: outcome, body } = lock.read(held.stdout);
    if (!/^#lock /m.test(held.stdout)) {
      // The shell never started (sudo refused, say): what it said is the whole story.
      await held.release();
      return { lock: { state: 'held' }, opened: { conn, out: { stdout: '', stderr: held.stderr, code: held.code === 0 ? 255 : held.code } } };
    }
    if (outcome.state === 'busy' || outcome.state === 'refused') {
      await held.release();
      return { lock: outcome };
    }
    const send = held.send;
    return {
      lock: outcome, opened: { conn, out: body ?? { stdout: '', stderr: held.stderr, code: held.code || 255 } }, release: held.release,
      ...(send ? { send: (script: string, timeoutSec: number) => send(servedScript(lock.heldMarker, script, timeoutSec), timeoutSec) } : {}),
    };
  }

  private orderKey(o: Opening): string {
    const t = this.access.get(o.host)?.target;
    return `${t?.address ?? o.host}\u0000${String(t?.port ?? 22).padStart(5, '0')}\u0000${o.user ?? t?.user ?? ''}`;
  }

  /**
   * The host's connection, with the scripts of the opening's user sent through its locked session
   * when there is one (no new session, no second sudo); anything else goes the usual way.
   */
  async session(id: string, host: string): Promise<Connection> {
    const conn = await this.get(host);
    const held = this.held.get(id);
    if (!held) return conn;
    return new LockedSession(conn, held.user, held.send, this.access.get(host)?.target.commandTimeoutSec ?? 120);
  }

  /** Per host: connections opened, commands run, bytes sent and received. */
  async statsByHost(): Promise<Record<string, ConnectionStats>> {
    const out: Record<string, ConnectionStats> = {};
    for (const [host, c] of this.open) {
      const conn = await c.catch(() => undefined);
      if (conn) out[host] = conn.stats;
    }
    return out;
  }

  async closeAll(): Promise<void> {
    await Promise.allSettled(this.releases.map((r) => r()));
    const settled = await Promise.allSettled(this.open.values());
    for (const s of settled) if (s.status === 'fulfilled') await s.value.close();
  }
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/** A host's connection whose scripts, when run as the locked session's user, go through that session. */
class LockedSession implements Connection {
  constructor(private readonly conn: Connection, private readonly sessionUser: string | undefined,
    private readonly send: RunInSession, private readonly defaultTimeoutSec: number) {}

  get host(): string {
    return this.conn.host;
  }

  get user(): string {
    return this.conn.user;
  }

  get stats(): ConnectionStats {
    return this.conn.stats;
  }

  run(script: string, options: ExecOptions = {}): Promise<RunResult> {
    if (options.user !== this.sessionUser) return this.conn.run(script, options);
    return this.send(script, options.timeoutSec ?? this.defaultTimeoutSec);
  }

  hold(script: string, holdUntil: string, options?: ExecOptions): Promise<HoldResult> {
    return this.conn.hold(script, holdUntil, options);
  }

  forward(host: string, port: number): ReturnType<Connection['forward']> {
    return this.conn.forward(host, port);
  }

  close(): Promise<void> {
    return this.conn.close();
  }
}
