// A run whose jobs execute on BullMQ workers (`pidwatch worker`) instead of here:
// the same results, summary and handle as a local run (src/runner/run.ts), so the
// CLI prints, logs and exits the same way. Each job is enqueued as it is read, and
// its result comes back through the queue's events.
import { randomBytes } from 'node:crypto';
import { type Job as BullJob, Queue, QueueEvents, type RedisOptions } from 'bullmq';
import { SpawnError } from '../errors.js';
import { notSpawned } from '../runner/attempt.js';
import type { JobSource, RunHandle, RunHooks } from '../runner/run.js';
import type { Job, JobInput, JobResult, RunOptions, RunSummary } from '../runner/types.js';
import { toSignalNumber } from '../signals.js';
import type { ExitStatus } from '../types.js';
import type { QueuedJob, QueuedSpawnOptions } from './job.js';
import type { JobOutcome } from './processor.js';

/** BullMQ job name of the jobs a run enqueues. */
export const RUN_JOB_NAME = 'pidwatch-run';

interface Pending {
  index: number;
  job: Job;
}

function toJob(input: JobInput): Job {
  if (Array.isArray(input)) {
    const [file, ...args] = input as readonly string[];
    return { file: file!, args };
  }
  return input as Job;
}

/** The job as it travels: what JSON can carry of it, with the run's limits. */
function toQueued(job: Job, options: RunOptions<Buffer>): QueuedJob {
  const queued: QueuedSpawnOptions = {};
  const own = job.options ?? {};
  const timeout = own.timeout ?? options.timeout;
  if (timeout !== undefined) queued.timeout = timeout;
  const killSignal = own.killSignal ?? options.killSignal;
  if (killSignal !== undefined) queued.killSignal = killSignal;
  const forceKillAfter = own.forceKillAfter ?? options.forceKillAfter;
  if (forceKillAfter !== undefined) queued.forceKillAfter = forceKillAfter;
  // Only what the job sets on purpose travels: the worker has an environment of its own.
  if (own.env) {
    const env = Object.entries(own.env).filter(([name, value]) => process.env[name] !== value);
    if (env.length > 0) queued.env = Object.fromEntries(env);
  }
  if (typeof own.cwd === 'string') queued.cwd = own.cwd;
  if (own.argv0 !== undefined) queued.argv0 = own.argv0;
  return { file: job.file, args: [...(job.args ?? [])], options: queued };
}

function statusOf(outcome: JobOutcome): ExitStatus {
  return {
    pid: outcome.pid,
    code: outcome.code,
    signal: outcome.signal,
    coreDumped: false,
    timedOut: outcome.timedOut,
    aborted: false,
    durationMs: outcome.durationMs,
    resourceUsage: null,
    tree: outcome.tree,
  };
}

/** A job that could not run: it could not be spawned, or BullMQ failed it (stalled too often). */
function failedResult(pending: Pending, job: BullJob | undefined, error: Error): JobResult<Buffer> {
  return {
    index: pending.index,
    job: pending.job,
    status: notSpawned(),
    stdout: Buffer.alloc(0),
    stderr: Buffer.alloc(0),
    attempts: job?.attemptsMade ?? 1,
    startTime: job?.processedOn ?? Date.now(),
    error,
  };
}

function abortError(reason: unknown, summary: RunSummary<Buffer>) {
  const error = new Error('The run was aborted', { cause: reason });
  return Object.assign(error, { name: 'AbortError' as const, code: 'ABORT_ERR' as const, summary });
}

/**
 * Starts a run on the queue `name`. Concurrency is the workers' (`pidwatch worker
 * -j N`); `retries` become BullMQ attempts; `halt` stops enqueueing and removes the
 * jobs not yet started (running ones finish: their workers are elsewhere).
 */
export async function startQueueRun(
  connection: RedisOptions,
  name: string,
  jobs: JobSource,
  options: RunOptions<Buffer>,
  hooks: RunHooks<Buffer>,
): Promise<RunHandle<Buffer>> {
  const queue = new Queue(name, { connection });
  const events = new QueueEvents(name, {
    connection: { ...connection, maxRetriesPerRequest: null },
  });
  queue.on('error', () => {});
  events.on('error', () => {});
  await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
  if (options.killSignal !== undefined) toSignalNumber(options.killSignal);

  const run = randomBytes(6).toString('hex');
  const pending = new Map<string, Pending>();
  const results: JobResult<Buffer>[] = [];
  const summary: RunSummary<Buffer> = { results, succeeded: 0, failed: 0, halted: false };
  const attempts = (options.retries ?? 0) + 1;
  const halt = options.halt ?? 'never';
  let started = 0;
  let finished = false;
  let stopped: { reason: unknown } | null = null;
  let allAdded = false;
  let settle!: (error?: unknown) => void;
  const done = new Promise<RunSummary<Buffer>>((resolve, reject) => {
    settle = (error) => (error === undefined ? resolve(summary) : reject(error));
  });

  const progress = () =>
    options.onProgress?.({
      started,
      finished: summary.succeeded + summary.failed,
      failed: summary.failed,
      running: pending.size,
    });

  const finish = async () => {
    if (finished) return;
    finished = true;
    await Promise.allSettled([events.close(), queue.close()]);
    if (stopped && !summary.halted) settle(abortError(stopped.reason, summary));
    else settle();
  };

  /** Removes the run's jobs that no worker has taken yet. */
  const dropWaiting = async () => {
    for (const id of [...pending.keys()]) {
      const removed = await queue.remove(id).catch(() => 0);
      if (removed === 1) pending.delete(id);
    }
  };

  const record = async (id: string, fetched?: BullJob) => {
    const entry = pending.get(id);
    if (entry === undefined) return;
    const job = fetched ?? (await queue.getJob(id));
    if (!pending.delete(id)) return;
    let result: JobResult<Buffer>;
    const outcome = job?.returnvalue as JobOutcome | null | undefined;
    if (outcome?.spawnError) {
      const { errno, syscall, path, spawnargs } = outcome.spawnError;
      result = failedResult(entry, job, new SpawnError(errno, syscall, path, spawnargs));
    } else if (job?.finishedOn && !job.failedReason && outcome) {
      result = {
        index: entry.index,
        job: entry.job,
        status: statusOf(outcome),
        stdout: Buffer.from(outcome.stdout),
        stderr: Buffer.from(outcome.stderr),
        attempts: job.attemptsMade,
        startTime: outcome.startTime,
      };
    } else {
      result = failedResult(
        entry,
        job,
        new Error(job?.failedReason ?? 'the job was removed from the queue'),
      );
    }
    await job?.remove().catch(() => {});
    const ok = result.status.code === 0;
    if (ok) summary.succeeded++;
    else summary.failed++;
    if (hooks.retainResults) results[entry.index] = result;
    hooks.onResult?.(result);
    options.onResult?.(result);
    progress();
    if (!ok && halt !== 'never' && summary.failed >= halt.fail && !summary.halted) {
      summary.halted = true;
      stopped = { reason: 'halt' };
      await dropWaiting();
    }
    if ((allAdded || stopped) && pending.size === 0) await finish();
  };

  events.on('completed', ({ jobId }) => void record(jobId));
  events.on('failed', ({ jobId }) => void record(jobId));

  const add = async () => {
    let index = 0;
    for await (const input of jobs as AsyncIterable<JobInput>) {
      if (stopped) break;
      const job = toJob(input);
      const id = `${run}-${index + 1}`;
      pending.set(id, { index, job });
      index++;
      started++;
      await queue.add(RUN_JOB_NAME, toQueued(job, options), {
        jobId: id,
        attempts,
        removeOnComplete: false,
        removeOnFail: false,
      });
      progress();
    }
    allAdded = true;
    // Results that came before the events were looked at (none should) are read once.
    for (const id of [...pending.keys()]) {
      const job = await queue.getJob(id);
      if (job?.finishedOn) await record(id, job);
    }
    if (pending.size === 0) await finish();
  };
  add().catch(async (error) => {
    stopped = { reason: error };
    await dropWaiting();
    if (!finished) {
      finished = true;
      await Promise.allSettled([events.close(), queue.close()]);
      settle(error);
    }
  });

  return {
    done,
    abort(reason) {
      if (stopped || finished) return;
      stopped = { reason };
      void dropWaiting().then(() => {
        // Jobs already on a worker are not waited for: they run to their end there.
        pending.clear();
        return finish();
      });
    },
    kill() {
      // The processes run on the workers' hosts: nothing of them is reachable here.
    },
  };
}
