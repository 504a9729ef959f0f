// --line-buffer and -u: a job's output is passed on while it runs, so its attempt reads the
// pipes as streams instead of collecting them whole.
import type { Writable } from 'node:stream';
import { type Attempt, PendingAttempt, spawnFailed } from '../../runner/attempt.js';
import type { Job } from '../../runner/types.js';
import { attemptOptions, type RunSettings } from '../../runner/validate.js';
import { spawnAsync } from '../../spawn.js';
import { forwardLines } from './output.js';

export interface StreamTarget {
  /** null: the output goes nowhere (a --results table on stdout, as in GNU parallel). */
  stdout: Writable | null;
  stderr: Writable | null;
  /** The --tag prefix of a job ('' for none). */
  tag: (job: Job) => string;
  /** What the job's stdout starts with before the job writes anything (-v), or ''. */
  head: (job: Job) => string;
  beforeWrite: () => void;
  /**
   * Bytes read from the job's stdout and stderr together (the joblog's Receive, as GNU
   * parallel's --line-buffer counts it), once its output has ended.
   */
  received: (job: Job, bytes: number) => void;
  /** Keep the output in the attempt's result as well (a --results table holds it). */
  keep: boolean;
  /** Passes each write of the job's lines on, now or later (-k); absent: now. */
  gate?: (job: Job, write: () => void) => void;
}

/** An attempt whose whole lines reach `target` as they come. */
export function streamedAttempt(target: StreamTarget) {
  return (job: Job, settings: RunSettings): Attempt => {
    const startTime = Date.now();
    const options = {
      ...attemptOptions(job, settings),
      stdio: ['ignore', 'pipe', 'pipe'] as const,
    };
    const attempt = new PendingAttempt();
    attempt.done = spawnAsync(job.file, job.args ?? [], options).then(
      (proc) => {
        attempt.spawned(proc, () => {});
        const { gate, beforeWrite, keep } = target;
        const forward = {
          tag: target.tag(job),
          beforeWrite,
          gate: gate && ((write: () => void) => gate(job, write)),
          keep,
        };
        const head = Buffer.from(target.head(job));
        const out = forwardLines(proc.stdout, { ...forward, to: target.stdout, head });
        const err = forwardLines(proc.stderr, { ...forward, to: target.stderr });
        return Promise.all([proc.exited, out, err]).then(([status, stdout, stderr]) => {
          target.received(job, stdout.bytes + stderr.bytes);
          return { status, stdout: stdout.kept, stderr: stderr.kept, startTime };
        });
      },
      (error) => spawnFailed(error, startTime),
    );
    return attempt;
  };
}
