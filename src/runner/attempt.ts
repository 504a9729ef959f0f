import type { Readable } from 'node:stream';
import { finished } from 'node:stream';
import { SpawnError } from '../errors.js';
import { spawn } from '../spawn.js';
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
  };
}

/** Resolves with what the stream carried (or nothing, when not collecting) once it ends. */
function drain(stream: Readable | null, collect: boolean): Promise<Buffer> {
  if (stream === null) return Promise.resolve(EMPTY);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    if (collect) stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    else stream.resume();
    finished(stream, () => resolve(chunks.length === 0 ? EMPTY : Buffer.concat(chunks)));
  });
}

/**
 * Spawns one attempt of a job. A SpawnError becomes a result; any other throw (a TypeError
 * for a malformed job) propagates, since it is the caller's bug rather than the job's failure.
 */
export function startAttempt(job: Job, settings: RunSettings): Attempt {
  const startTime = Date.now();
  let proc: Subprocess;
  try {
    proc = spawn(job.file, job.args ?? [], attemptOptions(job, settings));
  } catch (error) {
    if (!(error instanceof SpawnError)) throw error;
    const status = notSpawned();
    return {
      proc: null,
      done: Promise.resolve({ status, stdout: EMPTY, stderr: EMPTY, startTime, error }),
    };
  }
  if (proc.stdin !== null) {
    proc.stdin.on('error', () => {});
    proc.stdin.end();
  }
  const collect = settings.output === 'buffer';
  const done = Promise.all([
    proc.exited,
    drain(proc.stdout, collect),
    drain(proc.stderr, collect),
  ]).then(([status, stdout, stderr]) => ({ status, stdout, stderr, startTime }));
  return { proc, done };
}
