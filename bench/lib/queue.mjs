// The queue scenario (`npm run bench -- --only queue`, not in the default run: it
// needs redis-server): n jobs of /bin/true through one local Redis (a unix socket),
// wall time from the producer's start to the last result, per row:
//   local        `pidwatch run -j 2 /bin/true {}`, no queue: the reference
//   queue-1/2    `pidwatch run --queue URL` with 1 or 2 `pidwatch worker -j 2` processes
//   sandboxed-1/2 what BullMQ users do today: Queue.addBulk, then 1 or 2 worker
//                processes whose sandboxed processor (a forked Node process per slot,
//                concurrency 2) runs child_process.execFile('/bin/true'); until the
//                n-th 'completed' event
// Each row runs in its own process with its own redis-server and workers, started
// in the setup (so their start-up is not timed) and stopped in the teardown.
import { strict as assert } from 'node:assert';
import { spawn as spawnChild } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRedis } from '../../test/helpers/redis.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const cli = join(here, '..', '..', 'dist', 'cli', 'main.js');
const sandboxedWorker = join(here, 'queue-sandboxed-worker.mjs');
const now = () => process.hrtime.bigint();
const microseconds = (from, to) => Number(to - from) / 1e3;

/** Starts `argv` and resolves once it printed `ready` on stdout (or at once when not asked). */
function startWorker(argv, waitForReady) {
  const child = spawnChild(argv[0], argv.slice(1), {
    stdio: ['ignore', waitForReady ? 'pipe' : 'ignore', 'inherit'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const ready = waitForReady
    ? new Promise((resolve) =>
        child.stdout.on('data', (d) => d.toString().includes('ready') && resolve()),
      )
    : Promise.resolve();
  return {
    ready,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function queueRun(row, { n, warmup }) {
  const { spawn } = await import('../../dist/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'pidwatch-bench-queue-'));
  /** An input file of `count` lines, one per job. */
  const inputsOf = (count) => {
    const file = join(dir, `inputs-${count}`);
    writeFileSync(file, Array.from({ length: count }, (_, i) => `${i + 1}\n`).join(''));
    return file;
  };
  const inputs = { [n]: inputsOf(n), [warmup]: inputsOf(warmup) };
  const workers = row === 'local' ? 0 : Number(row.slice(-1));
  const sandboxed = row.startsWith('sandboxed');
  const redis = row === 'local' ? null : await startRedis();
  const url = redis && `redis+unix://${redis.socket}?queue=bench`;
  const started = [];
  for (let i = 0; i < workers; i++) {
    const argv = sandboxed
      ? [process.execPath, sandboxedWorker, redis.socket, 'bench', '2']
      : [process.execPath, cli, 'worker', '--queue', url, '-j', '2'];
    started.push(startWorker(argv, sandboxed));
  }
  await Promise.all(started.map((w) => w.ready));

  let producer = null;
  if (sandboxed) {
    const { Queue, QueueEvents } = await import('bullmq');
    const connection = { path: redis.socket, maxRetriesPerRequest: null };
    const queue = new Queue('bench', { connection });
    const events = new QueueEvents('bench', { connection });
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
    producer = { queue, events };
  }

  const viaCli = async (count) => {
    const argv = [
      process.execPath,
      cli,
      'run',
      ...(url ? ['--queue', url] : []),
      '-j',
      '2',
      '/bin/true',
      '{}',
    ];
    const stdin = openSync(inputs[count], 'r');
    const stdout = openSync('/dev/null', 'w');
    const proc = spawn(argv[0], argv.slice(1), { stdio: [stdin, stdout, 'inherit'] });
    const status = await proc.exited;
    closeSync(stdin);
    closeSync(stdout);
    assert.equal(status.code, 0, `${argv.join(' ')} exited ${status.code ?? status.signal}`);
  };
  const viaBullmq = async (count) => {
    const { queue, events } = producer;
    let completed = 0;
    const all = new Promise((resolve) => {
      const onCompleted = () => {
        if (++completed < count) return;
        events.off('completed', onCompleted);
        resolve();
      };
      events.on('completed', onCompleted);
    });
    const jobs = Array.from({ length: count }, (_, i) => ({ name: 'true', data: { i } }));
    for (let i = 0; i < count; i += 500) await queue.addBulk(jobs.slice(i, i + 500));
    await all;
    await queue.clean(0, count, 'completed');
  };
  const once = async (count = n) => {
    const t0 = now();
    await (sandboxed ? viaBullmq(count) : viaCli(count));
    const us = microseconds(t0, now());
    return { usPerJob: us / count, jobsPerSec: count / (us / 1e6), ms: us / 1e3 };
  };
  await once(warmup); // the workers' first jobs load what they need
  return {
    round: () => once(),
    async teardown() {
      if (producer) await Promise.all([producer.events.close(), producer.queue.close()]);
      await Promise.all(started.map((w) => w.stop()));
      await redis?.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const queueScenarios = { queue: queueRun };

/** The scenario, for bench/lib/plan.mjs: only with `--only queue`. */
export function queuePlan({ quick, size }) {
  return [
    {
      id: 'queue',
      title: `${size(2000).toLocaleString('en')} x /bin/true through one local Redis (BullMQ), 2 slots per worker`,
      kind: 'queue',
      params: { n: size(2000), warmup: size(100), rounds: quick ? 2 : 3 },
      metric: 'usPerJob',
      unit: 'us wall/job',
      rows: [
        { id: 'local', label: 'pidwatch run -j 2 (no queue)' },
        { id: 'queue-1', label: 'run --queue, 1 worker' },
        { id: 'queue-2', label: 'run --queue, 2 workers' },
        { id: 'sandboxed-1', label: 'BullMQ sandboxed, 1 worker' },
        { id: 'sandboxed-2', label: 'BullMQ sandboxed, 2 workers' },
      ],
      baseline: 'local',
    },
  ];
}
