#!/usr/bin/env node
// Churn: many spawns in one process (10% failing at exec, 10% killed, 10% timed
// out, the rest exiting normally), a bounded number at a time. Prints open fds,
// live children, zombies and RSS before and after, and exits 1 if fds, children
// or zombies are not back to where they started, if RSS grew past the bound (or,
// on runs of 50,000 and more, grew in the second half at all beyond noise), or
// if any process ended differently than it should have.
//
//   node test/stress/churn.mjs [--count N] [--concurrency N] [--rss-bound MIB] [--json]
//
// `npm run stress` runs the full 100,000; test/reliability/churn.test.ts runs
// 10,000 inside `npm test`. Needs the built package (npm run build).
import { readdirSync, readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { capabilities, exec, SpawnError, spawn } from '../../dist/index.js';

function parseArgs(argv) {
  const options = { count: 100_000, concurrency: 16, rssBoundMiB: 64, json: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n <= 0) usage(`${arg} needs a positive integer`);
      return n;
    };
    if (arg === '--count') options.count = value();
    else if (arg === '--concurrency') options.concurrency = value();
    else if (arg === '--rss-bound') options.rssBoundMiB = value();
    else if (arg === '--json') options.json = true;
    else if (arg === '--help' || arg === '-h') usage(null);
    else usage(`unknown argument '${arg}'`);
  }
  return options;
}

function usage(reason) {
  const text =
    'usage: node test/stress/churn.mjs [--count N] [--concurrency N] [--rss-bound MIB] [--json]\n';
  if (reason === null) {
    process.stdout.write(text);
    process.exit(0);
  }
  process.stderr.write(`churn: ${reason}\n${text}`);
  process.exit(2);
}

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');

/** Children of this process, split into running ones and zombies. */
function children() {
  let live = 0;
  let zombies = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'latin1');
    } catch {
      continue;
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[1]) !== process.pid) continue;
    if (fields[0] === 'Z') zombies++;
    else live++;
  }
  return { live, zombies };
}

async function measure() {
  // Let pending closes and finalizers run, then collect twice.
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
  }
  await new Promise((resolve) => setTimeout(resolve, 20));
  gc();
  const memory = process.memoryUsage();
  return {
    fds: readdirSync('/proc/self/fd').length,
    ...children(),
    rssMiB: memory.rss / 2 ** 20,
    // What is not V8's heap: the addon's and libuv's memory, among others.
    nativeMiB: (memory.rss - memory.heapTotal) / 2 ** 20,
    heapUsedMiB: memory.heapUsed / 2 ** 20,
  };
}

/** One job; resolves with null when it ended as expected, else with what went wrong. */
async function job(i) {
  switch (i % 10) {
    case 0: {
      // Fails in the child, at execve: ENOENT or EACCES (/dev/null is no program).
      const file = i % 20 === 0 ? '/nonexistent/pidwatch-churn' : '/dev/null';
      try {
        spawn(file, [], { stdio: 'ignore' });
      } catch (error) {
        if (error instanceof SpawnError && error.syscall === 'execve') return null;
        return `exec failure: ${error}`;
      }
      return 'exec failure: spawn did not throw';
    }
    case 1: {
      const proc = spawn('sleep', ['10'], { stdio: 'ignore' });
      if (i % 20 === 1) proc.kill('SIGKILL');
      else await Promise.resolve().then(() => proc.kill('SIGKILL'));
      const status = await proc.exited;
      return status.signal === 'SIGKILL' ? null : `kill: ${JSON.stringify(status)}`;
    }
    case 2: {
      const status = await spawn('sleep', ['10'], { stdio: 'ignore', timeout: 5 }).exited;
      return status.timedOut && status.signal === 'SIGTERM'
        ? null
        : `timeout: ${JSON.stringify(status)}`;
    }
    case 6:
    case 7: {
      const out = await exec('/bin/echo', [String(i)]);
      return out.code === 0 && out.stdout === `${i}\n` ? null : `exec: ${JSON.stringify(out)}`;
    }
    case 8: {
      const status = await spawn('/bin/sh', ['-c', 'exit 3']).exited;
      return status.code === 3 ? null : `exit 3: ${JSON.stringify(status)}`;
    }
    case 9: {
      const controller = new AbortController();
      const status = await spawn('true', [], { stdio: 'ignore', signal: controller.signal }).exited;
      return status.code === 0 ? null : `true via PATH: ${JSON.stringify(status)}`;
    }
    default: {
      const status = await spawn('/bin/true', [], { stdio: 'ignore' }).exited;
      return status.code === 0 ? null : `true: ${JSON.stringify(status)}`;
    }
  }
}

/** Runs jobs 0..count-1, at most `concurrency` at a time; returns the failures. */
async function run(count, concurrency) {
  const failures = [];
  let next = 0;
  async function lane() {
    while (next < count) {
      const i = next++;
      const problem = await job(i).catch((error) => `job ${i} threw: ${error}`);
      if (problem) failures.push(`job ${i}: ${problem}`);
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane));
  return failures;
}

const options = parseArgs(process.argv.slice(2));
const warmUp = Math.min(2000, Math.ceil(options.count / 10));
await run(warmUp, options.concurrency);
const before = await measure();
const started = performance.now();
const half = Math.floor(options.count / 2);
const failures = await run(half, options.concurrency);
const middle = await measure();
failures.push(...(await run(options.count - half, options.concurrency)));
const seconds = (performance.now() - started) / 1000;
const after = await measure();

const problems = [];
if (failures.length > 0)
  problems.push(`${failures.length} jobs ended wrongly, first: ${failures.slice(0, 3).join('; ')}`);
if (after.fds !== before.fds) problems.push(`open fds ${before.fds} -> ${after.fds}`);
if (after.live !== before.live) problems.push(`live children ${before.live} -> ${after.live}`);
if (after.zombies !== 0) problems.push(`${after.zombies} zombies`);
// V8 grows its young generation and malloc its arenas under a high allocation
// rate, to a plateau (measured: flat from about 20,000 to 100,000 spawns): so
// the total growth has a bound of its own, and on long runs the second half,
// which runs on that plateau, must not grow by more than STEADY_BOUND_MIB.
const STEADY_BOUND_MIB = 16;
const growth = after.rssMiB - before.rssMiB;
const steadyGrowth = after.rssMiB - middle.rssMiB;
const checkSteady = options.count >= 50_000;
if (growth > options.rssBoundMiB)
  problems.push(`RSS grew by ${growth.toFixed(1)} MiB, more than ${options.rssBoundMiB} MiB`);
if (checkSteady && steadyGrowth > STEADY_BOUND_MIB)
  problems.push(
    `RSS grew by ${steadyGrowth.toFixed(1)} MiB in the second half, more than ${STEADY_BOUND_MIB} MiB`,
  );

function rounded(m) {
  const out = { ...m };
  for (const key of ['rssMiB', 'nativeMiB', 'heapUsedMiB']) out[key] = Number(m[key].toFixed(1));
  return out;
}

const result = {
  mode: capabilities().mode,
  count: options.count,
  concurrency: options.concurrency,
  seconds: Number(seconds.toFixed(1)),
  before: rounded(before),
  middle: rounded(middle),
  after: rounded(after),
  rssBoundMiB: options.rssBoundMiB,
  problems,
};
if (options.json) {
  process.stdout.write(`${JSON.stringify(result)}\n`);
} else {
  const row = (name, m) =>
    `${name.padEnd(7)} ${String(m.fds).padStart(5)} ${String(m.live).padStart(6)} ${String(m.zombies).padStart(8)}` +
    ` ${m.rssMiB.toFixed(1).padStart(9)} ${m.nativeMiB.toFixed(1).padStart(10)} ${m.heapUsedMiB.toFixed(1).padStart(9)}`;
  process.stdout.write(
    `churn: ${options.count} spawns (10% exec failure, 10% killed, 10% timed out), ` +
      `${options.concurrency} at a time, ${result.mode} mode, ${result.seconds} s\n` +
      '          fds  live  zombies  RSS (MiB)  non-V8-heap  JS heap\n' +
      `${row('before', before)}\n${row('middle', middle)}\n${row('after', after)}\n` +
      `RSS growth ${growth.toFixed(1)} MiB (bound ${options.rssBoundMiB} MiB), ` +
      `${steadyGrowth.toFixed(1)} MiB in the second half` +
      `${checkSteady ? ` (bound ${STEADY_BOUND_MIB} MiB)` : ''}\n` +
      (problems.length ? `FAIL: ${problems.join('; ')}\n` : 'ok\n'),
  );
}
process.exitCode = problems.length > 0 ? 1 : 0;
