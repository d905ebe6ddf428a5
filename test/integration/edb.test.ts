// EDB Postgres Advanced Server-like backends (issue 9): the cluster belongs to `enterprisedb`,
// listens on 5444, and keeps psql in /usr/edb/as15/bin, off PATH. The inventory sets only
// pg_os_user and pg_port; deploy must find psql by itself and the web app must reach 5444.
import test from 'ava';
import { startLab, type Lab } from '../lab/lab.ts';
import { cli, hostFile, NASTY_PASSWORD, recapLine, webappConsumer } from './helpers.ts';

const FILE = '/usr/edb/pem/web/config_local.py';
const env = { PEM_SETTINGS_PASSWORD: NASTY_PASSWORD };
let lab: Lab;
let CONSUMER: string;

test.before(async () => {
  lab = await startLab({ name: 'edb13', subnet: '10.231.13.0/24', edb: true });
  CONSUMER = (await webappConsumer(lab)).consumer;
});
test.after.always(async () => {
  await lab?.stop();
});

test.serial('with only pg_os_user=enterprisedb and pg_port=5444, deploy finds the server\'s own psql and converges', async (t) => {
  const which = await lab.exec('pg-primary', ['sh', '-c', 'command -v psql || echo none'], { user: 'enterprisedb' });
  t.is(which.stdout.trim(), 'none', 'psql is not on PATH on the backends');
  const r = await cli(['deploy', '-i', lab.inventoryPath], env);
  t.is(r.code, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /pg-primary: server: ok - 15\.\d+ primary, .*psql \/usr\/edb\/as15\/bin\/psql/);
  t.regex(r.stdout, /pg-standby: server: ok - 15\.\d+ standby, .*psql \/usr\/edb\/as15\/bin\/psql/);
  t.regex(recapLine(r.stdout, 'pg-primary'), /changed=[1-9]/);
  t.regex((await hostFile(lab, 'web-2', FILE)).toString(), /@10\.231\.13\.10,10\.231\.13\.11:5444\/pem_user_settings\?target_session_attrs=read-write&sslmode=require&channel_binding=require"/);
  const c = await lab.exec('web-2', ['/usr/bin/python3', CONSUMER, FILE]);
  t.is(c.code, 0, c.stderr);
  t.regex(c.stdout, /^ok 10\.231\.13\.10 ssl /);
  const again = await cli(['deploy', '-i', lab.inventoryPath, '--json'], env);
  t.is(again.code, 0);
  for (const [name, h] of Object.entries<{ changed: number }>(JSON.parse(again.stdout).hosts)) t.is(h.changed, 0, name);
});
