// --line-buffer and -u: a job's output is passed on while it runs, so its attempt reads the
// pipes as streams instead of collecting them whole.
import type { Writable } from 'node:stream';
import { type Attempt, PendingAttempt, spawnFailed } from '../../runner/attempt.js';
import type { Job } from '../../runner/types.js';
import { attemptOptions, type RunSettings } from '../../runner/validate.js';
import { spawnAsync } from '../../spawn.js';
import { forwardLines } from './output.js';

const EMPTY = Buffer.alloc(0);

export interface StreamTarget {
  stdout: Writable;
  stderr: Writable;
  /** The --tag prefix of a job ('' for none). */
  tag: (job: Job) => string;
  beforeWrite: () => void;
  /** Bytes the job wrote to stdout (the joblog's Receive), once its output has ended. */
  received: (job: Job, bytes: number) => void;
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
        const tag = target.tag(job);
        const { gate } = target;
        const own = gate && ((write: () => void) => gate(job, write));
        const out = forwardLines(proc.stdout, target.stdout, tag, target.beforeWrite, own);
        const err = forwardLines(proc.stderr, target.stderr, tag, target.beforeWrite, own);
        return Promise.all([proc.exited, out, err]).then(([status, bytes]) => {
          target.received(job, bytes);
          return { status, stdout: EMPTY, stderr: EMPTY, startTime };
        });
      },
      (error) => spawnFailed(error, startTime),
    );
    return attempt;
  };
}
