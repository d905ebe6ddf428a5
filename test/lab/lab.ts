// The lab: real hosts on this one machine for the integration tests and the README demo
// (SPEC 9). As root each host is a network + mount namespace with its own sshd, files and,
// for backends, a real Postgres; as a plain user it falls back to loopback addresses.
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inventory, knownHosts, HOST_PATHS } from './files.ts';
import { groupId, layOutHost, machinePath, publicKey, type HostLayout } from './hosts.ts';
import { createNetwork, destroyNetwork, inHost, outerPid, startAnchor, waitGone } from './network.ts';
import { planLab, validateLabName, type LabPlan, type PlannedHost } from './plan.ts';
import { setUpPrimary, setUpStandby, stopBackend, type Backend, type PgSetup } from './postgres.ts';
import { NO_SUDO, SECOND_NAME, checkLocalUserName, createLocalUser, patroniHba, pemWebSubnet, removeLocalUser, type WebOnPrimary } from './shapes.ts';
import { alive, mapLimit, must, run, waitFor, type RunResult } from './sh.ts';
import { LAB_USER, ensureLabUser, ensureMachineDirs, ensureOsUser, ensurePackages, ensureSudoers, findPgBin, sshdPath, userIds } from './system.ts';
import { installWebTools, type WebTools } from './webapp.ts';

export interface LabOptions {
  /** Short prefix of every namespace and interface name (default 'pl'). */
  name?: string;
  subnet?: string; // default '10.231.0.0/24'
  bridge?: string; // default `${name}br0`
  webHosts?: number; // default 3, up to 200
  dir?: string; // default <labs root>/<name>: see labsRoot()
  standby?: boolean; // default true
  /**
   * Backends like EDB Postgres Advanced Server: the cluster belongs to OS user `enterprisedb`,
   * listens on 5444, and its binaries live in /usr/edb/as15/bin with no `psql` on PATH. The
   * inventory then sets only pg_os_user and pg_port, as an operator's would. Root labs only.
   */
  edb?: boolean;
  /**
   * Root over SSH, no sudo (the usual Ansible set-up for database servers): the inventory says
   * ansible_user=root and no ansible_become; sudo is not installed inside the hosts (whiteouts
   * over /usr/bin: "sudo: not found"); each host has a /root of its own, mode 0700, so a command
   * run as postgres from root's home gets "could not change directory to /root". Root labs only.
   */
  rootLogin?: boolean;
  /**
   * The usual small PEM site: the primary's machine also runs a PEM web app (/usr/edb/pem/web
   * with config.py and a config_local.py, readable by www-data). 'same-name': [webhosts] lists
   * pg-primary again; 'second-name': [webhosts] lists the machine as `pem-server` with the
   * primary's ansible_host. pem_web_subnet gets the primary's own address as a second CIDR
   * (<primary>/32). webHosts may then be 0. Root labs only.
   */
  webOnPrimary?: WebOnPrimary;
  /** pg_hba.conf written by Patroni (its "Do not edit" header, then the same rules) on the primary (true) or on these backends. */
  patroniHba?: boolean | string[];
  /** [webhosts:vars] pem_web_python: a python3 that imports the web app's pinned SQLAlchemy (lab.webTools.python). */
  webPython?: boolean;
  /**
   * [webhosts:vars] pem_web_restart and pem_web_health run the stand-in web app
   * (test/lab/webapp/pem-web.py; lab.webTools): it creates the web app's tables on an empty
   * settings database, one by one with no lock, and fails when another host is doing the same.
   * 'lazy': the restart only stops it and the health check (its first request) starts it. Root labs only.
   */
  webApp?: boolean | 'lazy';
  /** Progress lines (the CLI prints them; tests leave them out). */
  log?: (line: string) => void;
}

export interface LabHost {
  name: string;
  role: 'primary' | 'standby' | 'web' | 'outsider';
  address: string;
  sshPort: number;
  netns?: string;
  pid?: number; // of its sshd
}

export interface Lab {
  name: string;
  mode: 'root' | 'plain';
  dir: string;
  inventoryPath: string;
  knownHostsPath: string;
  keyPath: string; // private key of the lab's ssh user
  sshUser: string;
  webSubnet: string; // CIDR of the web hosts as Postgres sees them
  /** The backends' self-signed certificate (for clients that verify it). */
  caCertPath: string;
  /** pem_web_subnet as the inventory gives it: webSubnet, plus `<primary>/32` with webOnPrimary (only that with no web hosts). */
  pemWebSubnet: string;
  /** The machines, each once. */
  hosts: LabHost[];
  /** Inventory names in [webhosts], in order (with webOnPrimary, the primary's name or second name first). */
  webHostNames: string[];
  /** Second inventory names of a machine ('second-name': { 'pem-server': 'pg-primary' }); host, exec and hostPath take them. */
  aliases: Record<string, string>;
  /** The web app's python and stand-in (webPython / webApp). */
  webTools?: WebTools;
  host(name: string): LabHost;
  /** Run a command on a lab host as root (or `user`), inside its network and mount namespaces. */
  exec(host: string, argv: string[], opts?: { input?: string | Buffer; user?: string; timeoutMs?: number }): Promise<RunResult>;
  /** Path on the machine of a file as seen by that host (to read or compare its bytes). */
  hostPath(host: string, path: string): string;
  stopSshd(host: string): Promise<void>;
  startSshd(host: string): Promise<void>;
  /** Rewrite a backend's pg_hba.conf as Patroni writes it (its header, then the same rules), then reload. */
  patroniHba(host: string): Promise<void>;
  /**
   * Create an unprivileged local user on the machine, so on every host (a hostile local user);
   * stop() removes it. Refuses a name that exists already. Root labs only.
   */
  addLocalUser(name: string): Promise<LocalUser>;
  stop(): Promise<void>;
}

export interface LocalUser {
  name: string;
  uid: number;
  gid: number;
  /** lab.exec as this user. */
  exec(host: string, argv: string[], opts?: { input?: string | Buffer; timeoutMs?: number }): Promise<RunResult>;
}

/** What a running lab records in <dir>/lab.json, so `down` (or the next `up`) can remove it. */
interface LabState {
  name: string;
  mode: 'root' | 'plain';
  bridge: string;
  webSubnet: string;
  sshUser: string;
  pgBin?: string;
  osUser: string;
  hosts: (LabHost & { anchorPid?: number; layout: HostLayout })[];
  pemWebSubnet?: string;
  webHostNames?: string[];
  aliases?: Record<string, string>;
  webTools?: WebTools;
  /** Users addLocalUser created: removed with the lab. */
  localUsers?: string[];
}

const REPO = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Where labs keep their files: <repo>/.lab, unless the checkout is under /tmp — every lab host
 * mounts a /tmp of its own over it, and would lose sight of its own sshd_config, keys and logs —
 * then /var/tmp/pem-settings-lab. PEM_SETTINGS_LAB_ROOT overrides both.
 */
export function labsRoot(): string {
  return process.env['PEM_SETTINGS_LAB_ROOT'] ?? (REPO.startsWith('/tmp/') ? '/var/tmp/pem-settings-lab' : join(REPO, '.lab'));
}
const PLAIN_SSH_PORT = 22022;
const PLAIN_PG_PORT = 15432;
const EDB = { osUser: 'enterprisedb', port: 5444, home: '/usr/edb/as15' } as const;

function resolveOpts(opts: LabOptions): { name: string; dir: string } {
  const name = opts.name ?? 'pl';
  validateLabName(name);
  return { name, dir: opts.dir ?? join(labsRoot(), name) };
}

const isRoot = (): boolean => process.getuid?.() === 0;

/** A plain user cannot make namespaces: the same plan on 127.x.y.z (the loopback range). */
function toLoopback(plan: LabPlan): LabPlan {
  const lo = (a: string): string => a.replace(/^\d+\./, '127.');
  // Postgres sees every loopback client as 127.0.0.1: that is the web hosts' subnet as it sees them.
  return { ...plan, gateway: lo(plan.gateway), webSubnet: '127.0.0.1/32', hosts: plan.hosts.map((h) => ({ ...h, address: lo(h.address) })) };
}

export async function startLab(opts: LabOptions = {}): Promise<Lab> {
  const { name, dir } = resolveOpts(opts);
  const log = opts.log ?? (() => {});
  const root = isRoot();
  await stopLab(opts); // whatever an earlier run of this name left
  if (root) {
    await ensurePackages(log);
  } else {
    process.stderr.write(
      `lab: NOTICE: not root, so no namespaces: hosts are loopback addresses 127.x.y.z with sshd on port ${PLAIN_SSH_PORT} and Postgres on ${PLAIN_PG_PORT},\n` +
        `lab: everything runs as ${userInfo().username} (no sudo; ansible_become=false); hosts share the machine's files, so each host's\n` +
        `lab: own paths are inventory vars (pem_config_local, pg_socket_dir); Postgres sees every client as 127.0.0.1 (pem_web_subnet).\n`,
    );
  }
  const pg = await findPgBin();
  if (!pg) throw new Error('lab: no Postgres server binaries under /usr/lib/postgresql (apt-get install postgresql)');
  const pgDataPath = `/var/lib/postgresql/${pg.version}/main`;
  let plan = planLab({ name, subnet: opts.subnet ?? '10.231.0.0/24', bridge: opts.bridge, webHosts: opts.webHosts ?? 3, standby: opts.standby ?? true,
    allowNoWebHosts: opts.webOnPrimary !== undefined });
  if (!root) plan = toLoopback(plan);
  try {
    if (opts.edb && !root) throw new Error('lab: the EDB flavour needs root (mount namespaces)');
    for (const [k, on] of [['rootLogin', opts.rootLogin], ['webOnPrimary', opts.webOnPrimary], ['webApp', opts.webApp]] as const) {
      if (on && !root) throw new Error(`lab: ${k} needs root (mount namespaces)`);
    }
    return await build(plan, dir, root, pg, pgDataPath, log, shapesOf(opts, plan));
  } catch (e) {
    if (!process.env.LAB_KEEP) await stopLab(opts).catch(() => {});
    throw e;
  }
}

/** The options that shape the sites, checked against the plan. */
interface Shapes {
  edb: boolean;
  rootLogin: boolean;
  webOnPrimary?: WebOnPrimary;
  patroniHosts: string[];
  webPython: boolean;
  webApp?: 'eager' | 'lazy';
}

function shapesOf(opts: LabOptions, plan: LabPlan): Shapes {
  if (opts.webOnPrimary !== undefined && opts.webOnPrimary !== 'same-name' && opts.webOnPrimary !== 'second-name') {
    throw new Error(`lab: webOnPrimary must be 'same-name' or 'second-name', not ${JSON.stringify(opts.webOnPrimary)}`);
  }
  const backends = plan.hosts.filter((h) => h.role === 'primary' || h.role === 'standby').map((h) => h.name);
  const patroniHosts = opts.patroniHba === true ? ['pg-primary'] : opts.patroniHba === false || opts.patroniHba === undefined ? [] : opts.patroniHba;
  for (const h of patroniHosts) {
    if (!backends.includes(h)) throw new Error(`lab: patroniHba names ${JSON.stringify(h)}, not a backend (${backends.join(', ')})`);
  }
  return {
    edb: Boolean(opts.edb),
    rootLogin: Boolean(opts.rootLogin),
    ...(opts.webOnPrimary ? { webOnPrimary: opts.webOnPrimary } : {}),
    patroniHosts,
    webPython: Boolean(opts.webPython),
    ...(opts.webApp ? { webApp: opts.webApp === 'lazy' ? 'lazy' : 'eager' } : {}),
  };
}

async function build(plan: LabPlan, dir: string, root: boolean, pg: { bin: string }, pgDataPath: string, log: (s: string) => void, shapes: Shapes): Promise<Lab> {
  const { edb } = shapes;
  const me = userInfo().username;
  const sshUser = !root ? me : shapes.rootLogin ? 'root' : LAB_USER;
  const osUser = !root ? me : edb ? EDB.osUser : 'postgres';
  const pgPort = !root ? PLAIN_PG_PORT : edb ? EDB.port : 5432;
  if (root) {
    await ensureMachineDirs([HOST_PATHS.pemWeb, pgDataPath, ...(edb ? [EDB.home] : [])]);
    if (edb) await ensureOsUser(EDB.osUser, '/var/lib/edb');
    await ensureLabUser();
    await ensureSudoers();
  }
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const keyPath = join(dir, 'id_ed25519');
  await must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${sshUser}@${plan.name}-lab`, '-f', keyPath]);
  await writeFile(join(dir, 'authorized_keys'), `${await publicKey(`${keyPath}.pub`)} ${sshUser}@${plan.name}-lab\n`, { mode: 0o644 });
  const caCertPath = join(dir, 'server.crt');
  const keyFile = join(dir, 'server.key');
  const backendIps = plan.hosts.filter((h) => h.role === 'primary' || h.role === 'standby').map((h) => `IP:${h.address}`);
  await must('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '3650',
    '-subj', `/CN=pem-settings lab ${plan.name}`, '-addext', `subjectAltName=${backendIps.join(',')}`, '-keyout', keyFile, '-out', caCertPath]);

  const pgOwner = root ? await userIds(osUser) : undefined;
  const webGroup = root ? ((await groupId('www-data')) ?? 0) : undefined;
  const sshPort = root ? 22 : PLAIN_SSH_PORT;
  const etcHosts = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback', ...plan.hosts.map((h) => `${h.address}\t${h.name}`), ''].join('\n');
  // The primary's own web app starts with an existing LF config_local.py (configLocal's second state).
  const webIndex = (h: PlannedHost): number => (h.role === 'primary' ? 2 : Number(h.name.slice('web-'.length)));
  log(`lab ${plan.name}: laying out ${plan.hosts.length} hosts in ${dir}`);
  // Every host has its own homes, as real machines do (the run lock lives in its taker's home).
  const homes = root ? [
    { path: '/root', owner: { uid: 0, gid: 0 }, mode: 0o700 },
    { path: await homeOf(osUser), owner: pgOwner!, mode: 0o755 },
    { path: await homeOf(LAB_USER), owner: (await userIds(LAB_USER))!, mode: 0o755 },
  ] : undefined;
  // The web app's tools (a copy of ~9 MB of SQLAlchemy) are copied while the hosts are laid out.
  const [layouts, webTools] = await Promise.all([mapLimit(plan.hosts, 8, (host) =>
    layOutHost({ labDir: dir, host, sshPort, pgDataPath, asRoot: root, pgOwner, webGroup, webIndex: webIndex(host), etcHosts, ...(homes ? { homes } : {}),
      // EDB flavour: the server's own tree at /usr/edb/as15, and psql hidden from PATH.
      ...(edb ? { extraBackendMounts: [[pg.bin.replace(/\/bin$/, ''), EDB.home], ['/dev/null', '/usr/bin/psql']] as [string, string][] } : {}),
      ...(shapes.rootLogin ? { rootHome: true, hide: NO_SUDO } : {}),
      ...(shapes.webOnPrimary && host.role === 'primary' ? { alsoWeb: true } : {}) })),
    shapes.webPython || shapes.webApp ? installWebTools(dir, { lazy: shapes.webApp === 'lazy' }) : undefined]);

  const primaryPlan = plan.hosts.find((h) => h.role === 'primary')!;
  const webPlan = plan.hosts.filter((h) => h.role === 'web');
  const webFirst = shapes.webOnPrimary === 'same-name' ? [{ name: primaryPlan.name }]
    : shapes.webOnPrimary === 'second-name' ? [{ name: SECOND_NAME, vars: { ansible_host: primaryPlan.address, ...(sshPort === 22 ? {} : { ansible_port: String(sshPort) }) } }]
    : [];
  const state: LabState = { name: plan.name, mode: root ? 'root' : 'plain', bridge: plan.bridge, webSubnet: plan.webSubnet, sshUser, pgBin: pg.bin, osUser,
    hosts: plan.hosts.map((h, i) => ({ name: h.name, role: h.role, address: h.address, sshPort, ...(root ? { netns: h.netns } : {}), layout: layouts[i] as HostLayout })),
    pemWebSubnet: pemWebSubnet(plan.webSubnet, webPlan.length, shapes.webOnPrimary ? primaryPlan.address : undefined),
    webHostNames: [...webFirst.map((w) => w.name), ...webPlan.map((h) => h.name)],
    aliases: shapes.webOnPrimary === 'second-name' ? { [SECOND_NAME]: primaryPlan.name } : {},
    ...(webTools ? { webTools } : {}) };
  const saveState = (): Promise<void> => writeState(dir, state);
  await saveState(); // before anything runs, so a crash from here on can be cleaned up

  if (root) {
    log(`lab ${plan.name}: network ${plan.subnet} on bridge ${plan.bridge}`);
    await createNetwork(plan);
    await mapLimit(plan.hosts, 16, async (h) => {
      const s = state.hosts.find((x) => x.name === h.name)!;
      s.anchorPid = await startAnchor(h, s.layout.mounts, s.layout.hides);
    });
    await saveState();
  }
  const lab = makeLab(state, dir, keyPath, caCertPath);
  log(`lab ${plan.name}: starting sshd on every host`);
  await mapLimit(state.hosts, 16, (h) => lab.startSshd(h.name));
  await saveState();

  const setup: PgSetup = { bin: edb ? `${EDB.home}/bin` : pg.bin, osUser, owner: pgOwner ?? { uid: -1, gid: -1 }, certFile: caCertPath, keyFile };
  const backend = (h: LabState['hosts'][number]): Backend => ({
    host: plan.hosts.find((p) => p.name === h.name)!,
    exec: (argv, o) => lab.exec(h.name, argv, o),
    dataDir: root ? pgDataPath : h.layout.pgData!,
    machineDataDir: h.layout.pgData!,
    socketDir: root ? HOST_PATHS.pgRun : h.layout.pgRun!,
    port: pgPort,
    logFile: join(h.layout.pgLog!, 'postgresql.log'),
  });
  const primary = backend(state.hosts.find((h) => h.role === 'primary')!);
  log(`lab ${plan.name}: Postgres primary`);
  // Loopback clients all arrive from 127.0.0.1, whatever 127.x.y.z they connected to.
  await setUpPrimary(plan, primary, setup, root ? undefined : { backends: ['127.0.0.1'], subnet: '127.0.0.1/32' });
  const standby = state.hosts.find((h) => h.role === 'standby');
  if (standby) {
    log(`lab ${plan.name}: Postgres standby (pg_basebackup, streaming)`);
    await setUpStandby(primary, backend(standby), setup);
  }
  for (const h of shapes.patroniHosts) await lab.patroniHba(h);

  const keys = await Promise.all(state.hosts.map(async (h) => ({ address: h.address, port: h.sshPort, key: await publicKey(h.layout.hostKeyPub) })));
  await writeFile(lab.knownHostsPath, knownHosts(keys));
  await writeFile(lab.inventoryPath, inventory({
    hosts: state.hosts.map((h) => ({ ...plan.hosts.find((p) => p.name === h.name)!, sshPort: h.sshPort, vars: root ? {} : plainHostVars(h) })),
    webFirst,
    webVars: {
      ...(shapes.webPython && state.webTools ? { pem_web_python: state.webTools.python } : {}),
      ...(shapes.webApp && state.webTools ? { pem_web_restart: state.webTools.restart, pem_web_health: state.webTools.health } : {}),
    },
    allVars: {
      ansible_user: sshUser,
      ansible_ssh_private_key_file: keyPath,
      ansible_ssh_common_args: `-o UserKnownHostsFile=${lab.knownHostsPath}`,
      // Root login: no become at all, as such an inventory has it.
      ...(shapes.rootLogin ? {} : { ansible_become: root ? 'true' : 'false' }),
      pem_web_subnet: lab.pemWebSubnet,
      ...(root ? {} : { pg_os_user: osUser, pg_port: String(PLAIN_PG_PORT), pg_bin_dir: pg.bin }),
      ...(edb ? { pg_os_user: EDB.osUser, pg_port: String(EDB.port) } : {}),
    },
  }));
  return lab;
}

/** A user's home directory, made on the machine if missing (a system user's often is): hosts mount their own over it. */
async function homeOf(user: string): Promise<string> {
  const r = await run('getent', ['passwd', user]);
  const home = r.stdout.trim().split(':')[5];
  if (r.code !== 0 || !home) throw new Error(`lab: no home directory for ${user}`);
  await mkdir(home, { recursive: true });
  return home;
}

/** Plain-user lab: nothing is mounted, so the inventory names each host's own paths. */
function plainHostVars(h: LabState['hosts'][number]): Record<string, string> {
  if (h.role === 'web') return { pem_config_local: join(h.layout.dir, 'pem-web', 'config_local.py') };
  if (h.role === 'primary' || h.role === 'standby') return { pg_socket_dir: h.layout.pgRun! };
  return {};
}

const writeState = (dir: string, state: LabState): Promise<void> => writeFile(join(dir, 'lab.json'), JSON.stringify(state, null, 2) + '\n');

function makeLab(state: LabState, dir: string, keyPath: string, caCertPath: string): Lab {
  const aliases = state.aliases ?? {};
  const find = (name: string): LabState['hosts'][number] => {
    const h = state.hosts.find((x) => x.name === (aliases[name] ?? name));
    if (!h) throw new Error(`lab ${state.name}: no host ${JSON.stringify(name)} (hosts: ${[...state.hosts.map((x) => x.name), ...Object.keys(aliases)].join(', ')})`);
    return h;
  };
  const argvOn = (h: LabState['hosts'][number], argv: string[], user?: string): string[] =>
    // A plain user cannot switch users: commands run as that user whatever `user` says.
    h.anchorPid ? inHost(h.anchorPid, argv, user) : argv;
  const lab: Lab = {
    name: state.name,
    mode: state.mode,
    dir,
    inventoryPath: join(dir, 'inventory.ini'),
    knownHostsPath: join(dir, 'known_hosts'),
    keyPath,
    sshUser: state.sshUser,
    webSubnet: state.webSubnet,
    caCertPath,
    pemWebSubnet: state.pemWebSubnet ?? state.webSubnet,
    hosts: state.hosts, // LabHost fields are kept up to date in place (pid after start/stopSshd)
    webHostNames: state.webHostNames ?? state.hosts.filter((h) => h.role === 'web').map((h) => h.name),
    aliases,
    ...(state.webTools ? { webTools: state.webTools } : {}),
    host: find,
    async exec(host, argv, opts = {}) {
      const [cmd, ...args] = argvOn(find(host), argv, opts.user);
      return run(cmd as string, args, { input: opts.input, timeoutMs: opts.timeoutMs });
    },
    hostPath: (host, path) => (find(host).anchorPid || state.mode === 'plain' ? machinePath(find(host).layout.mounts, path) : path),
    async stopSshd(host) {
      const h = find(host);
      if (h.pid && alive(h.pid)) {
        process.kill(h.pid, 'SIGTERM');
        if (!(await waitGone(h.pid, 5000))) process.kill(h.pid, 'SIGKILL');
      }
      delete h.pid;
    },
    async startSshd(host) {
      const h = find(host);
      if (h.pid && alive(h.pid)) return;
      await rm(h.layout.sshdPidFile, { force: true });
      const [cmd, ...args] = argvOn(h, [await sshdPath(), '-f', h.layout.sshdConfig, '-E', h.layout.sshdLog]);
      const r = await run(cmd as string, args);
      if (r.code !== 0) throw new Error(`lab: ${host}: sshd exited ${r.code}: ${r.stderr.trim()} (see ${h.layout.sshdLog})`);
      // sshd writes its pid file once it listens, just after its parent returned.
      h.pid = await waitFor(`${host}'s sshd pid file`, 5000, async () => {
        const pid = Number((await readFile(h.layout.sshdPidFile, 'utf8').catch(() => '')).trim());
        if (!(pid > 0)) return undefined;
        // The pid file holds the host's own pid for sshd: this machine knows it by another.
        return h.anchorPid && h.netns ? outerPid(h.netns, pid) : pid;
      });
    },
    async patroniHba(host) {
      const h = find(host);
      if (!h.layout.pgData || !state.pgBin) throw new Error(`lab ${state.name}: ${host} is not a backend`);
      const file = join(h.layout.pgData, 'pg_hba.conf');
      // Rewritten in place: owner and mode stay the cluster's.
      await writeFile(file, patroniHba(await readFile(file, 'utf8')));
      const r = await lab.exec(host, [`${state.pgBin}/pg_ctl`, 'reload', '-D', h.layout.pgData, '-s'], { user: state.osUser, timeoutMs: 30_000 });
      if (r.code !== 0) throw new Error(`lab: ${host}: pg_ctl reload exited ${r.code}: ${r.stderr.trim()}`);
    },
    async addLocalUser(name) {
      if (state.mode !== 'root') throw new Error('lab: addLocalUser needs root');
      checkLocalUserName(name);
      if (await userIds(name)) throw new Error(`lab: user ${name} already exists and was not created by this lab: pick another name`);
      // Recorded before it exists: a crash right after useradd still removes it.
      state.localUsers = [...(state.localUsers ?? []), name];
      await writeState(dir, state);
      let ids: { uid: number; gid: number };
      try {
        ids = await createLocalUser(name);
      } catch (e) {
        state.localUsers = state.localUsers.filter((u) => u !== name); // not ours: never remove it
        await writeState(dir, state);
        throw e;
      }
      return { name, ...ids, exec: (host, argv, opts = {}) => lab.exec(host, argv, { ...opts, user: name }) };
    },
    stop: () => stopLab({ name: state.name, dir, bridge: state.bridge }),
  };
  return lab;
}

/** Whether `pid` is still a process of the host's network namespace (a lab.json from before a reboot names a pid now someone else's). */
async function anchorOf(netns: string, pid: number): Promise<boolean> {
  return alive(pid) && (await run('ip', ['netns', 'identify', String(pid)])).stdout.trim() === netns;
}

/** Remove everything a lab of this name left (processes, namespaces, links, bridge, directory), even after a crash. */
export async function stopLab(opts: LabOptions = {}): Promise<void> {
  const { name, dir } = resolveOpts(opts);
  const state = await readFile(join(dir, 'lab.json'), 'utf8').then((t) => JSON.parse(t) as LabState, () => undefined);
  const pgBin = state?.pgBin ?? (await findPgBin())?.bin;
  const hostDirs = await readdir(join(dir, 'hosts')).catch(() => [] as string[]);
  // In a root lab every host has its own process table: the pids in its pid files are the
  // host's, not this machine's, and must never be signalled from here. Its Postgres is stopped
  // from inside the host while the host lives; then every process of its namespaces is ended.
  const namespaced = isRoot() && state?.mode !== 'plain';
  for (const h of hostDirs) {
    const data = join(dir, 'hosts', h, 'pgdata');
    const pidText = await readFile(join(data, 'postmaster.pid'), 'utf8').catch(() => undefined);
    if (!pidText || !pgBin) continue;
    const setup = { bin: pgBin, osUser: state?.osUser ?? 'postgres' };
    if (namespaced) {
      const anchor = state?.hosts.find((x) => x.name === h)?.anchorPid;
      const netns = state?.hosts.find((x) => x.name === h)?.netns;
      if (anchor && netns && (await anchorOf(netns, anchor))) {
        await stopBackend({ machineDataDir: data }, setup, true, (argv) => inHost(anchor, argv));
      }
      continue;
    }
    await stopBackend({ machineDataDir: data }, setup, isRoot());
    const pid = Number(pidText.split('\n')[0]);
    if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL');
  }
  if (isRoot()) await destroyNetwork(name, opts.bridge ?? state?.bridge ?? `${name}br0`);
  for (const h of namespaced ? [] : hostDirs) {
    // Plain-user labs have no namespace whose processes can be listed: end the sshds by pid file.
    const pid = Number((await readFile(join(dir, 'hosts', h, 'ssh', 'sshd.pid'), 'utf8').catch(() => '')).trim());
    if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL');
  }
  // After the namespaces and their processes are gone: userdel refuses a user with processes.
  const failed: string[] = [];
  for (const u of state?.localUsers ?? []) await removeLocalUser(u).catch((e: Error) => failed.push(e.message));
  await rm(dir, { recursive: true, force: true, maxRetries: 5 });
  if (failed.length) throw new Error(failed.join('\n'));
}
