import { type JobSource, startRun } from './run.js';
import type { RunOptions, RunSummary } from './types.js';

export type {
  HaltPolicy,
  Job,
  JobInput,
  JobResult,
  Progress,
  RunAbortError,
  RunOptions,
  RunSummary,
} from './types.js';

/**
 * Runs every job of `jobs`, at most `concurrency` processes at once, pulling the source only
 * as slots free up. Failed jobs are results. Resolves once every process has been reaped;
 * rejects with an `AbortError` (carrying `summary`) when `options.signal` aborts, and with
 * the error itself when the source or a callback throws.
 */
export function runJobs(
  jobs: JobSource,
  options: RunOptions<Buffer> & { encoding: 'buffer' },
): Promise<RunSummary<Buffer>>;
export function runJobs(jobs: JobSource, options?: RunOptions<string>): Promise<RunSummary>;
export function runJobs(
  jobs: JobSource,
  options?: RunOptions<any>,
): Promise<RunSummary<string | Buffer>> {
  try {
    return startRun(jobs, options, { retainResults: true }).done;
  } catch (error) {
    return Promise.reject(error);
  }
}
