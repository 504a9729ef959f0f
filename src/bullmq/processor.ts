// A BullMQ processor that runs each job as a pidwatch process tree.
import { hostname } from 'node:os';
import type { Readable } from 'node:stream';
import { type Job, type JobProgress, UnrecoverableError } from 'bullmq';
import { ExitError, invalidType, invalidValue, SpawnError } from '../errors.js';
import { checkForceKillAfter, checkMs } from '../options.js';
import { toSignalNumber } from '../signals.js';
import { spawn } from '../spawn.js';
import type { SpawnOptions, TreeStatus } from '../types.js';
import { toCommand } from './job.js';
import { eachLine, Tail } from './tail.js';

/** Turns a line of output into a progress value for `job.updateProgress`, or undefined for none. */
export type ProgressMapper = (line: string, stream: 'stdout' | 'stderr') => JobProgress | undefined;

export interface ProcessorOptions {
  /** ms per attempt; then the tree gets `killSignal` and the attempt fails. A job's own `options.timeout` wins. */
  timeout?: number;
  /** Default `'SIGTERM'`. */
  killSignal?: NodeJS.Signals | number;
  /** ms before SIGKILL follows `killSignal`; default 5000; `false` turns it off. */
  forceKillAfter?: number | false;
  /** Bytes kept of each of stdout and stderr (their tails); default 1 MiB. */
  maxBuffer?: number;
  /**
   * `true` (default): progress is `{ stdoutLines, stderrLines }`; a function maps
   * output lines to progress values; `false`: no progress updates.
   */
  progress?: boolean | ProgressMapper;
  /**
   * `true` (default): a failed attempt throws, so BullMQ retries it while attempts
   * remain. `'untilLastAttempt'`: the last attempt resolves with its outcome
   * (`code` non-zero, or `signal`), so the producer gets the output of a failure,
   * and a job that cannot start resolves at once with `spawnError`.
   */
  reject?: true | 'untilLastAttempt';
  /**
   * `'utf8'` (default): the outcome's stdout and stderr are text. `'base64'`: they are the
   * tails' exact bytes in base64 (output that is not UTF-8 survives the trip through
   * Redis), and the outcome says `encoding: 'base64'`.
   */
  encoding?: 'utf8' | 'base64';
}

/** What a job resolves with (its BullMQ return value). */
export interface JobOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  durationMs: number;
  /** When the attempt started, in ms since the epoch. */
  startTime: number;
  /** The last `maxBuffer` bytes of stdout and of stderr, as UTF-8 text (or see `encoding`). */
  stdout: string;
  stderr: string;
  /** Set when the processor's `encoding` is `'base64'`: stdout and stderr are base64. */
  encoding?: 'base64';
  /** The tree's accounting: leftovers killed, CPU time of the whole tree (`ExitStatus.tree`). */
  tree: TreeStatus | null;
  pid: number;
  host: string;
  /** Which attempt this was, from 1. */
  attempts: number;
  /** With `reject: 'untilLastAttempt'`, the SpawnError of a job that could not start. */
  spawnError?: { errno: number; syscall: string; path: string; spawnargs: string[] };
}

/** The outcome of a job that could not start, for `reject: 'untilLastAttempt'`. */
function spawnFailure(
  error: SpawnError,
  startTime: number,
  host: string,
  attempts: number,
): JobOutcome {
  const { errno, syscall, path, spawnargs } = error;
  return {
    code: null,
    signal: null,
    timedOut: false,
    durationMs: 0,
    startTime,
    stdout: '',
    stderr: '',
    tree: null,
    pid: 0,
    host,
    attempts,
    spawnError: { errno, syscall, path, spawnargs },
  };
}

const DEFAULT_TAIL = 1024 * 1024;
/** Least time between two progress updates of a job (each is a Redis round trip). */
const PROGRESS_MS = 250;
/** How long output may keep coming once the tree is gone (held by something outside it). */
const OUTPUT_GRACE_MS = 100;

function checkOptions(options: ProcessorOptions) {
  if (options === null || typeof options !== 'object') {
    throw invalidType('options', 'of type object', options);
  }
  const { maxBuffer = DEFAULT_TAIL, progress = true, reject = true, encoding = 'utf8' } = options;
  // The spawn options are checked now, not at each job, where a TypeError would fail it.
  if (options.timeout !== undefined) checkMs(options.timeout, 'options.timeout');
  if (options.killSignal !== undefined) toSignalNumber(options.killSignal, 'options.killSignal');
  checkForceKillAfter(options.forceKillAfter);
  if (typeof maxBuffer !== 'number' || !(maxBuffer >= 0) || !Number.isFinite(maxBuffer)) {
    throw invalidValue('options.maxBuffer', 'must be a finite number >= 0', maxBuffer);
  }
  if (typeof progress !== 'boolean' && typeof progress !== 'function') {
    throw invalidType('options.progress', 'a boolean or a function', progress);
  }
  if (reject !== true && reject !== 'untilLastAttempt') {
    throw invalidValue('options.reject', "must be true or 'untilLastAttempt'", reject);
  }
  if (encoding !== 'utf8' && encoding !== 'base64') {
    throw invalidValue('options.encoding', "must be 'utf8' or 'base64'", encoding);
  }
  return { maxBuffer, progress, reject, encoding };
}

/** Sends the latest progress value at most every PROGRESS_MS. */
function progressReporter(job: Job) {
  let latest: JobProgress | undefined;
  let timer: NodeJS.Timeout | undefined;
  let sending: Promise<void> = Promise.resolve();
  const flush = () => {
    timer = undefined;
    if (latest === undefined) return;
    const value = latest;
    latest = undefined;
    // A lost lock or a closed connection makes this fail: progress is best effort.
    sending = sending.then(() => job.updateProgress(value).catch(() => {}));
  };
  return {
    set(value: JobProgress) {
      latest = value;
      timer ??= setTimeout(flush, PROGRESS_MS);
    },
    async done() {
      if (timer !== undefined) clearTimeout(timer);
      flush();
      await sending;
    },
  };
}

/** Resolves once `stream` has ended or closed. */
function ended(stream: Readable): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || stream.readableEnded) return resolve();
    stream.once('close', resolve);
    stream.once('end', resolve);
    stream.once('error', () => resolve());
  });
}

/**
 * Returns a BullMQ processor: `new Worker(name, processor(options), { connection })`.
 * Each job runs as a process tree that is killed whole on timeout, on BullMQ's
 * cancellation and when this process dies (`tree: true`, `killOnParentExit`).
 */
export function processor(
  options: ProcessorOptions = {},
): (job: Job, token?: string, signal?: AbortSignal) => Promise<JobOutcome> {
  const { maxBuffer, progress, reject, encoding } = checkOptions(options);
  const base: SpawnOptions = {};
  if (options.timeout !== undefined) base.timeout = options.timeout;
  if (options.killSignal !== undefined) base.killSignal = options.killSignal;
  if (options.forceKillAfter !== undefined) base.forceKillAfter = options.forceKillAfter;
  const host = hostname();

  // Three declared parameters: BullMQ passes the cancellation signal only then.
  return async function run(job: Job, _token?: string, signal?: AbortSignal) {
    let command: ReturnType<typeof toCommand>;
    try {
      command = toCommand(job.data, 'job.data');
    } catch (error) {
      throw new UnrecoverableError((error as Error).message);
    }
    const startTime = Date.now();
    let proc: ReturnType<typeof spawn>;
    try {
      proc = spawn(command.file, command.args, {
        ...base,
        ...command.options,
        env: command.options.env && { ...process.env, ...command.options.env },
        shell: command.shell,
        signal,
        tree: true,
        killOnParentExit: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      } as SpawnOptions);
    } catch (error) {
      if (!(error instanceof SpawnError)) throw error;
      if (reject === 'untilLastAttempt')
        return spawnFailure(error, startTime, host, job.attemptsMade + 1);
      // Retrying cannot make a missing program appear (ENOENT, EACCES, ...).
      throw new UnrecoverableError(error.message);
    }
    const stdout = new Tail(maxBuffer);
    const stderr = new Tail(maxBuffer);
    const reporter = progress === false ? null : progressReporter(job);
    const streams = [
      [proc.stdout!, stdout, 'stdout'],
      [proc.stderr!, stderr, 'stderr'],
    ] as const;
    for (const [stream, tail, name] of streams) {
      stream.on('data', (chunk: Buffer) => tail.push(chunk));
      stream.on('error', () => {});
      if (typeof progress === 'function') {
        eachLine(stream, (line) => {
          const value = progress(line, name);
          if (value !== undefined) reporter!.set(value);
        });
      } else if (reporter) {
        stream.on('data', () =>
          reporter.set({ stdoutLines: stdout.lines, stderrLines: stderr.lines }),
        );
      }
    }
    const status = await proc.exited;
    // The tree is gone, so its pipes are closed, unless something outside it holds them.
    const outputs = Promise.all(streams.map(([stream]) => ended(stream)));
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([
      outputs,
      new Promise((resolve) => {
        grace = setTimeout(resolve, OUTPUT_GRACE_MS);
      }),
    ]);
    clearTimeout(grace);
    for (const [stream] of streams) stream.destroy();
    await reporter?.done();

    const outcome: JobOutcome = {
      code: status.code,
      signal: status.signal,
      timedOut: status.timedOut,
      durationMs: status.durationMs,
      startTime,
      stdout: stdout.text(),
      stderr: stderr.text(),
      tree: status.tree,
      pid: status.pid,
      host,
      attempts: job.attemptsMade + 1,
    };
    const returned: JobOutcome =
      encoding === 'base64'
        ? {
            ...outcome,
            stdout: stdout.bytes().toString('base64'),
            stderr: stderr.bytes().toString('base64'),
            encoding,
          }
        : outcome;
    if (status.code === 0 && !status.timedOut) return returned;
    const error = new ExitError(command.line, status, outcome);
    // A cancelled job is not retried: BullMQ's cancellation means "stop this job".
    if (status.aborted) throw new UnrecoverableError(error.message);
    const attempts = job.opts.attempts ?? 1;
    if (reject === 'untilLastAttempt' && job.attemptsMade + 1 >= attempts) return returned;
    throw error;
  };
}
