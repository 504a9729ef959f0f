import { loopPlan } from './loop.mjs';
import { outputPlan } from './output.mjs';
import { queuePlan } from './queue.mjs';
import { treePlan } from './trees.mjs';

// What the bench measures: the scenarios of issue 6 with their sizes, and the rows.
// Quick mode divides every size by ten.

/** Rows, in table order. `floor` is the C program; `sigchld` only runs where a scenario asks. */
export const COMPETITORS = [
  { id: 'floor', label: 'C floor' },
  { id: 'pidwatch', label: 'pidwatch' },
  { id: 'pidwatch-sigchld', label: 'pidwatch (sigchld)', env: { PIDWATCH_PIDFD: '0' } },
  { id: 'child_process', label: 'child_process' },
  { id: 'execa', label: 'execa' },
  { id: 'bun', label: 'Bun.spawn' },
];

/**
 * Each scenario: the runner `kind` and its params (the same keys reach the C floor
 * as key=value), the metric compared across rows, and how to print it.
 */
export function scenarios({ quick, only }) {
  const size = (n, least = 1) => (quick ? Math.max(least, Math.round(n / 10)) : n);
  const rounds = quick ? 5 : 11;
  return [
    {
      id: '1',
      title: 'Sequential spawn+exit of /bin/true',
      kind: 'seq',
      floor: 'spawn',
      params: { mode: 'seq', n: size(300), rounds, warmup: size(100) },
      metric: 'usPerOp',
      unit: 'us/spawn',
      sigchld: true,
    },
    {
      id: '2',
      title: `${size(1000).toLocaleString('en')} concurrent spawns of /bin/true`,
      kind: 'conc',
      floor: 'spawn',
      params: { mode: 'conc', n: size(1000), rounds: 3 },
      metric: 'ms',
      unit: 'ms total',
    },
    {
      id: '3',
      title: `Sequential spawn+exit, ${size(2048)} MiB resident in the parent`,
      kind: 'seq',
      floor: 'spawn',
      params: { mode: 'seq', n: size(25, 3), rounds, warmup: 5, resident: size(2048) },
      metric: 'usPerOp',
      unit: 'us/spawn',
    },
    {
      id: '4',
      title: `Sequential spawn+exit, ${size(2000).toLocaleString('en')} idle children alive`,
      kind: 'seq',
      floor: 'spawn',
      params: { mode: 'seq', n: size(150), rounds, warmup: size(50), idle: size(2000) },
      metric: 'usPerOp',
      unit: 'us/spawn',
      sigchld: true,
    },
    {
      id: '5a',
      title: 'Exit latency, kill(SIGKILL) to exit seen, no idle children',
      kind: 'latency',
      floor: 'latency',
      params: { samples: size(150), rounds, idle: 0, settle_ms: 2 },
      metric: 'p50',
      unit: 'us p50',
      sigchld: true,
    },
    {
      id: '5b',
      title: `Exit latency, kill(SIGKILL) to exit seen, ${size(2000).toLocaleString('en')} idle children`,
      kind: 'latency',
      floor: 'latency',
      params: { samples: size(150), rounds, idle: size(2000), settle_ms: 2 },
      metric: 'p50',
      unit: 'us p50',
      sigchld: true,
    },
    {
      id: '6',
      title: `Fan-out: ${size(10000).toLocaleString('en')} children sleeping 1 s, started together`,
      kind: 'fanout',
      floor: 'spawn',
      params: { mode: 'fanout', n: size(10000), rounds: quick ? 1 : 3, sleep: 1 },
      metric: 'lastExitMs',
      unit: 'ms to last exit',
    },
    ...loopPlan({ quick, size, rounds }),
    {
      id: '7',
      title: `${quick ? '100 MiB' : '1 GiB'} through a pipeline of four: head -c, cat, cat, wc -c`,
      kind: 'pipe',
      params: { bytes: size(1024, 100) * 1024 * 1024, rounds: quick ? 3 : 5 },
      metric: 'ms',
      unit: 'ms',
      rows: [
        { id: 'pidwatch', label: 'pidwatch pipeline()' },
        { id: 'sh', label: '/bin/sh -c' },
        { id: 'child_process', label: 'cp .pipe()' },
      ],
      baseline: 'sh',
    },
    {
      id: '8',
      title: 'Sequential synchronous runs of /bin/true',
      kind: 'sync',
      params: { n: size(300), rounds, warmup: size(50) },
      metric: 'usPerOp',
      unit: 'us/run',
      sigchld: true,
      rows: [
        { id: 'pidwatch', label: 'pidwatch execSync' },
        { id: 'pidwatch-sigchld', label: 'execSync (sigchld)', env: { PIDWATCH_PIDFD: '0' } },
        { id: 'child_process', label: 'cp execFileSync' },
        { id: 'child_process-spawnSync', label: 'cp spawnSync' },
      ],
    },
    ...outputPlan({ quick, size }),
    ...treePlan({ quick, size, rounds }),
    // Needs redis-server and takes minutes: run only when asked for (`--only queue`).
    ...(only?.has('queue') ? queuePlan({ quick, size }) : []),
  ];
}
