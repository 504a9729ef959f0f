import { type Attempt, type AttemptResult, startAttempt } from './attempt.js';
import { terminate } from './terminate.js';
import type {
  Job,
  JobInput,
  JobResult,
  Progress,
  RunAbortError,
  RunOptions,
  RunSummary,
} from './types.js';
import { checkRunOptions, invalid, type RunSettings, toJob } from './validate.js';

export type JobSource = Iterable<JobInput> | AsyncIterable<JobInput>;

/** What the reactive layer adds to a run: its own result sink, and no retained results. */
export interface RunHooks<T extends string | Buffer> {
  retainResults: boolean;
  onResult?: (result: JobResult<T>) => void;
  /** Starts an attempt in place of the usual capture (the CLI streams --line-buffer output). */
  startAttempt?: (job: Job, settings: RunSettings) => Attempt;
}

export interface RunHandle<T extends string | Buffer> {
  /** Settles once every started process has been reaped. */
  done: Promise<RunSummary<T>>;
  /** Stops starting jobs, kills the running ones; `done` then rejects with an AbortError. */
  abort(reason?: unknown): void;
  /** Sends `signal` to every running process of the run now, with no escalation. */
  kill(signal: NodeJS.Signals | number): void;
  /**
   * @internal Changes how many jobs may run at once (`pidwatch run -j FILE`); a queue's run
   * has none: its workers set theirs.
   */
  setConcurrency?(concurrency: number): void;
}

/** A job that holds a concurrency slot, across its retries. */
interface Slot {
  index: number;
  job: Job;
  attempts: number;
  attempt: Attempt | null;
  killed: boolean;
}

type SourceIterator = Iterator<unknown> | AsyncIterator<unknown>;

/** @internal The iterator of a job source (also `pidwatch run`'s inputs). */
export function iterate(jobs: unknown): { iterator: SourceIterator; isAsync: boolean } {
  if (jobs !== null && typeof jobs === 'object') {
    if (typeof (jobs as any)[Symbol.asyncIterator] === 'function') {
      return { iterator: (jobs as AsyncIterable<unknown>)[Symbol.asyncIterator](), isAsync: true };
    }
    if (typeof (jobs as any)[Symbol.iterator] === 'function') {
      return { iterator: (jobs as Iterable<unknown>)[Symbol.iterator](), isAsync: false };
    }
  }
  throw invalid('ERR_INVALID_ARG_TYPE', 'jobs must be an iterable or async iterable');
}

function abortError<T extends string | Buffer>(
  reason: unknown,
  summary: RunSummary<T>,
): RunAbortError<T> {
  const error = new Error('The run was aborted', { cause: reason });
  return Object.assign(error, { name: 'AbortError' as const, code: 'ABORT_ERR' as const, summary });
}

class Run<T extends string | Buffer> {
  private readonly running = new Set<Slot>();
  private readonly results: JobResult<T>[] = [];
  private nextIndex = 0;
  private finished = 0;
  private failed = 0;
  private pulling = false;
  private exhausted = false;
  private stopped = false;
  private settled = false;
  private halted = false;
  private aborted: { reason: unknown } | null = null;
  private fatal: { error: unknown } | null = null;
  private onAbort: (() => void) | null = null;
  private resolve!: (summary: RunSummary<T>) => void;
  private reject!: (error: unknown) => void;
  readonly done = new Promise<RunSummary<T>>((resolve, reject) => {
    this.resolve = resolve;
    this.reject = reject;
  });

  constructor(
    private readonly source: { iterator: SourceIterator; isAsync: boolean },
    private readonly settings: RunSettings,
    private readonly options: RunOptions<T>,
    private readonly hooks: RunHooks<T>,
  ) {}

  start(): void {
    const { signal } = this.options;
    if (signal !== undefined) {
      if (signal.aborted) {
        this.abort(signal.reason);
        return;
      }
      this.onAbort = () => this.abort(signal.reason);
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
    this.fill();
  }

  abort(reason: unknown): void {
    if (this.stopped && this.aborted !== null) return;
    this.aborted ??= { reason };
    this.stop(true);
  }

  kill(signal: NodeJS.Signals | number): void {
    for (const slot of this.running) {
      const proc = slot.attempt?.proc;
      (proc?.tree ?? proc)?.kill(signal);
    }
  }

  /**
   * More slots start jobs at once; fewer stop new starts until fewer jobs run, killing none.
   * The count is a setting like any other, so a run that never changes it pays nothing.
   */
  setConcurrency(concurrency: number): void {
    this.settings.concurrency = concurrency;
    if (this.running.size < concurrency) this.fill();
  }

  /** Pulls jobs from the source while there is a free slot: never reads further ahead. */
  private fill(): void {
    if (this.pulling || this.stopped || this.exhausted) return;
    this.pulling = true;
    this.pull().then(
      () => {
        this.pulling = false;
        // Jobs that ended while the pull was still settling found it busy: their
        // slots are filled now.
        if (this.running.size < this.settings.concurrency) this.fill();
        this.settleIfDone();
      },
      (error) => {
        this.pulling = false;
        this.fail(error);
      },
    );
  }

  private async pull(): Promise<void> {
    const { iterator, isAsync } = this.source;
    while (!this.stopped && this.running.size < this.settings.concurrency) {
      const next = isAsync ? await iterator.next() : (iterator.next() as IteratorResult<unknown>);
      if (next.done) {
        this.exhausted = true;
        return;
      }
      if (this.stopped) return;
      this.launch(toJob(next.value, this.nextIndex));
    }
  }

  private launch(job: Job): void {
    const slot: Slot = { index: this.nextIndex++, job, attempts: 0, attempt: null, killed: false };
    this.running.add(slot);
    this.attempt(slot);
    this.report();
  }

  private attempt(slot: Slot): void {
    slot.attempts++;
    // The spawn completes later (off the event loop): `attempt.proc` is null until then.
    slot.attempt = (this.hooks.startAttempt ?? startAttempt)(slot.job, this.settings);
    slot.attempt.done.then(
      (result) => this.attemptDone(slot, result),
      (error) => {
        this.running.delete(slot);
        this.fail(error);
      },
    );
  }

  private attemptDone(slot: Slot, attempt: AttemptResult): void {
    slot.attempt = null;
    const ok = attempt.status.code === 0 && attempt.error === undefined;
    if (!ok && !slot.killed && !this.stopped && slot.attempts <= this.settings.retries) {
      this.attempt(slot);
      return;
    }
    this.running.delete(slot);
    this.finished++;
    if (!ok) this.failed++;
    const result = this.toResult(slot, attempt);
    if (this.hooks.retainResults) this.results[slot.index] = result;
    try {
      this.hooks.onResult?.(result);
      this.options.onResult?.(result);
      this.report();
    } catch (error) {
      this.fail(error);
      return;
    }
    const halt = this.settings.halt;
    if (!ok && halt !== null && this.failed >= halt.fail && !this.stopped) {
      this.halted = true;
      this.stop(halt.now);
    }
    this.fill();
    this.settleIfDone();
  }

  private toResult(slot: Slot, attempt: AttemptResult): JobResult<T> {
    const decode = (bytes: Buffer) =>
      (this.settings.encoding === 'buffer' ? bytes : bytes.toString('utf8')) as T;
    const result: JobResult<T> = {
      index: slot.index,
      job: slot.job,
      status: slot.killed ? { ...attempt.status, aborted: true } : attempt.status,
      stdout: decode(attempt.stdout),
      stderr: decode(attempt.stderr),
      attempts: slot.attempts,
      startTime: attempt.startTime,
    };
    if (attempt.error !== undefined) result.error = attempt.error;
    return result;
  }

  private report(): void {
    const { onProgress } = this.options;
    if (onProgress === undefined) return;
    const progress: Progress = {
      started: this.nextIndex,
      finished: this.finished,
      failed: this.failed,
      running: this.running.size,
    };
    onProgress(progress);
  }

  private stop(kill: boolean): void {
    this.stopped = true;
    if (kill) {
      for (const slot of this.running) {
        if (slot.killed) continue;
        slot.killed = true;
        const own = slot.job.options ?? {};
        slot.attempt?.stop((proc) =>
          terminate(
            proc,
            own.killSignal ?? this.settings.killSignal,
            own.forceKillAfter ?? this.settings.forceKillAfter,
          ),
        );
      }
    }
    this.settleIfDone();
  }

  private fail(error: unknown): void {
    this.fatal ??= { error };
    this.stop(true);
  }

  private settleIfDone(): void {
    if (this.settled || this.running.size > 0) return;
    if (!this.stopped && !(this.exhausted && !this.pulling)) return;
    this.settled = true;
    if (this.onAbort !== null) this.options.signal?.removeEventListener('abort', this.onAbort);
    if (!this.exhausted) this.closeSource();
    const summary: RunSummary<T> = {
      results: this.results,
      succeeded: this.finished - this.failed,
      failed: this.failed,
      halted: this.halted,
    };
    if (this.fatal !== null) this.reject(this.fatal.error);
    else if (this.aborted !== null) this.reject(abortError(this.aborted.reason, summary));
    else this.resolve(summary);
  }

  private closeSource(): void {
    closeIterator(this.source.iterator);
  }
}

/**
 * @internal Lets a generator run its `finally` (closing files, say); a pending async pull
 * is not waited for.
 */
export function closeIterator(iterator: SourceIterator): void {
  try {
    const closing = iterator.return?.();
    if (closing instanceof Promise) closing.catch(() => {});
  } catch {
    // a source that fails to close has nothing more to give us
  }
}

/** Starts a run at once; the handle lets the reactive layer stop it. */
export function startRun<T extends string | Buffer>(
  jobs: JobSource,
  options: RunOptions<T> | undefined,
  hooks: RunHooks<T>,
): RunHandle<T> {
  const settings = checkRunOptions(options);
  const run = new Run<T>(iterate(jobs), settings, options ?? {}, hooks);
  run.start();
  return {
    done: run.done,
    abort: (reason) => run.abort(reason),
    kill: (signal) => run.kill(signal),
    setConcurrency: (concurrency) => run.setConcurrency(concurrency),
  };
}
