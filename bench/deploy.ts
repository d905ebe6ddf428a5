// `npm run bench -- --web 10,50,100 [--runs 5]`: how fast pem-settings is on the lab, against the
// floor of what any SSH tool must pay: one session running `true` on every web host, all at once,
// with the same SSH library and settings. Prints a table per size and writes JSON to bench/results/.
// A benchmark, not a test: it asserts nothing, it measures.

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { loadInventory, resolveAll } from '../src/inventory/index.ts';
import { connect } from '../src/ssh/connect.ts';
import { findPsql, psqlCommand } from '../src/remote/psql.ts';
import { shellQuote, withInput } from '../src/remote/shell.ts';
import { hostAccess } from '../src/targets.ts';
import { startLab, type Lab } from '../test/lab/lab.ts';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(REPO, 'bin/pem-settings.js');
const PASSWORD = 'bench-password-0123456789';

interface Timed {
  ms: number;
  code: number;
  json?: { stats?: { elapsedMs: number; maxRssKb: number; hosts: Record<string, HostStats> } };
}
interface HostStats {
  connections: number;
  commands: number;
  bytesSent: number;
  bytesReceived: number;
}

function runCli(args: string[]): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, CI: 'true', PEM_SETTINGS_PASSWORD: PASSWORD }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = performance.now() - started;
      let json;
      try {
        json = args.includes('--json') ? JSON.parse(out) : undefined;
      } catch {
        json = undefined;
      }
      if (code !== 0 && code !== 1) reject(new Error(`pem-settings ${args.join(' ')} exited ${code}: ${err}${out.slice(-2000)}`));
      resolve({ ms, code: code ?? 255, json });
    });
  });
}

/**
 * The floor: connect, run `true`, disconnect, on every web host at once — what any SSH tool pays.
 * With `become`, `true` runs through sudo as the tool's web steps do: what sudo alone adds.
 */
async function floor(lab: Lab, become = false): Promise<number> {
  const inv = loadInventory(lab.inventoryPath);
  const hosts = resolveAll(inv).filter((h) => h.groups.includes('webhosts'));
  const problems: Error[] = [];
  const targets = hosts.map((h) => hostAccess(h, { inventoryFile: lab.inventoryPath, acceptNewHostKeys: false, connectTimeoutMs: 30_000, commandTimeoutSec: 120 }, problems)!.target);
  const started = performance.now();
  await Promise.all(targets.map(async (t) => {
    const conn = await connect(t);
    const r = await conn.run('true', become ? { user: 'root' } : {});
    if (r.code !== 0) throw new Error(`true failed on ${t.name}`);
    await conn.close();
  }));
  return performance.now() - started;
}

/**
 * The floor of a safe no-op: the least any tool pays that takes a run lock and reads a file only
 * root may read, each remote command under timeout(1) — on every host of the run at once, through
 * sudo: on the web hosts flock, then stat and base64 of config.py; on the backends, as the
 * cluster's user, flock and psql's `SELECT 1`. No planning, no other check: what is left of
 * pem-settings' no-op above this is its own.
 */
async function lockedReadFloor(lab: Lab): Promise<number> {
  const inv = loadInventory(lab.inventoryPath);
  const hosts = resolveAll(inv).filter((h) => h.groups.includes('webhosts') || h.groups.includes('backends'));
  const access = (h: (typeof hosts)[number]) => hostAccess(h, { inventoryFile: lab.inventoryPath, acceptNewHostKeys: false, connectTimeoutMs: 30_000, commandTimeoutSec: 120 }, [])!.target;
  const lock = 'exec 9>>"$HOME/.pems-bench-lock" && flock -n 9';
  const work = hosts.map((h) => {
    if (h.groups.includes('webhosts')) {
      // config.py beside it: there from the start, as config_local.py is after the first run.
      const file = shellQuote(String(h.vars['pem_config_local'] ?? '/usr/edb/pem/web/config_local.py').replace(/[^/]*$/, 'config.py'));
      return { target: access(h), user: 'root', script: `${lock} && timeout -k 5 120 /bin/sh -c 'stat -L -c "%a %u %g %U %G" -- "$1" && base64 -w0 < "$1"' sh ${file}` };
    }
    const t = { port: Number(h.vars['pg_port'] ?? 5432), ...(h.vars['pg_socket_dir'] ? { socketDir: String(h.vars['pg_socket_dir']) } : {}) };
    const psql = `${findPsql(t)}\n${withInput(psqlCommand(t), 'SELECT 1;')}`;
    return { target: access(h), user: String(h.vars['pg_os_user'] ?? 'postgres'), script: `${lock} && ${withInput('timeout -k 5 120 /bin/sh -s', psql)}` };
  });
  const started = performance.now();
  await Promise.all(work.map(async (w) => {
    const conn = await connect(w.target);
    const r = await conn.run(w.script, { user: w.user });
    if (r.code !== 0) throw new Error(`the locked read failed on ${w.target.name}: ${r.stderr}`);
    await conn.close();
  }));
  return performance.now() - started;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface SizeResult {
  web: number;
  runs: number;
  medianMs: Record<string, number>;
  medianInRunMs: Record<string, number>;
  ratioToFloor: Record<string, number>;
  perHost: Record<string, { web: HostStats; primary: HostStats; standby: HostStats }>;
  peakRssMb: number;
  labStartMs: number;
  /** CPU time (user + system) of everything a run started on a web host, per web host, median of runs. */
  remoteCpuMsPerWebHost: Record<string, number>;
}

/**
 * CPU used on the lab's web hosts by everything their sshds start: each sshd is moved into a
 * cpuacct cgroup of its own (v1, as this machine mounts it), which every process it forks
 * inherits — sessions, sudo, runuser, psql, python — and `cpuacct.usage` adds up their CPU.
 * Hosts share the machine's cores, so wall time alone cannot tell remote work from waiting.
 */
class RemoteCpu {
  private readonly dirs: string[];
  constructor(private readonly lab: Lab) {
    this.dirs = lab.hosts.filter((h) => h.role === 'web').map((h) => {
      const dir = `/sys/fs/cgroup/cpuacct/pemsbench-${lab.name}-${h.name}`;
      mkdirSync(dir, { recursive: true });
      writeFileSync(`${dir}/cgroup.procs`, String(h.pid));
      return dir;
    });
  }

  private usageMs(): number[] {
    return this.dirs.map((d) => Number(readFileSync(`${d}/cpuacct.usage`, 'utf8')) / 1e6);
  }

  /** Runs `work`; the average CPU per web host of what it started there. */
  async measure<T>(work: () => Promise<T>): Promise<{ result: T; cpuMs: number }> {
    const before = this.usageMs();
    const result = await work();
    const after = this.usageMs();
    return { result, cpuMs: Math.round(after.reduce((a, x, i) => a + x - before[i]!, 0) / this.dirs.length) };
  }

  /** Moves what is left back to the root group and removes the groups. */
  close(): void {
    for (const d of this.dirs) {
      for (const pid of readFileSync(`${d}/cgroup.procs`, 'utf8').split('\n').filter(Boolean)) {
        try {
          writeFileSync('/sys/fs/cgroup/cpuacct/cgroup.procs', pid);
        } catch {
          // gone already
        }
      }
      spawnSync('rmdir', [d]);
    }
  }
}

async function benchSize(web: number, runs: number): Promise<SizeResult> {
  const t0 = performance.now();
  const lab = await startLab({ name: 'bn', subnet: '10.233.0.0/22', webHosts: web });
  const labStartMs = performance.now() - t0;
  const inv = lab.inventoryPath;
  const cpu: Record<string, number[]> = { 'deploy (first run)': [], 'deploy (no-op)': [], 'deploy --check': [] };
  const remote = new RemoteCpu(lab);
  const timedCpu = async (what: string, args: string[]) => {
    const { result, cpuMs } = await remote.measure(() => runCli(args));
    cpu[what]!.push(cpuMs);
    return result;
  };
  const samples: Record<string, Timed[]> = { floor: [], 'floor with sudo': [], 'floor of a locked read': [], startup: [], 'deploy (first run)': [], 'deploy (no-op)': [], 'deploy --check': [], verify: [], rollback: [] };
  try {
    for (let i = 0; i < runs; i++) {
      samples['floor']!.push({ ms: await floor(lab), code: 0 });
      samples['floor with sudo']!.push({ ms: await floor(lab, true), code: 0 });
      samples['floor of a locked read']!.push({ ms: await lockedReadFloor(lab), code: 0 });
      samples['startup']!.push(await runCli(['hosts', '-i', inv, '--limit', 'web-1', '--json']));
      samples['deploy --check']!.push(await timedCpu('deploy --check', ['deploy', '-i', inv, '--check', '--json']));
      samples['deploy (first run)']!.push(await timedCpu('deploy (first run)', ['deploy', '-i', inv, '--json']));
      samples['deploy (no-op)']!.push(await timedCpu('deploy (no-op)', ['deploy', '-i', inv, '--json']));
      samples['verify']!.push(await runCli(['verify', '-i', inv, '--json']));
      samples['rollback']!.push(await runCli(['rollback', '-i', inv, '--purge', '--json']));
      process.stderr.write(`bench: web=${web} run ${i + 1}/${runs} done\n`);
    }
  } finally {
    remote.close();
    await lab.stop();
  }
  const medianMs = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, Math.round(median(v.map((s) => s.ms)))]));
  const medianInRunMs = Object.fromEntries(Object.entries(samples).filter(([, v]) => v[0]?.json?.stats)
    .map(([k, v]) => [k, Math.round(median(v.map((s) => s.json!.stats!.elapsedMs)))]));
  // The floors are timed from their first connection: their wall time is their in-run time.
  const floors = Object.fromEntries(Object.entries(medianMs).filter(([k]) => k.startsWith('floor')));
  const ratioToFloor = Object.fromEntries(Object.entries({ ...floors, ...medianInRunMs }).map(([k, v]) => [k, Number((v / medianMs['floor']!).toFixed(2))]));
  const perHost: SizeResult['perHost'] = {};
  for (const [k, v] of Object.entries(samples)) {
    const hosts = v[0]?.json?.stats?.hosts;
    if (hosts?.['web-1'] && hosts['pg-primary']) perHost[k] = { web: hosts['web-1'], primary: hosts['pg-primary'], standby: hosts['pg-standby']! };
  }
  const peakRssMb = Math.round(Math.max(...Object.values(samples).flat().map((s) => s.json?.stats?.maxRssKb ?? 0)) / 1024);
  const remoteCpuMsPerWebHost = Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, Math.round(median(v))]));
  return { web, runs, medianMs, medianInRunMs, ratioToFloor, perHost, peakRssMb, labStartMs: Math.round(labStartMs), remoteCpuMsPerWebHost };
}

function table(r: SizeResult): string {
  const rows = [`web hosts: ${r.web} (+2 backends), ${r.runs} runs, medians; lab start ${r.labStartMs} ms; peak RSS ${r.peakRssMb} MB`,
    '| what | wall ms | in-run ms | in-run / floor |', '|---|---:|---:|---:|'];
  for (const k of Object.keys(r.medianMs)) {
    rows.push(`| ${k} | ${r.medianMs[k]} | ${r.medianInRunMs[k] ?? '-'} | ${r.ratioToFloor[k] ?? '-'} |`);
  }
  rows.push('', '| remote CPU per web host | ms |', '|---|---:|', ...Object.entries(r.remoteCpuMsPerWebHost).map(([k, v]) => `| ${k} | ${v} |`));
  rows.push('', '| per host | web-1: conns / cmds / bytes out / in | pg-primary | pg-standby |', '|---|---|---|---|');
  const f = (s: HostStats) => `${s.connections} / ${s.commands} / ${s.bytesSent} / ${s.bytesReceived}`;
  for (const [k, v] of Object.entries(r.perHost)) rows.push(`| ${k} | ${f(v.web)} | ${f(v.primary)} | ${f(v.standby)} |`);
  return rows.join('\n');
}

const program = new Command('bench')
  .option('--web <list>', 'web host counts, comma-separated', '10')
  .option('--runs <n>', 'runs per measurement (the median is reported)', '5')
  .parse(process.argv);
const opts = program.opts<{ web: string; runs: string }>();
// Measure the tool as installed: `npm ci` builds it; an edited checkout would run through tsx.
const build = spawnSync('npm', ['run', 'build'], { cwd: REPO, stdio: 'ignore' });
if (build.status !== 0) throw new Error('npm run build failed');
const sizes = opts.web.split(',').map(Number);
const results: SizeResult[] = [];
for (const web of sizes) {
  const r = await benchSize(web, Number(opts.runs));
  results.push(r);
  process.stdout.write(table(r) + '\n\n');
}
const bySize = new Map(results.map((r) => [r.web, r]));
const scaling = bySize.has(10) && bySize.has(100)
  ? { 'deploy (first run) time(100)/time(10)': Number((bySize.get(100)!.medianMs['deploy (first run)']! / bySize.get(10)!.medianMs['deploy (first run)']!).toFixed(2)) }
  : {};
if (Object.keys(scaling).length) process.stdout.write(`${JSON.stringify(scaling)}\n`);
mkdirSync(join(REPO, 'bench/results'), { recursive: true });
const file = join(REPO, 'bench/results', `${new Date().toISOString().slice(0, 10)}-web${sizes.join('-')}.json`);
writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), machine: { cpus: (await import('node:os')).cpus().length }, results, scaling }, null, 2) + '\n');
process.stdout.write(`results: ${file}\n`);
