import { Observable } from 'rxjs';
import { type JobSource, startRun } from '../runner/run.js';
import type { JobResult, RunOptions } from '../runner/types.js';

/**
 * The results of a run in completion order, with the options of `runJobs`. Completes when
 * every job is done; unsubscribing stops the run and kills its processes. Results are not
 * retained, so a run of any length costs memory for the running window only.
 */
export function run$(
  jobs: JobSource,
  options: RunOptions<Buffer> & { encoding: 'buffer' },
): Observable<JobResult<Buffer>>;
export function run$(jobs: JobSource, options?: RunOptions<string>): Observable<JobResult>;
export function run$(
  jobs: JobSource,
  options?: RunOptions<any>,
): Observable<JobResult<string | Buffer>> {
  return new Observable<JobResult<string | Buffer>>((subscriber) => {
    const run = startRun(jobs, options, {
      retainResults: false,
      onResult: (result) => subscriber.next(result),
    });
    run.done.then(
      () => subscriber.complete(),
      (error) => subscriber.error(error),
    );
    return () => run.abort(new Error('run$ unsubscribed'));
  });
}
