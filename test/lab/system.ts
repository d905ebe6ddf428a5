// Machine-wide prerequisites of a root lab: programs, the lab's SSH user, its sudo rule and
// the mount points the hosts bind their own directories over. Shared by every lab on the
// machine, so each step is idempotent and tolerates a concurrent lab doing the same.
import { access, chmod, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { must, run } from './sh.ts';

export const LAB_USER = 'labadmin';
export const SUDOERS_FILE = '/etc/sudoers.d/pem-settings-lab';

const exists = (p: string): Promise<boolean> => access(p).then(() => true, () => false);

/** The newest Postgres server binaries Debian installed (postgresql-NN puts them here). */
export async function findPgBin(): Promise<{ bin: string; version: string } | undefined> {
  const versions = await readdir('/usr/lib/postgresql').catch(() => [] as string[]);
  const usable: string[] = [];
  for (const v of versions) if (/^\d+$/.test(v) && (await exists(`/usr/lib/postgresql/${v}/bin/initdb`))) usable.push(v);
  const newest = usable.sort((a, b) => Number(b) - Number(a))[0];
  return newest ? { bin: `/usr/lib/postgresql/${newest}/bin`, version: newest } : undefined;
}

const SSHD = '/usr/sbin/sshd';

/** Install what the lab runs on when it is missing (root only: the plain-user lab just reports it). */
export async function ensurePackages(log: (s: string) => void): Promise<void> {
  const missing: string[] = [];
  if (!(await exists(SSHD))) missing.push('openssh-server');
  if (!(await exists('/usr/bin/sudo'))) missing.push('sudo');
  if (!(await findPgBin())) missing.push('postgresql');
  if (!(await exists('/usr/bin/openssl'))) missing.push('openssl');
  if (!(await exists('/usr/bin/ssh-keygen'))) missing.push('openssh-client');
  if (!(await exists('/usr/bin/nsenter'))) missing.push('util-linux');
  if (!(await exists('/usr/sbin/ip')) && !(await exists('/sbin/ip'))) missing.push('iproute2');
  if (missing.length === 0) return;
  log(`lab: installing ${missing.join(' ')} (apt-get)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const first = await run('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { env });
  if (first.code !== 0) {
    // A fresh machine has no package lists yet.
    await must('apt-get', ['update'], { env });
    await must('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { env });
  }
}

export async function userIds(user: string): Promise<{ uid: number; gid: number } | undefined> {
  const u = await run('id', ['-u', user]);
  const g = await run('id', ['-g', user]);
  if (u.code !== 0 || g.code !== 0) return undefined;
  return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/**
 * The lab's login user: created if missing (bash shell, home directory). Returns whether this
 * call created it. Its password field must not be locked ('!'): with UsePAM no, sshd refuses
 * key logins to locked accounts, so a locked one becomes '*' (no password, not locked).
 */
export async function ensureLabUser(): Promise<boolean> {
  let created = false;
  if (!(await userIds(LAB_USER))) {
    const r = await run('useradd', ['-m', '-s', '/bin/bash', '-c', 'pem-settings lab', LAB_USER]);
    // Another lab starting at the same moment may have won the race: fine if the user now exists.
    if (r.code !== 0 && !(await userIds(LAB_USER))) throw new Error(`lab: useradd ${LAB_USER} failed: ${r.stderr.trim()}`);
    created = r.code === 0;
  }
  const shadow = await must('getent', ['shadow', LAB_USER]);
  if (shadow.split(':')[1]?.startsWith('!')) await must('usermod', ['-p', '*', LAB_USER]);
  return created;
}

/** A system user that owns a Postgres cluster (the EDB flavour's `enterprisedb`); kept at teardown like the lab user. */
export async function ensureOsUser(name: string, home: string): Promise<void> {
  if (await userIds(name)) return;
  const r = await run('useradd', ['--system', '--user-group', '-d', home, '-s', '/bin/bash', '-c', 'pem-settings lab cluster owner', name]);
  if (r.code !== 0 && !(await userIds(name))) throw new Error(`lab: useradd ${name} failed: ${r.stderr.trim()}`);
}

/** Passwordless sudo for the lab user, validated with visudo before it is put in place. */
export async function ensureSudoers(): Promise<void> {
  const want = `# pem-settings lab: the lab's SSH user becomes root and postgres without a password\n${LAB_USER} ALL=(ALL:ALL) NOPASSWD: ALL\n`;
  const have = await readFile(SUDOERS_FILE, 'utf8').catch(() => undefined);
  if (have === want) return;
  // visudo/sudo ignore names with a dot, so the temporary file cannot be picked up half-written.
  const tmp = `${SUDOERS_FILE}.${process.pid}.tmp`;
  await writeFile(tmp, want, { mode: 0o440 });
  try {
    await must('visudo', ['-cf', tmp]);
    await chmod(tmp, 0o440);
    await rename(tmp, SUDOERS_FILE);
  } finally {
    await rm(tmp, { force: true });
  }
}

/** Directories that must exist on the machine: sshd's privilege-separation dir and the mount points. */
export async function ensureMachineDirs(mountPoints: string[]): Promise<void> {
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  for (const p of mountPoints) await mkdir(p, { recursive: true });
}

export async function sshdPath(): Promise<string> {
  return (await exists(SSHD)) ? SSHD : (await must('sh', ['-c', 'command -v sshd'])).trim();
}
