import { spawnCaptured } from '../capture.js';
import { SpawnError } from '../errors.js';
import type { Subprocess } from '../subprocess.js';
import type { ExitStatus } from '../types.js';
import type { Job } from './types.js';
import { attemptOptions, type RunSettings } from './validate.js';

const EMPTY = Buffer.alloc(0);

export interface AttemptResult {
  status: ExitStatus;
  stdout: Buffer;
  stderr: Buffer;
  startTime: number;
  error?: Error;
}

export interface Attempt {
  /** The running process; null when it could not be spawned. */
  proc: Subprocess | null;
  done: Promise<AttemptResult>;
  /** The process is being killed by the run: stop waiting for its output once it exits. */
  stop(): void;
}

/** The status of a job whose process never existed. */
export function notSpawned(): ExitStatus {
  return {
    pid: 0,
    code: null,
    signal: null,
    coreDumped: false,
    timedOut: false,
    aborted: false,
    durationMs: 0,
    resourceUsage: null,
    tree: null,
  };
}

/**
 * Spawns one attempt of a job. A SpawnError becomes a result; any other throw (a TypeError
 * for a malformed job) propagates, since it is the caller's bug rather than the job's failure.
 * Output is collected by a Capture, and its wait is bounded by the job's timeout.
 */
export function startAttempt(job: Job, settings: RunSettings): Attempt {
  const startTime = Date.now();
  try {
    const { proc, result, stop } = spawnCaptured(
      job.file,
      job.args ?? [],
      attemptOptions(job, settings),
      { discard: settings.output !== 'buffer' },
    );
    const done = result.then(({ status, stdout, stderr }) => ({
      status,
      stdout,
      stderr,
      startTime,
    }));
    return { proc, done, stop };
  } catch (error) {
    if (!(error instanceof SpawnError)) throw error;
    const status = notSpawned();
    return {
      proc: null,
      done: Promise.resolve({ status, stdout: EMPTY, stderr: EMPTY, startTime, error }),
      stop: () => {},
    };
  }
}
