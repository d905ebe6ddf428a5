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
 * CPU used on a lab host by everything its sshd started and reaped (each connection's sshd
 * waits for its session's processes, the listener for each connection's sshd): the cutime and
 * cstime of the listening sshd, in milliseconds. Hosts share the machine's PID namespace.
 */
function sshdChildrenCpuMs(lab: Lab, host: string): number {
  const pid = lab.host(host).pid;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After "pid (comm) ", field 3 is the state: cutime and cstime are fields 16 and 17 of the whole line.
  return (Number(fields[13]) + Number(fields[14])) * 10; // clock ticks of 10 ms (USER_HZ 100)
}

/** Runs `work`, then the average CPU per web host of what it started there (connections closed by then). */
async function withRemoteCpu<T>(lab: Lab, work: () => Promise<T>): Promise<{ result: T; cpuMs: number }> {
  const webs = lab.hosts.filter((h) => h.role === 'web').map((h) => h.name);
  const before = webs.map((h) => sshdChildrenCpuMs(lab, h));
  const result = await work();
  await new Promise((done) => setTimeout(done, 300)); // the sshds reap their sessions
  const after = webs.map((h) => sshdChildrenCpuMs(lab, h));
  return { result, cpuMs: Math.round(after.reduce((a, x, i) => a + x - before[i]!, 0) / webs.length) };
}

async function benchSize(web: number, runs: number): Promise<SizeResult> {
  const t0 = performance.now();
  const lab = await startLab({ name: 'bn', subnet: '10.233.0.0/22', webHosts: web });
  const labStartMs = performance.now() - t0;
  const inv = lab.inventoryPath;
  const cpu: Record<string, number[]> = { 'deploy (first run)': [], 'deploy (no-op)': [], 'deploy --check': [] };
  const timedCpu = async (what: string, args: string[]) => {
    const { result, cpuMs } = await withRemoteCpu(lab, () => runCli(args));
    cpu[what]!.push(cpuMs);
    return result;
  };
  const samples: Record<string, Timed[]> = { floor: [], 'floor with sudo': [], startup: [], 'deploy (first run)': [], 'deploy (no-op)': [], 'deploy --check': [], verify: [], rollback: [] };
  try {
    for (let i = 0; i < runs; i++) {
      samples['floor']!.push({ ms: await floor(lab), code: 0 });
      samples['floor with sudo']!.push({ ms: await floor(lab, true), code: 0 });
      samples['startup']!.push(await runCli(['hosts', '-i', inv, '--limit', 'web-1', '--json']));
      samples['deploy --check']!.push(await timedCpu('deploy --check', ['deploy', '-i', inv, '--check', '--json']));
      samples['deploy (first run)']!.push(await timedCpu('deploy (first run)', ['deploy', '-i', inv, '--json']));
      samples['deploy (no-op)']!.push(await timedCpu('deploy (no-op)', ['deploy', '-i', inv, '--json']));
      samples['verify']!.push(await runCli(['verify', '-i', inv, '--json']));
      samples['rollback']!.push(await runCli(['rollback', '-i', inv, '--purge', '--json']));
      process.stderr.write(`bench: web=${web} run ${i + 1}/${runs} done\n`);
    }
  } finally {
    await lab.stop();
  }
  const medianMs = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, Math.round(median(v.map((s) => s.ms)))]));
  const medianInRunMs = Object.fromEntries(Object.entries(samples).filter(([, v]) => v[0]?.json?.stats)
    .map(([k, v]) => [k, Math.round(median(v.map((s) => s.json!.stats!.elapsedMs)))]));
  const ratioToFloor = Object.fromEntries(Object.entries(medianInRunMs).map(([k, v]) => [k, Number((v / medianMs['floor']!).toFixed(2))]));
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
