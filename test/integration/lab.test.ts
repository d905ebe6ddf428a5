// The lab itself (SPEC 9): real hosts reachable over SSH with strict host keys, a primary
// and a streaming standby, web hosts with their own files, and a teardown that leaves nothing.
import test from 'ava';
import ipaddr from 'ipaddr.js';
import { NodeSSH } from 'node-ssh';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { hostVerifierFor, keysFor, knownHostName, parseKnownHosts, type KnownHostEntry } from '../lab/known-hosts.ts';
import { startLab, type Lab, type LabHost } from '../lab/lab.ts';
import { planLab } from '../lab/plan.ts';
import { alive, run } from '../lab/sh.ts';

const NAME = 'labself';
const SUBNET = '10.231.90.0/24';
let lab: Lab;
let knownHosts: KnownHostEntry[];
let startMs = 0;

test.before(async (t) => {
  const started = Date.now();
  lab = await startLab({ name: NAME, subnet: SUBNET });
  startMs = Date.now() - started;
  t.log(`startLab (${lab.mode}, ${lab.hosts.length} hosts) took ${startMs} ms`);
  knownHosts = parseKnownHosts(readFileSync(lab.knownHostsPath, 'utf8'));
});

test.after.always(async () => {
  await lab?.stop();
});

async function connect(h: LabHost, entries = knownHosts): Promise<NodeSSH> {
  return new NodeSSH().connect({
    host: h.address,
    port: h.sshPort,
    username: lab.sshUser,
    privateKeyPath: lab.keyPath,
    hostVerifier: hostVerifierFor(entries, h.address, h.sshPort),
    readyTimeout: 10_000,
  });
}

async function sshRun(h: LabHost, command: string): Promise<{ stdout: string; stderr: string; code: number | null }> {
  const ssh = await connect(h);
  try {
    return await ssh.execCommand(command);
  } finally {
    ssh.dispose();
  }
}

/** psql on a backend: as root the host's own socket is the default one; a plain-user lab names its socket and port. */
const psql = (host: string): string[] =>
  lab.mode === 'root' ? ['psql'] : ['psql', '-h', lab.hostPath(host, '/var/run/postgresql'), '-p', '15432', '-d', 'postgres'];

// ava runs serial tests in order; the teardown check must come last.

test.serial('the lab starts with 3 web hosts in well under 20 seconds', (t) => {
  t.true(startMs < 20_000, `startLab took ${startMs} ms`);
  t.deepEqual(lab.hosts.map((h) => h.name), ['pg-primary', 'pg-standby', 'web-1', 'web-2', 'web-3', 'outsider']);
});

test.serial('every lab host accepts the lab key over SSH and presents the host key recorded in known_hosts', async (t) => {
  for (const h of lab.hosts) {
    // As root each host has its own host name and sudo; a plain-user lab has neither.
    const r = await sshRun(h, lab.mode === 'root' ? 'hostname; id -un; sudo -n id -un' : 'id -un');
    t.is(r.code, 0, `${h.name}: ${r.stderr}`);
    t.deepEqual(r.stdout.trim().split('\n'), lab.mode === 'root' ? [h.name, lab.sshUser, 'root'] : [lab.sshUser], h.name);
  }
});

test.serial('a host presenting a key other than its known_hosts entry is refused', async (t) => {
  const [a, b] = lab.hosts as [LabHost, LabHost];
  // Give host a's address the key of host b: the real key a presents must not verify.
  const bKey = keysFor(knownHosts, b.address, b.sshPort)[0]!;
  const swapped = knownHosts.map((e) => (e.hosts.includes(knownHostName(a.address, a.sshPort)) ? { ...e, key: bKey } : e));
  t.is(keysFor(swapped, a.address, a.sshPort).length, 1);
  await t.throwsAsync(() => connect(a, swapped));
});

test.serial('hashed known_hosts entries (ssh-keygen -H) verify the same host keys', async (t) => {
  const hashedFile = `${lab.dir}/known_hosts.hashed`;
  await writeFile(hashedFile, readFileSync(lab.knownHostsPath));
  const r = await run('ssh-keygen', ['-H', '-f', hashedFile]);
  t.is(r.code, 0, r.stderr);
  const hashed = parseKnownHosts(readFileSync(hashedFile, 'utf8'));
  t.true(hashed.every((e) => e.hosts[0]!.startsWith('|1|')));
  for (const h of lab.hosts) t.deepEqual(keysFor(hashed, h.address, h.sshPort), keysFor(knownHosts, h.address, h.sshPort), h.name);
  const ssh = await connect(lab.host('web-1'), hashed);
  t.is((await ssh.execCommand('echo hashed-ok')).stdout, 'hashed-ok');
  ssh.dispose();
});

test.serial('the primary is writable and the standby is a hot standby in recovery', async (t) => {
  const ask = (host: string): string => lab.mode === 'root'
    ? "sudo -n -u postgres psql -XAtc 'select pg_is_in_recovery()'"
    : `${psql(host).join(' ')} -XAtc 'select pg_is_in_recovery()'`;
  t.is((await sshRun(lab.host('pg-primary'), ask('pg-primary'))).stdout.trim(), 'f');
  t.is((await sshRun(lab.host('pg-standby'), ask('pg-standby'))).stdout.trim(), 't');
  const streaming = await lab.exec('pg-standby', [...psql('pg-standby'), '-XAtc', 'select status from pg_stat_wal_receiver'], { user: 'postgres' });
  t.is(streaming.stdout.trim(), 'streaming');
});

test.serial('the backends serve TLS and have the PEM roles, with CONNECT on pem only through grants', async (t) => {
  const sql = [
    'show ssl',
    "select string_agg(rolname, ',' order by rolname) from pg_roles where rolname in ('pem_user','pem_agent','pem_admin1','report_reader')",
    "select has_database_privilege('report_reader', 'pem', 'connect'), has_database_privilege('pem_admin1', 'pem', 'connect'), has_database_privilege('report_reader', 'postgres', 'connect')",
  ];
  const r = await lab.exec('pg-primary', [...psql('pg-primary'), '-XAt', ...sql.flatMap((s) => ['-c', s])], { user: 'postgres' });
  t.deepEqual(r.stdout.trim().split('\n'), ['on', 'pem_admin1,pem_agent,pem_user,report_reader', 'f|t|t']);
});

test.serial('the outsider is outside the web subnet and every web host inside it', (t) => {
  const web = ipaddr.parseCIDR(lab.webSubnet);
  for (const h of lab.hosts) {
    const inside = ipaddr.parse(h.address).match(web);
    // A plain-user lab's webSubnet is 127.0.0.1/32 (how Postgres sees loopback clients): only the outsider rule holds.
    if (lab.mode === 'root' || h.role === 'outsider') t.is(inside, h.role === 'web', `${h.name} ${h.address} vs ${lab.webSubnet}`);
  }
});

test.serial('each web host has its own config_local.py: absent, plain LF, and CRLF with a commented URI', async (t) => {
  const file = '/usr/edb/pem/web/config_local.py';
  t.false(existsSync(lab.hostPath('web-1', file)));
  const plain = readFileSync(lab.hostPath('web-2', file));
  const crlf = readFileSync(lab.hostPath('web-3', file));
  t.false(plain.includes('\r'));
  t.true(plain.includes('SERVER_MODE = True\n'));
  t.true(crlf.includes('\r\n# CONFIG_DATABASE_URI = '));
  t.is(crlf.toString().split('\n').filter((l) => !l.endsWith('\r')).join(''), '', 'every line ends CRLF');
  // What a host sees over SSH is the bytes at hostPath (its own mount), and only its own.
  const seen = await lab.exec('web-2', ['cat', lab.mode === 'root' ? file : lab.hostPath('web-2', file)]);
  t.deepEqual(Buffer.from(seen.stdout), plain);
  if (lab.mode === 'plain') return; // no mount namespaces: hosts share the machine's /tmp
  await writeFile(lab.hostPath('web-1', '/tmp/marker'), 'web-1 only');
  t.is((await lab.exec('web-1', ['cat', '/tmp/marker'])).stdout, 'web-1 only');
  t.not((await lab.exec('web-2', ['cat', '/tmp/marker'])).code, 0);
});

test.serial('stopSshd makes a host refuse SSH and startSshd brings it back', async (t) => {
  const h = lab.host('outsider');
  await lab.stopSshd('outsider');
  await t.throwsAsync(() => connect(h));
  await lab.startSshd('outsider');
  t.is((await sshRun(h, 'echo back')).stdout, 'back');
});

test.serial('stop() leaves no namespace, link, process or directory behind', async (t) => {
  const pids = lab.hosts.map((h) => h.pid).filter((p): p is number => p !== undefined);
  const dir = lab.dir;
  await lab.stop();
  const netns = (await run('ip', ['netns', 'list'])).stdout;
  t.false(netns.split('\n').some((l) => l.startsWith(`${NAME}-`)), netns);
  const links = (await run('ip', ['-o', 'link', 'show'])).stdout;
  t.false(links.includes(`${NAME}br0`) || new RegExp(`: ${NAME}v\\d`).test(links), links);
  for (const pid of pids) t.false(alive(pid), `sshd ${pid} still runs`);
  const leftovers = readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return alive(Number(p)) && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir);
      } catch {
        return false;
      }
    });
  t.deepEqual(leftovers, [], 'processes whose command line names the lab directory');
  t.false(existsSync(dir));
});

// The address plan is pure: checked without hosts.
const plans = [
  { webHosts: 3, subnet: '10.231.0.0/24', webSubnet: '10.231.0.64/26', lastWeb: '10.231.0.67' },
  { webHosts: 62, subnet: '10.231.0.0/24', webSubnet: '10.231.0.64/26', lastWeb: '10.231.0.126' },
  { webHosts: 63, subnet: '10.231.0.0/24', webSubnet: '10.231.0.128/25', lastWeb: '10.231.0.191' },
  { webHosts: 200, subnet: '10.232.0.0/23', webSubnet: '10.232.1.0/24', lastWeb: '10.232.1.200' },
];
for (const p of plans) {
  test(`${p.webHosts} web hosts in ${p.subnet} get the web CIDR ${p.webSubnet}, the outsider outside it`, (t) => {
    const plan = planLab({ name: 'pt', subnet: p.subnet, webHosts: p.webHosts, standby: true });
    t.is(plan.webSubnet, p.webSubnet);
    const web = plan.hosts.filter((h) => h.role === 'web');
    t.is(web.length, p.webHosts);
    t.is(web.at(-1)!.address, p.lastWeb);
    const cidr = ipaddr.parseCIDR(plan.webSubnet);
    t.false(ipaddr.parse(plan.hosts.find((h) => h.role === 'outsider')!.address).match(cidr));
    t.true(plan.hosts.every((h) => h.veth.length <= 15));
  });
}

test('a subnet too small for the web hosts is refused with the size it needs', (t) => {
  const e = t.throws(() => planLab({ name: 'pt', subnet: '10.231.0.0/24', webHosts: 200, standby: true }));
  t.regex(e!.message, /subnet must be \/23 or larger/);
});

test('lab names that would overflow interface names are refused', (t) => {
  for (const name of ['', 'Upper', 'way-too-long-name', '1abc']) {
    t.throws(() => planLab({ name, subnet: '10.231.0.0/24', webHosts: 3, standby: true }), undefined, name);
  }
});
