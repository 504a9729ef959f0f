import { spawnCapturedAsync } from '../capture.js';
import { SpawnError } from '../errors.js';
import { native } from '../native.js';
import { spawnAsync } from '../spawn.js';
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
  /** The running process: null while it is being spawned, and when it could not be. */
  readonly proc: Subprocess | null;
  done: Promise<AttemptResult>;
  /**
   * The run kills the process: `kill` gets it now, or once it is spawned; and its output
   * is no longer waited for once it has exited.
   */
  stop(kill: (proc: Subprocess) => void): void;
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

/** The result of an attempt whose spawn failed with `error` (a SpawnError). */
export function spawnFailed(error: unknown, startTime: number): AttemptResult {
  // Any other error (a TypeError for a malformed job) is the caller's bug rather than the
  // job's failure: it rejects the attempt.
  if (!(error instanceof SpawnError)) throw error;
  return { status: notSpawned(), stdout: EMPTY, stderr: EMPTY, startTime, error };
}

/**
 * An attempt whose process is spawned off the event loop: `proc` is null until the spawn
 * completes, and a kill asked for before then happens as soon as it does.
 */
export class PendingAttempt implements Attempt {
  proc: Subprocess | null = null;
  done!: Promise<AttemptResult>;
  #kill: ((proc: Subprocess) => void) | null = null;
  #bound: (() => void) | null = null;
  #stopped = false;

  /** The process runs; `bound` ends the wait for its output at its exit. */
  spawned(proc: Subprocess, bound: () => void): void {
    this.proc = proc;
    this.#bound = bound;
    if (this.#kill !== null) this.stop(this.#kill);
  }

  stop(kill: (proc: Subprocess) => void): void {
    if (this.proc === null) {
      this.#kill = kill;
      return;
    }
    if (this.#stopped) return;
    this.#stopped = true;
    this.#kill = null;
    this.#bound?.();
    kill(this.proc);
  }
}

/**
 * Starts one attempt of a job, its spawn off the event loop (`spawnAsync`). A SpawnError
 * becomes a result; a TypeError (a malformed job) rejects `done`. Output is collected by a
 * Capture, and its wait is bounded by the job's timeout; or, with `inFiles` (`pidwatch
 * run`), in two memory files read when the job ends, as GNU parallel's files.
 *
 * Files only where asked for: a file is not what a program expects its stdout to be under
 * runJobs (`echo b >/dev/stdout` reopens it and truncates what the job wrote before, as it
 * does in GNU parallel; and what a leftover process writes after the job's end is lost).
 */
export function startAttempt(job: Job, settings: RunSettings, inFiles = false): Attempt {
  const startTime = Date.now();
  const attempt = new PendingAttempt();
  const options = attemptOptions(job, settings);
  const files =
    inFiles && settings.output === 'buffer' && job.options?.stdio === undefined
      ? memoryFiles()
      : null;
  if (files !== null) {
    attempt.done = spawnAsync(job.file, job.args ?? [], {
      ...options,
      stdio: ['ignore', files[0], files[1]],
    }).then(
      (proc) => {
        attempt.spawned(proc, () => {});
        return proc.exited.then((status) => ({
          status,
          stdout: native.takeMemoryFile(files[0]) ?? EMPTY,
          stderr: native.takeMemoryFile(files[1]) ?? EMPTY,
          startTime,
        }));
      },
      (error) => {
        for (const fd of files) native.takeMemoryFile(fd);
        return spawnFailed(error, startTime);
      },
    );
    return attempt;
  }
  const discard = settings.output !== 'buffer';
  attempt.done = spawnCapturedAsync(job.file, job.args ?? [], options, { discard }).then(
    ({ proc, result, stop }) => {
      attempt.spawned(proc, stop);
      return result.then(({ status, stdout, stderr }) => ({ status, stdout, stderr, startTime }));
    },
    (error) => spawnFailed(error, startTime),
  );
  return attempt;
}

/** Two memory files for a job's stdout and stderr, or null (pipes then). */
function memoryFiles(): [number, number] | null {
  const stdout = native.memoryFile('pidwatch-stdout');
  if (stdout < 0) return null;
  const stderr = native.memoryFile('pidwatch-stderr');
  if (stderr >= 0) return [stdout, stderr];
  native.takeMemoryFile(stdout);
  return null;
}
