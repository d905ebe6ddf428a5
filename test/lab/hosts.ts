// Per-host directories and files of a lab: what each host gets of its own (bind-mounted
// over the host's paths in a root lab, or pointed at by inventory vars in a plain-user lab).
import { chmod, chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CONFIG_PY, HOST_PATHS, configLocal, sshdConfig } from './files.ts';
import type { PlannedHost } from './plan.ts';
import { makeRootHome, makeWhiteouts } from './shapes.ts';
import { must, run } from './sh.ts';

export interface Owner {
  uid: number;
  gid: number;
}

export interface HostLayout {
  dir: string;
  /** (machine directory or file, path the host sees) pairs. */
  mounts: [source: string, target: string][];
  /** (directory of whiteouts, host directory whose files they hide) pairs: overlays set up before the mounts. */
  hides?: [whiteouts: string, dir: string][];
  sshdConfig: string;
  sshdPidFile: string;
  sshdLog: string;
  hostKeyPub: string;
  pgData?: string; // machine path of the data directory (backends)
  pgRun?: string;
  pgLog?: string;
}

export interface LayoutInput {
  labDir: string;
  host: PlannedHost;
  sshPort: number;
  pgDataPath: string; // path the host sees
  asRoot: boolean;
  /** Owner of Postgres directories (root lab: the postgres user). */
  pgOwner?: Owner;
  /** Group of config.py / config_local.py (root lab: www-data when it exists). */
  webGroup?: number;
  /** 1-based position among the web hosts: picks the starting config_local.py. */
  webIndex?: number;
  etcHosts: string;
  /** More (machine path, host path) bind mounts for backends (the EDB flavour's binaries). */
  extraBackendMounts?: [string, string][];
  /** Home directories every host gets of its own (root lab): a home is per machine on real sites. */
  homes?: { path: string; owner: Owner; mode: number }[];
  /** A backend whose machine also runs a PEM web app (webOnPrimary): it gets the web app's files too. */
  alsoWeb?: boolean;
  /** Root-login shape: a /root of its own (0700), and these files missing from that directory. */
  rootHome?: boolean;
  hide?: { dir: string; names: readonly string[] };
}

async function own(path: string, owner: Owner | undefined): Promise<void> {
  if (owner) await chown(path, owner.uid, owner.gid);
}

export async function layOutHost(i: LayoutInput): Promise<HostLayout> {
  const h = i.host;
  const dir = join(i.labDir, 'hosts', h.name);
  const ssh = join(dir, 'ssh');
  await mkdir(ssh, { recursive: true });
  const tmp = join(dir, 'tmp');
  await mkdir(tmp);
  await chmod(tmp, 0o1777);
  const etcHosts = join(dir, 'etc-hosts');
  await writeFile(etcHosts, i.etcHosts, { mode: 0o644 });
  const layout: HostLayout = {
    dir,
    mounts: [[tmp, HOST_PATHS.tmp], [etcHosts, '/etc/hosts'], ...(await ownHomes(dir, i))],
    sshdConfig: join(ssh, 'sshd_config'),
    sshdPidFile: join(ssh, 'sshd.pid'),
    sshdLog: join(ssh, 'sshd.log'),
    hostKeyPub: join(ssh, 'ssh_host_ed25519_key.pub'),
  };
  const hostKey = join(ssh, 'ssh_host_ed25519_key');
  await must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${h.name}@pem-settings-lab`, '-f', hostKey]);
  await writeFile(layout.sshdConfig, sshdConfig({
    address: h.address,
    port: i.sshPort,
    hostKey,
    pidFile: layout.sshdPidFile,
    authorizedKeys: join(i.labDir, 'authorized_keys'),
    asRoot: i.asRoot,
  }));

  if (i.rootHome) {
    const home = join(dir, 'root');
    await makeRootHome(home);
    layout.mounts.push([home, '/root']);
  }
  if (i.hide) {
    const whiteouts = join(dir, `hide${i.hide.dir.replace(/\//g, '-')}`);
    await makeWhiteouts(whiteouts, i.hide.names);
    layout.hides = [[whiteouts, i.hide.dir]];
  }

  if (h.role === 'web' || i.alsoWeb) {
    const web = join(dir, 'pem-web');
    await mkdir(web, { mode: 0o755 });
    layout.mounts.push([web, HOST_PATHS.pemWeb]);
    const group = i.webGroup === undefined ? undefined : { uid: 0, gid: i.webGroup };
    await writeFile(join(web, 'config.py'), CONFIG_PY, { mode: 0o644 });
    await own(join(web, 'config.py'), group);
    const local = configLocal(i.webIndex ?? 1, h.name);
    if (local !== undefined) {
      await writeFile(join(web, 'config_local.py'), local, { mode: 0o640 });
      await own(join(web, 'config_local.py'), group);
    }
  }
  if (h.role === 'primary' || h.role === 'standby') {
    layout.pgData = join(dir, 'pgdata');
    layout.pgRun = join(dir, 'pgrun');
    layout.pgLog = join(dir, 'pglog');
    await mkdir(layout.pgData, { mode: 0o700 });
    await mkdir(layout.pgRun);
    await chmod(layout.pgRun, 0o2775); // as Debian's /var/run/postgresql
    await mkdir(layout.pgLog, { mode: 0o755 });
    for (const p of [layout.pgData, layout.pgRun, layout.pgLog]) await own(p, i.pgOwner);
    layout.mounts.push([layout.pgRun, HOST_PATHS.pgRun], [layout.pgData, i.pgDataPath], ...(i.extraBackendMounts ?? []));
  }
  return layout;
}

/**
 * Each host's own home directories (root's, the cluster owner's...), mounted before anything
 * beneath them (the data directory lives under postgres's home): the run lock lives in the
 * home of the user who takes it, and hosts of a machine must not share it.
 */
async function ownHomes(dir: string, i: LayoutInput): Promise<[string, string][]> {
  const mounts: [string, string][] = [];
  for (const [n, home] of (i.asRoot ? i.homes ?? [] : []).entries()) {
    const own = join(dir, `home-${n}`);
    await mkdir(own, { recursive: true });
    // The data directory is mounted at <home>/<version>/main: its mount point must exist.
    if (i.pgDataPath.startsWith(home.path + '/')) await mkdir(join(own, i.pgDataPath.slice(home.path.length)), { recursive: true });
    await chown(own, home.owner.uid, home.owner.gid);
    await chmod(own, home.mode);
    mounts.push([own, home.path]);
  }
  return mounts;
}

/** Map a path as a host sees it to the machine path that holds its bytes. */
export function machinePath(mounts: [string, string][], path: string): string {
  const norm = path.replace(/^\/run\/postgresql(?=\/|$)/, HOST_PATHS.pgRun);
  let best: [string, string] | undefined;
  for (const m of mounts) {
    if ((norm === m[1] || norm.startsWith(`${m[1]}/`)) && (!best || m[1].length > best[1].length)) best = m;
  }
  return best ? best[0] + norm.slice(best[1].length) : path;
}

/** "ssh-ed25519 AAAA…" of a public key file, without its comment. */
export async function publicKey(pubFile: string): Promise<string> {
  return (await readFile(pubFile, 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
}

export async function groupId(name: string): Promise<number | undefined> {
  const r = await run('getent', ['group', name]);
  const gid = r.code === 0 ? Number(r.stdout.split(':')[2]) : NaN;
  return Number.isInteger(gid) ? gid : undefined;
}
