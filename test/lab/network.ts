// Hosts as Linux namespaces (root lab): one network namespace per host on a bridge, and one
// mount+UTS namespace per host held open by a small anchor process, so the host's own
// directories (bind mounts) are seen by its sshd, its Postgres and every SSH session.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { LabPlan, PlannedHost } from './plan.ts';
import { alive, mapLimit, must, run, sleep } from './sh.ts';

export async function createNetwork(plan: LabPlan): Promise<void> {
  const root = [
    `link add name ${plan.bridge} type bridge`,
    `addr add ${plan.gateway}/${plan.prefix} dev ${plan.bridge}`,
    `link set ${plan.bridge} up`,
    ...plan.hosts.flatMap((h) => [
      `netns add ${h.netns}`,
      `link add name ${h.veth} type veth peer name eth0 netns ${h.netns}`,
      `link set ${h.veth} master ${plan.bridge} up`,
    ]),
  ];
  // Names come from planLab's validation (letters, digits, '-'), so batch lines cannot be split.
  await must('ip', ['-batch', '-'], { input: root.join('\n') + '\n' });
  await mapLimit(plan.hosts, 16, (h) =>
    must('ip', ['-n', h.netns, '-batch', '-'], {
      input: [
        'link set lo up',
        `addr add ${h.address}/${plan.prefix} dev eth0`,
        'link set eth0 up',
        `route add default via ${plan.gateway}`,
      ].join('\n') + '\n',
    }),
  );
}

// Runs inside `ip netns exec NS unshare --mount --uts --pid --fork --mount-proc --propagation
// private`, as the first process (pid 1) of the host's own process table: set the host name,
// then apply each (kind, source, target) triple given as arguments — `hide`: a read-only overlay
// of the whiteouts in source over the directory target, so the files they name do not exist in
// this host; `bind`: bind source over target — then hold the namespaces open. As pid 1 it
// inherits every process of the host whose parent ended (a daemon, an SSH session's sshd): with
// SIGCHLD ignored (kept across exec; dash's `trap '' CHLD` does not ignore it) the kernel reaps
// them as they end, so no zombie piles up.
const ANCHOR_SCRIPT = `set -e
hostname "$1"; shift
while [ $# -gt 2 ]; do
  case "$1" in
    hide) mount -t overlay overlay -o "ro,lowerdir=$2:$3" "$3" ;;
    bind) mount --bind "$2" "$3" ;;
    *) echo "anchor: unknown mount kind $1" >&2; exit 1 ;;
  esac
  shift 3
done
echo ready
exec env --ignore-signal=CHLD sleep infinity </dev/null >/dev/null 2>&1`;

/**
 * Start a host's anchor process; resolves with its pid once its mounts are in place. `hides`
 * (whiteout directory, directory it hides files of) come first, so a bind mount may still
 * cover a file inside a directory with hidden files.
 */
export function startAnchor(host: PlannedHost, mounts: [source: string, target: string][], hides: [whiteouts: string, dir: string][] = []): Promise<number> {
  const triples = [...hides.map(([w, d]) => ['hide', w, d]), ...mounts.map(([s, t]) => ['bind', s, t])];
  // Each host has its own process table, as a real host has: /proc, ps, a scan of every
  // process's command line and the pids in pid files are that host's alone.
  const args = ['netns', 'exec', host.netns, 'unshare', '--mount', '--uts', '--pid', '--fork', '--mount-proc', '--propagation', 'private',
    'sh', '-c', ANCHOR_SCRIPT, 'anchor', host.name, ...triples.flat()];
  return new Promise((resolve, reject) => {
    // Detached: the anchor outlives `lab:up` and must not get the terminal's signals.
    const child = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, cwd: '/' });
    let err = '';
    let out = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('ready')) {
        child.stdout.destroy();
        child.stderr.destroy();
        child.removeAllListeners('exit');
        child.unref();
        resolve(child.pid as number);
      }
    });
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`lab: ${host.name}: namespace setup exited ${code}: ${err.trim()}`)));
  });
}

/**
 * argv that runs `argv` inside a host's namespaces (as `user` when given, through runuser). The
 * anchor is `unshare`, whose children make up the host's process table: its pid_for_children.
 */
export function inHost(anchorPid: number, argv: string[], user?: string): string[] {
  const as = user && user !== 'root' ? ['runuser', '-u', user, '--'] : [];
  return ['nsenter', '-t', String(anchorPid), '-m', '-n', '-u', `--pid=/proc/${anchorPid}/ns/pid_for_children`, '--wd=/', '--', ...as, ...argv];
}

/**
 * The pid on this machine of the host's process that has pid `inner` in the host (what the
 * host's pid files say), or undefined. Never the process that has that number on the machine.
 */
export async function outerPid(netns: string, inner: number): Promise<number | undefined> {
  for (const p of await pidsIn(netns)) {
    const status = await readFile(`/proc/${p}/status`, 'utf8').catch(() => '');
    const chain = /^NSpid:\s+(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/).map(Number) ?? [];
    if (chain.length > 1 && chain[chain.length - 1] === inner) return p;
  }
  return undefined;
}

async function namespacesOf(name: string): Promise<string[]> {
  const r = await run('ip', ['netns', 'list']);
  return r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((ns) => ns.startsWith(`${name}-`));
}

async function pidsIn(netns: string): Promise<number[]> {
  const r = await run('ip', ['netns', 'pids', netns]);
  return r.stdout.split('\n').filter((l) => /^\d+$/.test(l)).map(Number);
}

/** Kill every process of the lab's namespaces, then delete namespaces, veths and the bridge. */
export async function destroyNetwork(name: string, bridge: string): Promise<void> {
  const namespaces = await namespacesOf(name);
  // A namespace with a live process (an SSH session, a backend) survives `ip netns del`.
  for (let round = 0; round < 50; round++) {
    const pids = (await Promise.all(namespaces.map(pidsIn))).flat();
    if (pids.length === 0) break;
    for (const p of pids) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await sleep(50);
  }
  for (const ns of namespaces) await run('ip', ['netns', 'del', ns]);
  const links = await run('ip', ['-o', 'link', 'show']);
  const vethRe = new RegExp(`^${name}v\\d+$`);
  for (const line of links.stdout.split('\n')) {
    const ifname = line.split(':')[1]?.trim().split('@')[0];
    if (ifname && (vethRe.test(ifname) || ifname === bridge)) await run('ip', ['link', 'del', ifname]);
  }
}

export async function waitGone(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (alive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(25);
  }
  return true;
}
