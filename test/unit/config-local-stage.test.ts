// connectionLost: telling a dropped SSH connection (the host is unreachable, its state unknown)
// from a command that failed (the host is failed), with fake connections: no host is touched.
import test from 'ava';
import type { Connection, RunResult } from '../../src/connection.ts';
import { connectionLost } from '../../tasks/config-local-stage.ts';

/** A connection whose `run` answers the probe as given, and counts how often it was asked. */
function fake(probe: () => Promise<RunResult>): Connection & { probes: number } {
  const conn = {
    host: 'web-1', user: 'admin', probes: 0,
    stats: { connections: 1, commands: 0, bytesSent: 0, bytesReceived: 0 },
    run: () => {
      conn.probes++;
      return probe();
    },
    hold: () => Promise.reject(new Error('not used')),
    forward: () => Promise.reject(new Error('not used')),
    close: () => Promise.resolve(),
  };
  return conn;
}

const ok = (): Promise<RunResult> => Promise.resolve({ stdout: '', stderr: '', code: 0 });
const cases: { name: string; code: number; probe: () => Promise<RunResult>; lost: boolean; probes: number }[] = [
  { name: 'a command that succeeded is not a lost connection, and costs no probe', code: 0, probe: ok, lost: false, probes: 0 },
  { name: 'a command that failed with its own status is not a lost connection', code: 14, probe: ok, lost: false, probes: 0 },
  { name: 'a script that exits 255 on a live connection is a failure, not a lost connection', code: 255, probe: ok, lost: false, probes: 1 },
  { name: 'exit 255 on a connection that can no longer run a command is a lost connection', code: 255, probe: () => Promise.reject(new Error('Not connected')), lost: true, probes: 1 },
  { name: 'exit 255 and the probe also ends without a status: lost', code: 255, probe: () => Promise.resolve({ stdout: '', stderr: '', code: 255 }), lost: true, probes: 1 },
];

for (const c of cases) {
  test(c.name, async (t) => {
    const conn = fake(c.probe);
    t.is(await connectionLost(conn, c.code), c.lost);
    t.is(conn.probes, c.probes);
  });
}
