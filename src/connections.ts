// One SSH connection per host per run, opened on first use and shared by every step, each
// holding the host's run lock until the run ends.

import { HostError } from './errors.ts';
import type { Connection } from './connection.ts';
import { connect } from './ssh/connect.ts';
import type { HostAccess } from './targets.ts';
import { holdLock, type HeldLock } from './lock.ts';

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

  private async connectAndLock(host: string): Promise<Connection> {
    const access = this.access.get(host);
    if (!access) throw new HostError(host, 'connect', 'no connection settings for this host');
    const conn = await connect(access.target);
    try {
      this.locks.push(await holdLock(conn, this.runId));
    } catch (e) {
      await conn.close();
      throw e;
    }
    return conn;
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
