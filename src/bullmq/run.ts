// A run whose jobs execute on BullMQ workers (`pidwatch worker`) instead of here:
// the same results, summary and handle as a local run (src/runner/run.ts), so the
// CLI prints, logs and exits the same way. Each job is enqueued as it is read, and
// its result comes back through the queue's events.
import { randomBytes } from 'node:crypto';
import { setImmediate as setImmediatePromise } from 'node:timers/promises';
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
/** Jobs added per round trip, at most. */
const BATCH = 200;
/** How long the events may be quiet before the pending jobs are looked up. */
const RECONCILE_MS = 2000;
const WAITING = Symbol('waiting');
const DAY_S = 24 * 3600;

/** The next items of an iterable or async iterable, as promises. */
function iterate(jobs: JobSource): { next(): Promise<IteratorResult<JobInput>> } {
  if (Symbol.asyncIterator in jobs) return jobs[Symbol.asyncIterator]();
  const iterator = (jobs as Iterable<JobInput>)[Symbol.iterator]();
  return { next: async () => iterator.next() };
}

/**
 * The id of the newest event of the queue, so that events are read from there on:
 * none of this run's is missed, however soon its first job ends. '$' (from when
 * the reading starts) where the client cannot be reached this way.
 */
async function lastEventId(queue: Queue): Promise<string> {
  try {
    const owner = (queue as unknown as { backend?: { client: unknown } }).backend ?? queue;
    const client = (await (owner as { client: unknown }).client) as {
      xrevrange(
        key: string,
        end: string,
        start: string,
        count: 'COUNT',
        n: number,
      ): Promise<[string, string[]][]>;
    };
    const newest = await client.xrevrange(queue.keys.events!, '+', '-', 'COUNT', 1);
    return newest[0]?.[0] ?? '0-0';
  } catch {
    return '$';
  }
}

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
 * Waits for a client's connection; rejects with the first connection error, after
 * `disconnect` (ioredis would otherwise retry an unreachable server forever, and the run
 * would wait for it silently).
 */
async function connected(
  client: {
    waitUntilReady(): Promise<unknown>;
    once(event: 'error', fn: (e: Error) => void): unknown;
  },
  disconnect: () => Promise<void>,
): Promise<void> {
  let failure: Error | undefined;
  const failed = new Promise<void>((resolve) =>
    client.once('error', (error) => {
      failure = error;
      resolve();
    }),
  );
  await Promise.race([client.waitUntilReady(), failed]);
  if (failure === undefined) return;
  void disconnect().catch(() => {});
  throw new Error(`cannot reach the queue's Redis: ${failure.message}`);
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
  queue.on('error', () => {});
  await connected(queue, () => queue.disconnect());
  const events = new QueueEvents(name, {
    connection: { ...connection, maxRetriesPerRequest: null },
    lastEventId: await lastEventId(queue),
  });
  events.on('error', () => {});
  await connected(events, async () => {
    await Promise.all([events.disconnect(), queue.disconnect()]);
  });
  if (options.killSignal !== undefined) toSignalNumber(options.killSignal);

  const run = randomBytes(6).toString('hex');
  /** Jobs enqueued (or about to be) whose result has not come yet. */
  const pending = new Map<string, Pending>();
  const results: JobResult<Buffer>[] = [];
  const summary: RunSummary<Buffer> = { results, succeeded: 0, failed: 0, halted: false };
  // Infinity (GNU parallel's --retries 0) as a number that survives JSON.
  const attempts = Math.min((options.retries ?? 0) + 1, Number.MAX_SAFE_INTEGER);
  const halt = options.halt ?? 'never';
  let started = 0;
  let finished = false;
  let stopped: { reason: unknown } | null = null;
  let allAdded = false;
  let heard = false;
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

  // A result whose event was missed (the stream is trimmed to its last ~10,000
  // events) is looked up once events have been quiet for a while.
  const reconcile = setInterval(() => {
    if (!heard) for (const id of [...pending.keys()]) void lookUp(id);
    heard = false;
  }, RECONCILE_MS);

  const finish = async () => {
    if (finished) return;
    finished = true;
    clearInterval(reconcile);
    await Promise.allSettled([events.close(), queue.close()]);
    if (stopped && !summary.halted) settle(abortError(stopped.reason, summary));
    else settle();
  };

  /** Removes the run's jobs that no worker has taken yet. */
  const dropWaiting = async () => {
    await Promise.all(
      [...pending.keys()].map(async (id) => {
        if ((await queue.remove(id).catch(() => 0)) === 1) pending.delete(id);
      }),
    );
  };

  const record = (id: string, outcome: JobOutcome | null, job: BullJob | undefined) => {
    const entry = pending.get(id);
    if (entry === undefined) return;
    pending.delete(id);
    let result: JobResult<Buffer>;
    if (outcome?.spawnError) {
      const { errno, syscall, path, spawnargs } = outcome.spawnError;
      result = failedResult(entry, job, new SpawnError(errno, syscall, path, spawnargs));
    } else if (outcome) {
      result = {
        index: entry.index,
        job: entry.job,
        status: statusOf(outcome),
        stdout: Buffer.from(outcome.stdout, outcome.encoding ?? 'utf8'),
        stderr: Buffer.from(outcome.stderr, outcome.encoding ?? 'utf8'),
        attempts: outcome.attempts,
        startTime: outcome.startTime,
      };
    } else {
      const reason = job?.failedReason || 'the job was removed from the queue';
      result = failedResult(entry, job, new Error(reason));
    }
    // Read once, the job has nothing more to tell: a run leaves nothing in Redis.
    void queue.remove(id).catch(() => {});
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
      void dropWaiting().then(() => {
        if (pending.size === 0) return finish();
      });
    }
    if ((allAdded || stopped) && pending.size === 0) void finish();
  };

  /** Records the job if it has finished: for a failure, and for a missed event. */
  const lookUp = async (id: string) => {
    const job = await queue.getJob(id).catch(() => undefined);
    if (!pending.has(id)) return;
    if (job === undefined) return record(id, null, undefined);
    if (!job.finishedOn) return;
    record(id, job.failedReason ? null : (job.returnvalue as JobOutcome | null), job);
  };

  events.on('completed', ({ jobId, returnvalue }) => {
    heard = true;
    const outcome = returnvalue as unknown as JobOutcome | null;
    if (outcome && typeof outcome === 'object') record(jobId, outcome, undefined);
    else void lookUp(jobId);
  });
  events.on('failed', ({ jobId }) => {
    heard = true;
    void lookUp(jobId);
  });

  const add = async () => {
    let index = 0;
    let batch: Parameters<Queue['addBulk']>[0] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      const adding = batch;
      batch = [];
      await queue.addBulk(adding);
      progress();
    };
    const source = iterate(jobs);
    let next = source.next();
    for (;;) {
      // What the source has ready joins the batch; one that has to wait flushes it first.
      let item = await Promise.race([next, setImmediatePromise(WAITING)]);
      if (item === WAITING) {
        await flush();
        item = await next;
      }
      if (item.done || stopped) break;
      const job = toJob(item.value);
      const id = `${run}-${index + 1}`;
      pending.set(id, { index, job });
      index++;
      started++;
      // Each job is removed once its result is read; one of an interrupted run, left
      // running on a worker, goes with BullMQ's next clean-up after a day.
      const opts = {
        jobId: id,
        attempts,
        removeOnComplete: { age: DAY_S },
        removeOnFail: { age: DAY_S },
      };
      batch.push({ name: RUN_JOB_NAME, data: toQueued(job, options), opts });
      if (batch.length >= BATCH) await flush();
      next = source.next();
    }
    await flush();
    allAdded = true;
    if (pending.size === 0) await finish();
  };
  add().catch(async (error) => {
    stopped = { reason: error };
    await dropWaiting();
    if (!finished) {
      finished = true;
      clearInterval(reconcile);
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
