import { spawn } from './dist/index.js';
import { processor } from './dist/bullmq/index.js';
const n = 200;
for (const [name, opts] of [['plain', {}], ['tree', { tree: true }], ['tree+kope', { tree: true, killOnParentExit: true }], ['tree+pipes', { tree: true, killOnParentExit: true, stdio: ['ignore', 'pipe', 'pipe'] }]]) {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const p = spawn('/bin/true', [], { stdio: 'ignore', ...opts });
    if (p.stdout) { p.stdout.resume(); p.stderr.resume(); }
    await p.exited;
  }
  console.log(name, ((performance.now() - t0) / n).toFixed(2), 'ms');
}
const run = processor({ progress: false });
const job = { data: ['/bin/true'], opts: {}, attemptsMade: 0, updateProgress: async () => {} };
let t0 = performance.now();
for (let i = 0; i < n; i++) await run(job);
console.log('processor', ((performance.now() - t0) / n).toFixed(2), 'ms');
