// How long the event loop is held per spawn: 1,000 children of /bin/true started at
// 500 a second, with timestamps around each call (its p50 and p99), the event
// loop's delay meanwhile (perf_hooks.monitorEventLoopDelay, p99) and the loop's busy
// time over the round per spawn (performance.eventLoopUtilization: the call and
// everything the loop does for the spawn afterwards, its exit included). Rows:
// pidwatch spawn(), pidwatch spawnAsync(), child_process.spawn and Bun.spawn.
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';

const TRUE = '/bin/true';

function quantile(sorted, q) {
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1];
}

/** Starts one /bin/true, stdio 'ignore'; returns a promise of its exit. */
async function starter(row) {
  switch (row) {
    case 'pidwatch': {
      const { spawn } = await import('../../dist/index.js');
      return () => spawn(TRUE, [], { stdio: 'ignore' }).exited;
    }
    case 'pidwatch-async': {
      const { spawnAsync } = await import('../../dist/index.js');
      return () => spawnAsync(TRUE, [], { stdio: 'ignore' }).then((p) => p.exited);
    }
    case 'child_process': {
      const { spawn } = await import('node:child_process');
      return () =>
        new Promise((resolve, reject) => {
          const child = spawn(TRUE, [], { stdio: 'ignore' });
          child.once('exit', resolve).once('error', reject);
        });
    }
    case 'bun':
      return () => globalThis.Bun.spawn([TRUE], { stdio: ['ignore', 'ignore', 'ignore'] }).exited;
    default:
      throw new Error(`no loop row ${row}`);
  }
}

async function loop(row, { n, rate }) {
  const start = await starter(row);
  for (let i = 0; i < 20; i++) await start();
  return {
    async round() {
      const histogram = monitorEventLoopDelay?.({ resolution: 1 });
      const calls = [];
      const exits = [];
      histogram?.enable();
      const elu0 = performance.eventLoopUtilization?.();
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        const wait = t0 + (i * 1000) / rate - performance.now();
        if (wait > 0) await delay(wait);
        const before = performance.now();
        exits.push(start());
        calls.push((performance.now() - before) * 1000);
      }
      await Promise.all(exits);
      const elu = elu0 && performance.eventLoopUtilization(elu0);
      histogram?.disable();
      calls.sort((a, b) => a - b);
      const figures = { callP50: quantile(calls, 0.5), callP99: quantile(calls, 0.99) };
      if (histogram) figures.delayP99Ms = histogram.percentile(99) / 1e6;
      // (Bun answers eventLoopUtilization with zeros: no figure then.)
      if (elu && elu.active + elu.idle > 0) figures.busyUsPerSpawn = (elu.active * 1000) / n;
      return figures;
    },
    async teardown() {},
  };
}

export const loopScenarios = { loop };

/** The scenario, for bench/lib/plan.mjs. */
export function loopPlan({ quick, size, rounds }) {
  return [
    {
      id: 'loop',
      title: `Event loop held per spawn: ${size(1000).toLocaleString('en')} x /bin/true at 500/s`,
      kind: 'loop',
      params: { n: size(1000), rate: 500, rounds: quick ? 2 : Math.min(rounds, 5) },
      metric: 'callP50',
      unit: 'us in the call, p50',
      rows: [
        { id: 'pidwatch', label: 'pidwatch spawn' },
        { id: 'pidwatch-async', label: 'pidwatch spawnAsync' },
        { id: 'child_process', label: 'child_process' },
        { id: 'bun', label: 'Bun.spawn' },
      ],
      baseline: 'child_process',
    },
  ];
}
