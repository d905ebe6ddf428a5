import { loadInventory, resolveAll } from '../src/inventory/index.ts';
import { connect } from '../src/ssh/connect.ts';
import { hostAccess } from '../src/targets.ts';
const inv = '.lab/bn/inventory.ini';
const hosts = resolveAll(loadInventory(inv)).filter((h) => h.groups.includes('webhosts'));
const targets = hosts.map((h) => hostAccess(h, { inventoryFile: inv, acceptNewHostKeys: false, connectTimeoutMs: 30000 }, [])!.target);
async function measure(label: string, work: (c: Awaited<ReturnType<typeof connect>>) => Promise<unknown>) {
  const t = performance.now();
  await Promise.all(targets.map(async (tg) => { const c = await connect(tg); await work(c); await c.close(); }));
  console.log(label.padEnd(30), Math.round(performance.now() - t));
}
for (let i = 0; i < 2; i++) {
  await measure('connect only', async () => {});
  await measure('connect + true', (c) => c.run('true'));
  await measure('connect + sudo true', (c) => c.run('true', { becomeUser: 'root' }));
  await measure('connect + 2x true', async (c) => { await c.run('true'); await c.run('true'); });
  await measure('connect + 2x true parallel', (c) => Promise.all([c.run('true'), c.run('true')]));
  await measure('connect + 2x sudo true', async (c) => { await c.run('true', { becomeUser: 'root' }); await c.run('true', { becomeUser: 'root' }); });
}
