// Scenarios of collected output, whose rows are ways to do the same job rather than
// spawn adapters: exec() of /bin/echo against child_process.execFile and execa (parent
// CPU per call); runJobs with output 'buffer' against 'ignore' (CPU per job); runJobs'
// spawn throughput at concurrency 2 and 8 against xargs -P; and the
// runner scenario of GNU parallel's command line: 2,000 jobs through `pidwatch run`,
// GNU parallel and `xargs -P` (wall time and the CPU of the whole run). Each row runs
// in its own process, as every other scenario's.
import { strict as assert } from 'node:assert';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const cli = join(here, '..', '..', 'dist', 'cli', 'main.js');
const now = () => process.hrtime.bigint();
const microseconds = (from, to) => Number(to - from) / 1e3;
const cpuMicroseconds = (usage) => usage.user + usage.system;

/** One call of `/bin/echo hi` with its output collected, per row; resolves with stdout. */
async function echoCaller(row) {
  const file = '/bin/echo';
  const args = ['hi'];
  switch (row) {
    case 'pidwatch-ignore': {
      // The reference: spawn+exit with no pipe at all.
      const { spawn } = await import('../../dist/index.js');
      return async () => {
        await spawn(file, args, { stdio: 'ignore' }).exited;
        return 'hi\n';
      };
    }
    case 'pidwatch-async-ignore': {
      // The same, spawned off the event loop as exec spawns: what is left between
      // this row and exec is the cost of collecting the output.
      const { spawnAsync } = await import('../../dist/index.js');
      return async () => {
        await (await spawnAsync(file, args, { stdio: 'ignore' })).exited;
        return 'hi\n';
      };
    }
    case 'pidwatch-async-pipes': {
      // Internal: spawnAsync with stdout and stderr piped to raw fds (no stream), both
      // closed unread once the child runs. What two pipes add to the hand-off alone.
      const { spawnRawAsync } = await import('../../dist/spawn.js');
      const stdio = ['ignore', 'pipe', 'pipe'];
      return async () => {
        const fds = new Int32Array(3);
        const proc = await spawnRawAsync(file, args, { stdio }, fds, (started) => started);
        closeSync(fds[1]);
        closeSync(fds[2]);
        await proc.exited;
        return 'hi\n';
      };
    }
    case 'pidwatch-captured': {
      // Internal: the capture exec uses, without exec's options and Output: what reading
      // the pipes adds.
      const { spawnCapturedAsync } = await import('../../dist/capture.js');
      const stdio = ['ignore', 'pipe', 'pipe'];
      return async () => {
        const { result } = await spawnCapturedAsync(file, args, { stdio }, {});
        return (await result).stdout.toString();
      };
    }
    case 'pidwatch': {
      const { exec } = await import('../../dist/index.js');
      return async () => (await exec(file, args)).stdout;
    }
    case 'child_process': {
      const { execFile } = await import('node:child_process');
      return () =>
        new Promise((resolve, reject) =>
          execFile(file, args, (error, stdout) => (error ? reject(error) : resolve(stdout))),
        );
    }
    case 'execa': {
      const { execa } = await import('execa');
      return async () => (await execa(file, args, { stripFinalNewline: false })).stdout;
    }
    default:
      throw new Error(`no exec row ${row}`);
  }
}

/** exec: calls one after another; wall and parent CPU per call. */
async function exec(row, { n, warmup }) {
  const call = await echoCaller(row);
  for (let i = 0; i < warmup; i++) assert.equal(await call(), 'hi\n');
  return {
    async round() {
      const cpu0 = process.cpuUsage();
      const t0 = now();
      for (let i = 0; i < n; i++) await call();
      const wall = microseconds(t0, now());
      return { cpuUs: cpuMicroseconds(process.cpuUsage(cpu0)) / n, wallUs: wall / n };
    },
    async teardown() {},
  };
}

/** jobs: runJobs of n x /bin/true at a concurrency, output 'buffer' or 'ignore' (the row). */
async function jobs(row, { n, concurrency }) {
  const { runJobs } = await import('../../dist/index.js');
  const output = row === 'buffer' ? 'buffer' : 'ignore';
  const run = async (count) => {
    const argv = Array.from({ length: count }, () => ['/bin/true']);
    const summary = await runJobs(argv, { concurrency, output });
    assert.equal(summary.succeeded, count);
  };
  await run(Math.ceil(n / 10));
  return {
    async round() {
      const cpu0 = process.cpuUsage();
      const t0 = now();
      await run(n);
      const wall = microseconds(t0, now());
      return { cpuUs: cpuMicroseconds(process.cpuUsage(cpu0)) / n, wallUs: wall / n };
    },
    async teardown() {},
  };
}

/** The argv of one runner (the row) for `command` over the lines of stdin, `jobs` at once. */
function runnerArgv(row, command, jobs) {
  const j = String(jobs);
  switch (row) {
    case 'pidwatch':
      return [process.execPath, cli, 'run', '-j', j, ...command];
    case 'pidwatch-no-tree':
      return [process.execPath, cli, 'run', '--no-tree', '-j', j, ...command];
    case 'parallel':
      return ['parallel', '-j', j, ...command];
    case 'xargs':
      // one input per command, {} replaced as GNU parallel does
      return ['xargs', '-P', j, '-I{}', ...command];
    default:
      throw new Error(`no runner row ${row}`);
  }
}

/**
 * run: n jobs of `command` (each input line replaces {}) through one runner; wall time
 * to its exit and the CPU of the whole run (the runner and every job it reaped, from
 * the rusage of the runner's reap). Output goes to /dev/null.
 */
async function run(row, { n, jobs: concurrency, command }) {
  const { spawn } = await import('../../dist/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'pidwatch-bench-'));
  const lines = (count) => Array.from({ length: count }, (_, i) => `${i + 1}\n`).join('');
  const inputs = join(dir, 'inputs');
  const warmup = join(dir, 'warmup');
  writeFileSync(inputs, lines(n));
  writeFileSync(warmup, lines(Math.ceil(n / 10)));
  const argv = runnerArgv(row, command.split(' '), concurrency);
  const once = async (file = inputs) => {
    const stdin = openSync(file, 'r');
    const stdout = openSync('/dev/null', 'w');
    const t0 = now();
    const proc = spawn(argv[0], argv.slice(1), { stdio: [stdin, stdout, 'inherit'] });
    const status = await proc.exited;
    const wall = microseconds(t0, now());
    closeSync(stdin);
    closeSync(stdout);
    assert.equal(status.code, 0, `${argv.join(' ')} exited ${status.code ?? status.signal}`);
    const usage = status.resourceUsage;
    return { ms: wall / 1e3, cpuMs: (usage.userCPUTime + usage.systemCPUTime) / 1e3 };
  };
  await once(warmup);
  return {
    round: () => once(),
    async teardown() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * jobsRate: spawn throughput of runJobs (n x /bin/true, output 'ignore', jobs as trees as
 * by default) against `xargs -P` on the same jobs, both at a concurrency: wall per job.
 */
async function jobsRate(row, { n, concurrency }) {
  if (row === 'xargs') {
    const runner = await run('xargs', { n, jobs: concurrency, command: '/bin/true {}' });
    return {
      async round() {
        const { ms, cpuMs } = await runner.round();
        return { wallUs: (ms * 1e3) / n, cpuMs };
      },
      teardown: runner.teardown,
    };
  }
  const { runJobs } = await import('../../dist/index.js');
  const once = async (count) => {
    const argv = Array.from({ length: count }, () => ['/bin/true']);
    const summary = await runJobs(argv, { concurrency, output: 'ignore' });
    assert.equal(summary.succeeded, count);
  };
  await once(Math.ceil(n / 10));
  return {
    async round() {
      const cpu0 = process.cpuUsage();
      const t0 = now();
      await once(n);
      const wall = microseconds(t0, now());
      return { wallUs: wall / n, cpuUs: cpuMicroseconds(process.cpuUsage(cpu0)) / n };
    },
    async teardown() {},
  };
}

export const outputScenarios = { exec, jobs, run, jobsRate };

/** The scenarios, for bench/lib/plan.mjs. */
export function outputPlan({ quick, size }) {
  const runners = [
    { id: 'pidwatch', label: 'pidwatch run' },
    { id: 'pidwatch-no-tree', label: 'pidwatch run --no-tree' },
    { id: 'parallel', label: 'GNU parallel' },
    { id: 'xargs', label: 'xargs -P' },
  ];
  const runScenario = (id, what, command, jobs) => ({
    id,
    title: `${size(2000).toLocaleString('en')} x \`${what}\` at -j${jobs}: pidwatch run, GNU parallel, xargs -P`,
    kind: 'run',
    params: { n: size(2000), jobs, command, rounds: quick ? 2 : 3 },
    metric: 'ms',
    unit: 'ms wall',
    rows: runners,
    baseline: 'xargs',
  });
  return [
    {
      id: 'exec',
      title: "exec('/bin/echo', ['hi']) with output collected, one after another",
      kind: 'exec',
      params: { n: size(200), warmup: size(50), rounds: quick ? 5 : 7 },
      metric: 'cpuUs',
      unit: 'us parent CPU/call',
      rows: [
        { id: 'pidwatch-ignore', label: "pidwatch spawn, stdio 'ignore'" },
        { id: 'pidwatch-async-ignore', label: "pidwatch spawnAsync, stdio 'ignore'" },
        { id: 'pidwatch-async-pipes', label: 'pidwatch spawnAsync, 2 pipes unread' },
        { id: 'pidwatch-captured', label: 'pidwatch capture, no Output' },
        { id: 'pidwatch', label: 'pidwatch exec' },
        { id: 'child_process', label: 'child_process.execFile' },
        { id: 'execa', label: 'execa' },
      ],
      baseline: 'pidwatch-ignore',
      // exec spawns as spawnAsync does: its ratio to that row is the output's cost alone,
      // which the two rows between them split into the pipes and the reading of them.
      also: 'pidwatch-async-ignore',
    },
    {
      id: 'jobs',
      title: `runJobs of ${size(2000).toLocaleString('en')} x /bin/true at concurrency 2`,
      kind: 'jobs',
      params: { n: size(2000), concurrency: 2, rounds: quick ? 3 : 5 },
      metric: 'cpuUs',
      unit: 'us parent CPU/job',
      rows: [
        { id: 'ignore', label: "runJobs output 'ignore'" },
        { id: 'buffer', label: "runJobs output 'buffer'" },
      ],
      baseline: 'ignore',
    },
    ...[2, 8].map((concurrency) => ({
      id: `jobs-rate-${concurrency}`,
      title: `runJobs of ${size(2000).toLocaleString('en')} x /bin/true at concurrency ${concurrency}, against xargs -P${concurrency}`,
      kind: 'jobsRate',
      params: { n: size(2000), concurrency, rounds: quick ? 3 : 5 },
      metric: 'wallUs',
      unit: 'us wall/job',
      rows: [
        { id: 'runjobs', label: "runJobs (trees, output 'ignore')" },
        { id: 'xargs', label: `xargs -P${concurrency}` },
      ],
      baseline: 'xargs',
    })),
    runScenario('run-true-2', '/bin/true', '/bin/true {}', 2),
    runScenario('run-true-8', '/bin/true', '/bin/true {}', 8),
    runScenario('run-echo-2', 'echo {}', 'echo {}', 2),
    runScenario('run-echo-8', 'echo {}', 'echo {}', 8),
  ];
}
