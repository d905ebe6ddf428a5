import { main } from '../src/cli.ts';
const t0 = performance.now();
const stamp = (s: string) => s.split('\n').filter(Boolean).map((l) => `${(performance.now() - t0).toFixed(0).padStart(5)} ${l.slice(0, 150)}`).join('\n') + '\n';
const code = await main(process.argv.slice(2), { stdout: (s) => process.stdout.write(stamp(s)), stderr: (s) => process.stderr.write(stamp(s)), isTTY: false });
console.log('exit', code, (performance.now() - t0).toFixed(0));
