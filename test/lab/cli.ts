// `npm run lab:up` / `npm run lab:down`: start or remove a lab from the command line (the
// README demo runs against it). `up` first removes whatever an earlier run of that name left.
import { Command, InvalidArgumentError } from 'commander';
import { join } from 'node:path';
import { labsRoot, startLab, stopLab, type LabOptions } from './lab.ts';
import type { WebOnPrimary } from './shapes.ts';

const int = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('not an integer');
  return n;
};

interface CliOptions {
  name?: string; subnet?: string; bridge?: string; web?: number; dir?: string; standby?: boolean; edb?: boolean;
  rootLogin?: boolean; webOnPrimary?: WebOnPrimary; patroniHba?: boolean | string[]; webPython?: boolean; webApp?: boolean | string;
}

function labOptions(o: CliOptions): LabOptions {
  return {
    ...(o.name ? { name: o.name } : {}),
    ...(o.subnet ? { subnet: o.subnet } : {}),
    ...(o.bridge ? { bridge: o.bridge } : {}),
    ...(o.web !== undefined ? { webHosts: o.web } : {}),
    ...(o.dir ? { dir: o.dir } : {}),
    ...(o.standby === false ? { standby: false } : {}),
    ...(o.edb ? { edb: true } : {}),
    ...(o.rootLogin ? { rootLogin: true } : {}),
    ...(o.webOnPrimary ? { webOnPrimary: o.webOnPrimary } : {}),
    ...(o.patroniHba ? { patroniHba: o.patroniHba } : {}),
    ...(o.webPython ? { webPython: true } : {}),
    ...(o.webApp ? { webApp: o.webApp === 'lazy' ? 'lazy' : true } : {}),
  };
}

const webOnPrimary = (v: string): WebOnPrimary => {
  if (v !== 'same-name' && v !== 'second-name') throw new InvalidArgumentError("'same-name' or 'second-name'");
  return v;
};

const program = new Command('lab').description('real hosts on this machine for pem-settings tests and demos');
program
  .command('up')
  .description('start a lab (removing first what an earlier run of that name left)')
  .option('--name <name>', 'short lab name, prefix of its namespaces and interfaces', 'pl')
  .option('--subnet <cidr>', 'IPv4 subnet of the lab bridge', '10.231.0.0/24')
  .option('--bridge <name>', 'bridge interface name (default <name>br0)')
  .option('--web <n>', 'number of web hosts (1-200)', int)
  .option('--dir <path>', 'lab directory (default <repo>/.lab/<name>, or /var/tmp/pem-settings-lab/<name> for a checkout under /tmp)')
  .option('--no-standby', 'no streaming standby backend')
  .option('--edb', 'backends like EDB Postgres Advanced Server: OS user enterprisedb, port 5444, binaries in /usr/edb/as15/bin, no psql on PATH')
  .option('--root-login', 'SSH as root, no sudo on the hosts (ansible_user=root, no ansible_become)')
  .option('--web-on-primary <how>', "the primary's machine runs a web app too, in [webhosts] as 'same-name' or 'second-name' (pem-server)", webOnPrimary)
  .option('--patroni-hba [hosts...]', "pg_hba.conf written by Patroni on these backends (default: the primary)")
  .option('--web-python', "pem_web_python: a python3 with the web app's pinned SQLAlchemy")
  .option('--web-app [lazy]', 'pem_web_restart / pem_web_health run the stand-in web app (lazy: started by the health check)')
  .action(async (o: CliOptions) => {
    const started = Date.now();
    const lab = await startLab({ ...labOptions(o), log: (l) => console.log(l) });
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    console.log(`lab ${lab.name} is up (${lab.mode}, ${lab.hosts.length} hosts, ${seconds} s)`);
    for (const h of lab.hosts) console.log(`  ${h.name.padEnd(12)} ${h.role.padEnd(9)} ${h.address}:${h.sshPort}`);
    for (const [alias, h] of Object.entries(lab.aliases)) console.log(`  ${alias.padEnd(12)} = ${h}`);
    if (lab.webHostNames.join() !== lab.hosts.filter((h) => h.role === 'web').map((h) => h.name).join()) console.log(`[webhosts]:   ${lab.webHostNames.join(', ')}`);
    if (lab.webTools) console.log(`web app:     restart ${lab.webTools.restart}; health ${lab.webTools.health}; python ${lab.webTools.python}`);
    console.log(`inventory:   ${lab.inventoryPath}`);
    console.log(`known_hosts: ${lab.knownHostsPath}`);
    console.log(`ssh key:     ${lab.keyPath} (user ${lab.sshUser})`);
    console.log(`web subnet:  ${lab.webSubnet}`);
    const first = lab.hosts[0];
    if (first) {
      console.log(`try:         ssh -i ${lab.keyPath} -o UserKnownHostsFile=${lab.knownHostsPath} ` +
        `${first.sshPort === 22 ? '' : `-p ${first.sshPort} `}${lab.sshUser}@${first.address}`);
    }
    const downArgs = [...(o.name === 'pl' ? [] : ['--name', o.name]), ...(o.dir ? ['--dir', o.dir] : [])];
    console.log(`remove with: npm run lab:down${downArgs.length ? ` -- ${downArgs.join(' ')}` : ''}`);
  });
program
  .command('down')
  .description('remove a lab: processes, namespaces, links, bridge and its directory')
  .option('--name <name>', 'lab name', 'pl')
  .option('--bridge <name>', 'bridge interface name, if not the recorded one')
  .option('--dir <path>', 'lab directory (default <repo>/.lab/<name>, or /var/tmp/pem-settings-lab/<name> for a checkout under /tmp)')
  .action(async (o) => {
    await stopLab(labOptions(o));
    console.log(`lab ${o.name} removed`);
  });

program
  .command('path')
  .description('print the directory of a lab (its inventory.ini and known_hosts are there)')
  .option('--name <name>', 'lab name', 'pl')
  .action((o) => console.log(join(labsRoot(), o.name)));

try {
  await program.parseAsync(process.argv);
} catch (e) {
  // A failed lab command is an operator-facing message, not a stack trace.
  console.error(e instanceof Error ? e.message : String(e));
  process.exitCode = 1;
}
