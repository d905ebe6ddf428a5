// One SSH connection per host per run, opened on first use and shared by every step, each
// holding the host's run lock until the run ends.

import { HostError } from './errors.ts';
import type { Connection, ConnectionStats, RunOptions, RunResult } from './connection.ts';
import { connect } from './ssh/connect.ts';
import type { HostAccess } from './targets.ts';
import { holdLock, lockAndRun, type HeldLock } from './lock.ts';

export class Connections {
  private readonly open = new Map<string, Promise<Connection>>();
  private readonly locks: HeldLock[] = [];

  constructor(private readonly access: Map<string, HostAccess>, private readonly runId: string) {}

  get(host: string): Promise<Connection> {
    let c = this.open.get(host);
    if (!c) {
      c = this.connectAndLock(host);
      this.open.set(host, c);
    }
    return c;
  }

  /**
   * Connects, takes the run lock and runs the host's first (read-only) script in the same round
   * trip. Later `get(host)` calls share the connection.
   */
  openWith(host: string, script: string, options: RunOptions = {}): Promise<{ conn: Connection; result: RunResult }> {
    if (this.open.has(host)) return this.get(host).then(async (conn) => ({ conn, result: await conn.run(script, options) }));
    const opened = (async () => {
      const conn = await this.connectOnly(host);
      try {
        const { result, lock } = await lockAndRun(conn, this.runId, script, options);
        this.locks.push(lock);
        return { conn, result };
      } catch (e) {
        await conn.close();
        throw e;
      }
    })();
    const conn = opened.then((o) => o.conn);
    conn.catch(() => {}); // the failure is reported through `opened`; this copy must not crash the process
    this.open.set(host, conn);
    return opened;
  }

  private async connectOnly(host: string): Promise<Connection> {
    const access = this.access.get(host);
    if (!access) throw new HostError(host, 'connect', 'no connection settings for this host');
    return connect(access.target);
  }

  private async connectAndLock(host: string): Promise<Connection> {
    const conn = await this.connectOnly(host);
    try {
      this.locks.push(await holdLock(conn, this.runId));
    } catch (e) {
      await conn.close();
      throw e;
    }
    return conn;
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

  /** Every connection opened so far, for statistics. */
  async all(): Promise<Connection[]> {
    const settled = await Promise.allSettled(this.open.values());
    return settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  }

  async closeAll(): Promise<void> {
    await Promise.allSettled(this.locks.map((l) => l.release()));
    for (const c of await this.all()) await c.close();
  }
}
