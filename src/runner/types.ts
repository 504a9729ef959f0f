import type { ExitStatus, SpawnOptions } from '../types.js';

/** One command of a run: what `spawn(file, args, options)` would be called with. */
export interface Job {
  file: string;
  args?: readonly string[];
  /** Spawn options for this job; its `timeout`, `killSignal` and `forceKillAfter` win over the run's. */
  options?: SpawnOptions;
}

/** A job as a source may give it: a `Job`, or an argv array `[file, ...args]`. */
export type JobInput = Job | readonly string[];

export type HaltPolicy = 'never' | { when: 'now' | 'soon'; fail: number };

export interface Progress {
  /** Jobs started (a retried job counts once). */
  started: number;
  /** Jobs finished, successfully or not. */
  finished: number;
  /** Finished jobs that failed. */
  failed: number;
  /** Jobs running now. */
  running: number;
}

export interface JobResult<T extends string | Buffer = string> {
  /** Position of the job in the source, from 0. */
  index: number;
  job: Job;
  /** Status of the last attempt. For a job that could not be spawned, `code` and `signal` are null. */
  status: ExitStatus;
  /** Output of the last attempt (`''` unless `output` is `'buffer'`). */
  stdout: T;
  stderr: T;
  /** How many times the job was spawned: 1 + the retries it used. */
  attempts: number;
  /** When the last attempt started, in ms since the epoch. */
  startTime: number;
  /** Set when the last attempt could not be spawned (a `SpawnError` such as `ENOENT`). */
  error?: Error;
}

export interface RunSummary<T extends string | Buffer = string> {
  /** One result per started job, in input order. */
  results: JobResult<T>[];
  succeeded: number;
  failed: number;
  /** True when the `halt` policy stopped the run. */
  halted: boolean;
}

export interface RunOptions<T extends string | Buffer = string> {
  /** Most processes of this run alive at once; default `os.availableParallelism()`. */
  concurrency?: number;
  /** ms per attempt; on expiry the job gets `killSignal` and `status.timedOut` is true. */
  timeout?: number;
  /** Extra attempts for a failed job; default 0, `Infinity` until it succeeds. */
  retries?: number;
  /** Stop after this many failed jobs: `soon` lets the running ones finish, `now` kills them. */
  halt?: HaltPolicy;
  /** `'buffer'` (default) collects stdout/stderr, `'ignore'` discards them, `'inherit'` shares ours. */
  output?: 'buffer' | 'ignore' | 'inherit';
  /** With `output: 'buffer'`: `'utf8'` strings (default) or `'buffer'` Buffers. */
  encoding?: 'utf8' | 'buffer';
  /** Signal sent to jobs killed by halt, abort or timeout; default `'SIGTERM'`. */
  killSignal?: NodeJS.Signals | number;
  /** ms before SIGKILL follows `killSignal`; default 5000; `false` turns it off. */
  forceKillAfter?: number | false;
  /**
   * Run each job as a process tree (default true): halt, abort and timeout kill
   * every descendant, and a job ends once its whole tree has. `false` opts out.
   */
  tree?: boolean;
  /** Aborting stops starting jobs, kills the running ones and rejects with an `AbortError`. */
  signal?: AbortSignal;
  onResult?: (result: JobResult<T>) => void;
  onProgress?: (progress: Progress) => void;
}

/** Raised when a run is aborted through its signal; carries what finished before. */
export interface RunAbortError<T extends string | Buffer = string> extends Error {
  name: 'AbortError';
  code: 'ABORT_ERR';
  summary: RunSummary<T>;
}
